"""`jobs/`: jobs of job types, queued through the Scale face and run on the farm like any
other job (docs/scale.md). A Scale job is a core leaf: its id is the core job's id."""

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, PathParameter, QueryParameter

from api.access import IdentityDep, access, submitted_as
from api.params import CoreDep
from api.scale import fields
from api.scale.paging import Page, Paging, absolute, paging
from api.scale.wire import STATES, STATUS, ErrorOut, JobTypeBase, Status, base, error_out
from core import seed
from core.errors import Invalid, NotFound
from core.job_types import JobFilter, JobTypeRow, TypedJob
from core.service import Core

JobIdPath = Annotated[int, PathParameter(ge=1, le=2**63 - 1, description="a job id")]
Repeated = Annotated[list[str] | None, QueryParameter(description="repeat it for any of several")]


class JobTypeRef(msgspec.Struct, kw_only=True):
    id: int


class RevisionRef(msgspec.Struct, kw_only=True):
    id: int
    job_type: JobTypeRef
    revision_num: int


class Node(msgspec.Struct, kw_only=True):
    # workers are known by name; they have no number
    id: None = None
    hostname: str


class JobOut(msgspec.Struct, kw_only=True):
    """A job as Scale's lists show it."""

    id: int
    job_type: JobTypeBase
    job_type_rev: RevisionRef
    status: Status
    error: ErrorOut | None
    max_tries: int
    num_exes: int
    node: Node | None
    is_superseded: bool = False
    created: datetime
    queued: datetime
    started: datetime | None
    ended: datetime | None
    last_status_change: datetime
    last_modified: datetime
    # what Corral has no part of: events, recipes, batches, superseding, sources
    event: None = None
    ingest_event: None = None
    recipe: None = None
    batch: None = None
    superseded_job: None = None
    source_started: None = None
    source_ended: None = None
    source_sensor_class: None = None
    source_sensor: None = None
    source_collection: None = None
    source_task: None = None
    input_files: dict[str, object] = msgspec.field(default_factory=dict)
    input_file_size: None = None


class JobDetailsOut(JobOut, kw_only=True):
    input: object
    # the job's own, without the values of secret settings
    configuration: dict[str, object]
    output: None = None
    execution: None = None


def job_filter(
    job_type_id: Repeated = None,
    job_type_name: Repeated = None,
    job_id: Repeated = None,
    status: Repeated = None,
    error_category: Repeated = None,
) -> JobFilter:
    states = []
    for name in status or []:
        if name.upper() not in STATES:
            raise Invalid(f'Parameter must be a valid status: "{name}"')
        states.append(STATES[name.upper()])
    return JobFilter(
        type_ids=fields.query_integers(job_type_id or [], "job_type_id"),
        type_names=job_type_name or [],
        ids=fields.query_integers(job_id or [], "job_id"),
        states=states,
        error_categories=[c.upper() for c in error_category or []],
    )


PagingDep = NamedDependency[Paging]
JobFilterDep = NamedDependency[JobFilter]


class JobsController(Controller):
    path = "/jobs"
    dependencies = {  # noqa: RUF012 (Litestar reads it from the class)
        "paging": Provide(paging, sync_to_thread=False),
        "chosen": Provide(job_filter, sync_to_thread=False),
    }

    @post(
        "/",
        status_code=201,
        summary="Queue a job of a job type",
        opt=access("submit"),
    )
    async def queue(
        self,
        request: Request[object, object, State],
        core: CoreDep,
        identity: IdentityDep,
        data: JSONBody[dict[str, object]],
    ) -> Response[JobDetailsOut]:
        if "job_type_id" not in data:
            raise Invalid('Missing required parameter: "job_type_id"')
        type_id = fields.integer(data["job_type_id"], "job_type_id")
        job_input = fields.obj(data, "input", required=True)
        configuration = fields.obj(data, "configuration")
        fields.known(data, ("job_type_id", "input", "configuration"))
        try:
            job_id = await core.job_types.queue(
                type_id, job_input, configuration, submitted_as(identity, "")
            )
        except seed.ConfigurationInvalid as exc:
            raise Invalid(f"Job configuration invalid: {exc.description}") from None
        details = await _one(core, job_id)
        location = absolute(request, f"/jobs/{job_id}/")
        return Response(details, status_code=201, headers={"Location": location})

    @get("/", summary="Jobs of job types, the most recently changed first")
    async def jobs(self, core: CoreDep, paging: PagingDep, chosen: JobFilterDep) -> Page[JobOut]:
        offset, limit = paging.window()
        total, found = await core.job_types.jobs(chosen, offset, limit)
        types = await core.job_types.by_id()
        return paging.answer(total, [_job(types, j) for j in found])

    @get("/{job_id:int}", summary="A job of a job type, with its data")
    async def job(self, core: CoreDep, job_id: JobIdPath) -> JobDetailsOut:
        return await _one(core, job_id)


async def _one(core: Core, job_id: int) -> JobDetailsOut:
    _, found = await core.job_types.jobs(JobFilter(ids=[job_id]), 0, 1)
    if not found:
        raise NotFound("Not found.")
    job = found[0]
    listed = _job(await core.job_types.by_id(), job)
    return JobDetailsOut(
        **msgspec.structs.asdict(listed), input=job.input, configuration=job.configuration
    )


def _job(types: dict[int, JobTypeRow], job: TypedJob) -> JobOut:
    status = STATUS[job.state]
    changed = job.last_modified
    return JobOut(
        id=job.id,
        job_type=base(types[job.type_id]),
        job_type_rev=RevisionRef(
            id=job.revision_id,
            job_type=JobTypeRef(id=job.type_id),
            revision_num=job.revision_num,
        ),
        status=status,
        error=error_out(job.error) if job.error else None,
        max_tries=job.max_tries,
        num_exes=job.num_exes,
        node=Node(hostname=job.worker) if job.worker else None,
        created=job.created,
        queued=job.created,
        started=job.started,
        ended=job.ended if status in ("COMPLETED", "FAILED") else None,
        last_status_change=changed,
        last_modified=changed,
    )
