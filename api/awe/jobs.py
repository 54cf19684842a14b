"""`/job`: submitting and importing workflow documents, listing and reading jobs, and
the operations on them (docs/awe.md)."""

import re
from typing import Annotated

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.datastructures import State, UploadFile
from litestar.params import Parameter, PathParameter

from api.access import IdentityDep, access, api_token, own_jobs
from api.awe.envelope import Envelope, PageEnvelope, ok, page
from api.awe.wire import job_log_out, job_min_out, job_out, rfc3339
from api.params import CoreDep
from core import workflows
from core.errors import Invalid, NotFound
from core.workflows import Listing

JobId = Annotated[str, PathParameter(description="the job's id, a UUID")]
# the states `?active`, `?suspend` and `?registered` select (`queuing` is AWE's, never
# shown here)
VIEWS = {
    "active": frozenset({"queuing", "queued", "in-progress"}),
    "suspend": frozenset({"suspend"}),
    "registered": frozenset({"queuing", "queued", "in-progress", "suspend"}),
}
# the keys of `GET /job?query` that are not field paths (AWE skips the same ones)
NOT_FIELDS = frozenset(
    {"limit", "offset", "query", "recent", "order", "direction", "active", "suspend",
     "registered", "verbosity", "userattr", "distinct", "date_start", "date_end"}
)  # fmt: skip
_INTEGER = re.compile(r"[+-]?[0-9]+")
# digits of the largest int64, so int() never reads an absurdly long string
_INT64_DIGITS = 19

Query = Annotated[str | None, Parameter(required=False)]


def _integer(text: str) -> int:
    """An integer as Go's strconv.Atoi reads one, with its errors."""
    if not _INTEGER.fullmatch(text):
        raise Invalid(f'strconv.Atoi: parsing "{text}": invalid syntax')
    if len(text.lstrip("+-")) > _INT64_DIGITS or not -(2**63) <= int(text) < 2**63:
        raise Invalid(f'strconv.Atoi: parsing "{text}": value out of range')
    return int(text)


def _count(name: str, text: str | None, default: int) -> int:
    if text is None:
        return default
    number = _integer(text)
    if number < 0:
        raise Invalid(f"{name} must not be negative: {text}")
    return number


def _moment(text: str) -> float:
    try:
        return workflows.moment(text)
    except ValueError:
        raise Invalid(f"Invalid datetime format: {text}") from None


def _listing(request: Request[object, object, State], max_page: int) -> Listing:
    query = request.query_params
    states = next((states for view, states in VIEWS.items() if view in query), None)
    fields: list[tuple[str, tuple[str, ...]]] = []
    start = end = None
    if "query" in query:
        for key in dict.fromkeys(query.keys()):
            if key in NOT_FIELDS:
                continue
            workflows.check_field(key)
            values = tuple(v for given in query.getall(key) for v in given.split(","))
            fields.append((key, values))
        if "date_start" in query:
            start = _moment(query["date_start"])
        if "date_end" in query:
            end = _moment(query["date_end"])
    order = query.get("order") or "info.submittime"
    if order not in workflows.ORDERS:
        raise Invalid(f"cannot order jobs by {order!r}; use one of {', '.join(workflows.ORDERS)}")
    return Listing(
        # more than a page holds is served as a page: `limit` in the answer says so
        limit=min(_count("limit", query.get("limit"), 25), max_page),
        offset=_count("offset", query.get("offset"), 0),
        order=order,
        descending=(query.get("direction") or "desc") != "asc",
        states=states,
        fields=tuple(fields),
        start=start,
        end=end,
    )


