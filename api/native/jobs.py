"""Jobs through the native API: the bulk path."""

from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.params import JSONBody, QueryParameter

from api.access import IdentityDep, access, own_jobs, submitted_as
from api.params import CoreDep
from core.jobs import JobSort
from core.models import JobId, JobPage, JobSpec, JobState


class BulkSubmit(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # the group the jobs go under, 0 for roots
    parent: JobId = 0
    jobs: Annotated[list[JobSpec], msgspec.Meta(min_length=1, max_length=100_000)]


class Submitted(msgspec.Struct, kw_only=True):
    # the new jobs' ids, in the order given
    ids: list[int]


class JobListing(JobPage, kw_only=True):
    """A page of jobs, and when each running leaf of it last wrote output (epoch seconds;
    a running job not listed has written nothing yet)."""

    last_output: dict[int, float]


class JobsController(Controller):
    path = "/jobs"

    @get(
        "/",
        summary="A page of the children of a job (or of the roots), in id order or another",
        description=(
            "Keyset paging: ask again with `after` set to the answer's `next` for the page "
            "that follows; `next` is null on the last page. Pages stay cheap however deep "
            "the farm, and a job added or removed meanwhile shifts no other. `sort` orders "
            "by another column (`-` first: descending), ties by id; by id the page walks an "
            "index, by another column the group's matching rows are sorted for each page."
        ),
    )
    async def page(
        self,
        core: CoreDep,
        parent: Annotated[int, QueryParameter(ge=0, le=2**63 - 1, description="0: the roots")] = 0,
        after: Annotated[
            int, QueryParameter(ge=0, le=2**63 - 1, description="after this job (`next`)")
        ] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=10_000, description="jobs at most")] = 100,
        # `state` is the name of Litestar's own application state in a handler
        states: Annotated[
            list[JobState] | None,
            QueryParameter(name="state", description="only these states (repeat it)"),
        ] = None,
        user: Annotated[str | None, QueryParameter(max_length=255)] = None,
        title: Annotated[
            str | None,
            QueryParameter(max_length=1000, description="only titles holding this, any case"),
        ] = None,
        affinity: Annotated[
            str | None,
            QueryParameter(
                max_length=1000,
                description='only jobs whose own affinities include these: "LINUX,GPU"',
            ),
        ] = None,
        sort: Annotated[
            JobSort, QueryParameter(description="the order: a column, `-` first for descending")
        ] = "id",
    ) -> JobListing:
        names = [name.strip() for name in (affinity or "").split(",") if name.strip()]
        page = await core.jobs.page(
            parent,
            after,
            limit,
            states=states or (),
            user=user,
            title=title,
            affinities=names,
            sort=sort,
        )
        running = [j.id for j in page.jobs if j.state == "WORKING" and j.command]
        return JobListing(
            jobs=page.jobs, next=page.next, last_output=await core.dashboard.last_outputs(running)
        )

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
