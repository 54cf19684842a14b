"""`/api/jobs` and the job operations of the Coalition API."""

from typing import Annotated

import msgspec
from litestar import Controller, MediaType, Response, delete, get, post, put
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, JSONBody, QueryParameter

from api.access import IdentityDep, access, own_jobs, submitted_as
from api.coalition.params import JobIdPath, JobIds
from api.coalition.wire import JobChange, NewJob
from api.params import CoreDep
from core.errors import Invalid
from core.jobs import DistinctField
from core.models import ChildDependency, Job, JobId
from core.service import Core

# A distinct-values answer: [{"user": "bob"}, ...]
Distinct = list[dict[str, str | int]]


class JobsController(Controller):
    path = "/"

    @get("/jobs", summary="The root jobs (parent 0)")
    async def roots(self, core: CoreDep) -> list[Job]:
        return await core.jobs.roots()

    @get("/jobs/{job_id:int}", summary="One job, with the ids it depends on")
    async def job(self, core: CoreDep, job_id: JobIdPath) -> Job:
        return await core.jobs.get(job_id)

    @put("/jobs", summary="Create a job; answers its id", opt=access("submit"))
    async def create(self, core: CoreDep, identity: IdentityDep, data: JSONBody[NewJob]) -> int:
        spec = data.spec()
        user = submitted_as(identity, spec.user)
        await own_jobs(core, identity, [spec.parent])
        return await core.jobs.submit(msgspec.structs.replace(spec, user=user))

    @post(
        "/jobs",
        status_code=200,
        summary='Edit jobs: {"<id>": {field: value}}; answers 1',
        opt=access("jobs"),
    )
    async def edit(
        self, core: CoreDep, identity: IdentityDep, data: JSONBody[dict[JobId, JobChange]]
    ) -> int:
        edits = {job_id: change.edit() for job_id, change in data.items()}
        # the jobs changed, and the groups they move to, must be the caller's
        parents = [e.parent for e in edits.values() if isinstance(e.parent, int) and e.parent]
        await own_jobs(core, identity, [*edits, *parents])
        # a user token cannot give its jobs away, nor clear their owner
        owned = {
            job_id: msgspec.structs.replace(edit, user=submitted_as(identity, edit.user))
            if isinstance(edit.user, str)
            else edit
            for job_id, edit in edits.items()
        }
        await core.jobs.edit(owned)
        return 1

    @delete(
        "/jobs",
        status_code=200,
        summary="Delete jobs and their subtrees; answers 1",
        opt=access("jobs"),
    )
    async def delete(self, core: CoreDep, identity: IdentityDep, data: JSONBody[JobIds]) -> int:
        await own_jobs(core, identity, data)
        await core.jobs.delete(data)
        return 1

    @get("/jobs/{job_id:int}/children", summary="The children of a job")
    async def children(self, core: CoreDep, job_id: JobIdPath) -> list[Job]:
        return await core.jobs.children(job_id)

    @get("/jobs/{job_id:int}/dependencies", summary="The jobs a job depends on")
    async def job_dependencies(self, core: CoreDep, job_id: JobIdPath) -> list[Job]:
        return await core.jobs.dependencies(job_id)

    @post(
        "/jobs/{job_id:int}/dependencies",
        status_code=200,
        summary="Replace the dependencies of a job ([] clears them); answers 1",
        opt=access("jobs"),
    )
    async def set_dependencies(
        self, core: CoreDep, identity: IdentityDep, job_id: JobIdPath, data: JSONBody[JobIds]
    ) -> int:
        await own_jobs(core, identity, [job_id])
        await core.jobs.set_dependencies(job_id, data)
        return 1

    @get("/jobs/{job_id:int}/childrendependencies", summary="The dependencies of each child")
    async def children_dependencies(
        self, core: CoreDep, job_id: JobIdPath
    ) -> list[ChildDependency]:
        return await core.jobs.children_dependencies(job_id)

    @get("/jobs/{job_id:int}/log", summary="The log of a job, as one JSON string")
    async def log(self, core: CoreDep, job_id: JobIdPath) -> Response[bytes]:
        # a str return would go out as raw text; the Coalition API answers a JSON string
        text = await core.jobs.log(job_id)
        return Response(msgspec.json.encode(text), media_type=MediaType.JSON)

    @post(
        "/resetjobs",
        status_code=200,
        summary="Reset jobs and their subtrees; answers 1",
        opt=access("jobs"),
    )
    async def reset(self, core: CoreDep, identity: IdentityDep, data: JSONBody[JobIds]) -> int:
        await own_jobs(core, identity, data)
        await core.jobs.reset(data)
        return 1

    @post(
        "/reseterrorjobs",
        status_code=200,
        summary="Reset the leaves in ERROR below the jobs; answers 1",
        opt=access("jobs"),
    )
    async def reset_errors(
        self, core: CoreDep, identity: IdentityDep, data: JSONBody[JobIds]
    ) -> int:
        await own_jobs(core, identity, data)
        await core.jobs.reset(data, only_errors=True)
        return 1

    @post(
        "/startjobs",
        status_code=200,
        summary="Unpause jobs and queue their finished or failed leaves again; answers 1",
        opt=access("jobs"),
    )
    async def start(self, core: CoreDep, identity: IdentityDep, data: JSONBody[JobIds]) -> int:
        await own_jobs(core, identity, data)
        await core.jobs.start(data)
        return 1

    @post(
        "/pausejobs",
        status_code=200,
        summary="Pause jobs and their subtrees; answers 1",
        opt=access("jobs"),
    )
    async def pause(self, core: CoreDep, identity: IdentityDep, data: JSONBody[JobIds]) -> int:
        await own_jobs(core, identity, data)
        await core.jobs.pause(data)
        return 1

    @get("/jobs/users", summary="The distinct users")
    async def users(self, core: CoreDep) -> Distinct:
        return await _distinct(core, "user")

    @get("/jobs/states", summary="The distinct states")
    async def states(self, core: CoreDep) -> Distinct:
        return await _distinct(core, "state")

    @get("/jobs/workers", summary="The distinct workers that ran jobs")
    async def workers(self, core: CoreDep) -> Distinct:
        return await _distinct(core, "worker")

    @get("/jobs/priorities", summary="The distinct priorities")
    async def priorities(self, core: CoreDep) -> Distinct:
        return await _distinct(core, "priority")

    @get("/jobs/affinities", summary="The distinct job affinities")
    async def affinities(self, core: CoreDep) -> Distinct:
        return await _distinct(core, "affinity")

    @get(
        "/jobs/where",
        summary="Jobs matching a filter, rows min to max by id, as JSON text (text/plain)",
        media_type=MediaType.TEXT,
        responses={
            200: ResponseSpec(
                data_container=list[Job],
                media_type=MediaType.TEXT,
                description=(
                    "the jobs, as JSON in a text/plain answer: Coalition's web page parses "
                    "the text itself, and fails if jQuery has parsed it first as JSON"
                ),
                generate_examples=False,
            )
        },
    )
    async def where(
        self,
        core: CoreDep,
        where_clause: FromQuery[str] = "",
        min_row: Annotated[str, QueryParameter(name="min", description="first row (0)")] = "",
        max_row: Annotated[str, QueryParameter(name="max", description="row after the last")] = "",
    ) -> Response[bytes]:
        # the legacy page sends empty values for "from the start" and "to the end"
        first = _row(min_row, "min") or 0
        jobs = await core.jobs.where(where_clause, first, _row(max_row, "max"))
        # text, never HTML: a title holding markup is not a page of this origin
        return Response(
            msgspec.json.encode(jobs),
            media_type=MediaType.TEXT,
            headers={"X-Content-Type-Options": "nosniff"},
        )

    @get("/jobs/count/where", summary="How many jobs match a filter")
    async def count_where(self, core: CoreDep, where_clause: FromQuery[str] = "") -> int:
        return await core.jobs.count_where(where_clause)


def _row(text: str, name: str) -> int | None:
    if not text.strip():
        return None
    # ASCII digits only: str.isdigit() also takes '²', which int() refuses
    if not (text.strip().isascii() and text.strip().isdigit()) or int(text) > 2**31 - 1:
        raise Invalid(f"{name} must be a row number, not {text!r}")
    return int(text)


async def _distinct(core: Core, field: DistinctField) -> Distinct:
    return [{field: value} for value in await core.jobs.distinct(field)]
