"""Jobs through the native API: the bulk path."""

from typing import Annotated

import msgspec
from litestar import Controller, post
from litestar.params import JSONBody

from api.coalition.params import CoreDep
from core.models import JobId, JobSpec


class BulkSubmit(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # the group the jobs go under, 0 for roots
    parent: JobId = 0
    jobs: Annotated[list[JobSpec], msgspec.Meta(min_length=1, max_length=100_000)]


class Submitted(msgspec.Struct, kw_only=True):
    # the new jobs' ids, in the order given
    ids: list[int]


class JobsController(Controller):
    path = "/jobs"

    @post(
        "/bulk",
        status_code=200,
        summary="Create many jobs under one parent in one transaction",
    )
    async def bulk(self, core: CoreDep, data: JSONBody[BulkSubmit]) -> Submitted:
        return Submitted(ids=await core.jobs.submit_many(data.parent, data.jobs))
