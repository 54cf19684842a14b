"""Jobs through the native API: the bulk path."""

from typing import Annotated

import msgspec
from litestar import Controller, post
from litestar.params import JSONBody

from api.access import IdentityDep, access, own_jobs, submitted_as
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
        opt=access("submit"),
    )
    async def bulk(
        self, core: CoreDep, identity: IdentityDep, data: JSONBody[BulkSubmit]
    ) -> Submitted:
        await own_jobs(core, identity, [data.parent])
        specs = [msgspec.structs.replace(s, user=submitted_as(identity, s.user)) for s in data.jobs]
        return Submitted(ids=await core.jobs.submit_many(data.parent, specs))