class JobsController(Controller):
    path = "/job"

    @post("/", status_code=200, opt=access("submit"))
    async def submit(
        self, core: CoreDep, request: Request[object, object, State]
    ) -> Response[Envelope]:
        """A workflow document as the file `upload` (the job, in state `init`; the
        header `Datatoken` is its data token), or a whole completed job as the file
        `import` (kept under its id, never queued)."""
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise Invalid(
                "(JobController/Create) Error parsing form: request Content-Type isn't "
                "multipart/form-data"
            )
        form = await request.form()
        upload = form.get("upload")
        if isinstance(upload, UploadFile):
            stored = workflows.parse(await upload.read())
            host = str(request.base_url).rstrip("/") + "/awe"
            # without a data token of its own, the job's is its submitter's API token:
            # the one AWE's worker then sends to the node store for the job's files
            token = request.headers.get("datatoken") or api_token(request) or None
            workflow = await core.workflows.submit(stored, host, token=token)
            return ok(job_out(workflow, state="init"))
        imported = form.get("import")
        if isinstance(imported, UploadFile):
            found = workflows.parse_import(await imported.read())
            return ok(job_out(await core.workflows.import_job(found)))
        raise Invalid("No job script or awf is submitted")

    @get("/", opt=access("read"))
    async def jobs(
        self,
        core: CoreDep,
        request: Request[object, object, State],
        limit: Query = None,
        offset: Query = None,
        order: Query = None,
        direction: Query = None,
        date_start: Query = None,
        date_end: Query = None,
        distinct: Query = None,
        verbosity: Query = None,
    ) -> Response[PageEnvelope]:
        """A page of jobs (`limit`, `offset`, `order`, `direction`), those of a view
        (`active`, `suspend`, `registered`), or with `query` those whose fields have the
        values given (`<field path>=v1,v2`, submitted or completed between `date_start`
        and `date_end`), or the `distinct` values of an indexed info field (all of them,
        in one page). Pages add `limit`, `offset` and `total_count` to the envelope."""
        listing = _listing(request, core.config.limits.max_page)
        if "query" in request.query_params and distinct is not None:
            values = await core.workflows.distinct(listing, distinct)
            if distinct in ("submittime", "completedtime"):
                values = [rfc3339(v) if isinstance(v, float) else v for v in values]
            return page(values, len(values), 0, len(values))
        found = await core.workflows.page(listing)
        shape = job_min_out if verbosity == "minimal" else job_out
        return page([shape(w) for w in found.workflows], listing.limit, listing.offset, found.total)

    @get("/{job_id:str}", opt=access("read"))
    async def job(
        self,
        core: CoreDep,
        job_id: JobId,
        request: Request[object, object, State],
        report: Query = None,
        position: Query = None,
    ) -> Response[Envelope]:
        """The job; with `report` its log (each workunit's last reports), with
        `position` its place in the dispatch order."""
        try:
            if report is not None:
                workflow, reports = await core.workflows.reports(job_id)
                return ok(job_log_out(workflow, reports))
            if position is not None:
                return ok({"position": await core.workflows.position(job_id)})
            workflow = await core.workflows.get(job_id)
        except NotFound as exc:
            # AWE answers an unknown id with 400, and its clients look for that
            raise Invalid(exc.message) from None
        return ok(job_out(workflow))

    @put("/{job_id:str}", status_code=200, opt=access("jobs"))
    async def operate(
        self,
        core: CoreDep,
        identity: IdentityDep,
        job_id: JobId,
        request: Request[object, object, State],
    ) -> Response[Envelope]:
        """One operation, the first of these the query names, in AWE's order."""
        query = request.query_params
        flows = core.workflows
        try:
            await own_jobs(core, identity, [(await flows.get(job_id)).job])
            if "resume" in query:
                await flows.resume(job_id)
                return ok(f"job resumed: {job_id}")
            if "suspend" in query:
                await flows.suspend(job_id)
                return ok(f"job suspended: {job_id}")
            if "recover" in query or "register" in query:
                return ok(f"job recovered: {job_id}")
            if "recompute" in query:
                task = query.get("recompute")
                if not task:
                    raise Invalid("lacking stage id from which the recompute starts")
                await flows.recompute(job_id, task)
                return ok(f"job recompute started at task {task}: {job_id}")
            if "resubmit" in query:
                await flows.recompute(job_id, None)
                return ok(f"job resubmitted: {job_id}")
            if "clientgroup" in query:
                group = query.get("clientgroup")
                if not group:
                    raise Invalid("lacking clientgroup name")
                await flows.set_info(job_id, clientgroups=group)
                return ok(f"job group updated: {job_id} to {group}")
            if "priority" in query:
                priority = _priority(query.get("priority") or "")
                await flows.set_info(job_id, priority=priority)
                return ok(f"job priority updated: {job_id} to {priority}")
            if "pipeline" in query:
                pipeline = query.get("pipeline") or ""
                await flows.set_info(job_id, pipeline=pipeline)
                return ok(f"job pipeline updated: {job_id} to {pipeline}")
            if "expiration" in query:
                expiration = query.get("expiration") or ""
                await flows.set_expiration(job_id, expiration)
                return ok(f"expiration '{expiration}' set for job: {job_id}")
            if "settoken" in query:
                token = request.headers.get("datatoken")
                if not token:
                    raise Invalid(
                        f"fail to set the data token for job: {job_id} (send it in the "
                        "header Datatoken)"
                    )
                await flows.set_token(job_id, token)
                return ok(f"data token set for job: {job_id}")
        except NotFound as exc:
            raise Invalid(exc.message) from None
        return ok("requested job operation not supported")

    @put("/", status_code=200, opt=access("admin"))
    async def operate_all(
        self, core: CoreDep, request: Request[object, object, State]
    ) -> Response[Envelope]:
        query = request.query_params
        if "resumeall" in query:
            resumed = 0
            for job_id in await core.workflows.suspended():
                await core.workflows.resume(job_id)
                resumed += 1
            return ok(f"{resumed} suspended jobs resumed")
        if "recoverall" in query:
            return ok("0 missing jobs recovered")
        # AWE answers 501 here; a 5xx would read as the server's fault to Corral's clients
        raise Invalid("requested job operation not supported: use ?resumeall or ?recoverall")

    @delete("/{job_id:str}", status_code=200, opt=access("jobs"))
    async def remove(
        self,
        core: CoreDep,
        identity: IdentityDep,
        job_id: JobId,
        request: Request[object, object, State],
    ) -> Response[Envelope]:
        """Mark the job deleted, or remove it whole with `?full`."""
        try:
            await own_jobs(core, identity, [(await core.workflows.get(job_id)).job])
            await core.workflows.delete(job_id, full="full" in request.query_params)
        except NotFound as exc:
            raise Invalid(exc.message) from None
        return ok(f"job deleted: {job_id}")

    @delete("/", status_code=200, opt=access("admin"))
    async def remove_all(
        self, core: CoreDep, request: Request[object, object, State]
    ) -> Response[Envelope]:
        """`?suspend`: every suspended job deleted; `?zombie`: none (AWE's zombies are
        jobs its memory lost, which a job kept in PostgreSQL never is)."""
        query = request.query_params
        if "suspend" in query:
            deleted = 0
            for job_id in await core.workflows.suspended():
                try:
                    await core.workflows.delete(job_id)
                except NotFound:
                    continue
                deleted += 1
            return ok(f"deleted {deleted} suspended jobs")
        if "zombie" in query:
            return ok("deleted 0 zombie jobs")
        # AWE answers 501 here, as for PUT /job
        raise Invalid("requested job operation not supported: use ?suspend or ?zombie")


def _priority(text: str) -> int:
    try:
        priority = _integer(text)
    except Invalid as exc:
        raise Invalid(f"priority value must be an integer {exc.message}") from None
    if not -(2**31) <= priority < 2**31:
        raise Invalid(f"priority value must be an integer from {-(2**31)} to {2**31 - 1}: {text}")
    return priority
