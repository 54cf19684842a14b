"""`/job`: submitting workflow documents, and reading jobs (docs/awe.md)."""

from typing import Annotated

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.datastructures import State, UploadFile
from litestar.params import PathParameter

from api.access import IdentityDep, access, own_jobs
from api.awe.envelope import Envelope, PageEnvelope, ok, page
from api.awe.wire import job_out
from api.params import CoreDep
from core import workflows
from core.errors import Invalid, NotFound

JobId = Annotated[str, PathParameter(description="the job's id, a UUID")]
# the states `?active`, `?suspend` and `?registered` select
VIEWS = {
    "active": ("queued", "in-progress"),
    "suspend": ("suspend",),
    "registered": ("queued", "in-progress", "suspend"),
}


def _number(name: str, text: str | None, default: int) -> int:
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise Invalid(f'strconv.Atoi: parsing "{text}": invalid syntax') from None


class JobsController(Controller):
    path = "/job"

    @post("/", status_code=200, opt=access("submit"))
    async def submit(
        self, core: CoreDep, request: Request[object, object, State]
    ) -> Response[Envelope]:
        """A workflow document as the file `upload`; the job, in state `init`."""
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise Invalid(
                "(JobController/Create) Error parsing form: request Content-Type isn't "
                "multipart/form-data"
            )
        form = await request.form()
        upload = form.get("upload")
        if not isinstance(upload, UploadFile):
            raise Invalid("No job script or awf is submitted")
        stored = workflows.parse(await upload.read())
        host = str(request.base_url).rstrip("/") + "/awe"
        workflow = await core.workflows.submit(stored, host)
        return ok(job_out(workflow, state="init"))

    @get("/", opt=access("read"))
    async def jobs(
        self, core: CoreDep, request: Request[object, object, State]
    ) -> Response[PageEnvelope]:
        """A page of jobs: `limit`, `offset`, `order`, `direction`, and the views."""
        query = request.query_params
        limit = _number("limit", query.get("limit"), 25)
        offset = _number("offset", query.get("offset"), 0)
        order = query.get("order") or "info.submittime"
        descending = (query.get("direction") or "desc") != "asc"
        states = next((states for view, states in VIEWS.items() if view in query), ())
        found = await core.workflows.page(limit, offset, order, descending, states)
        return page([job_out(w) for w in found.workflows], limit, offset, found.total)

    @get("/{job_id:str}", opt=access("read"))
    async def job(self, core: CoreDep, job_id: JobId) -> Response[Envelope]:
        try:
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
                text = query.get("priority") or ""
                try:
                    priority = int(text)
                except ValueError:
                    raise Invalid(
                        f'priority value must be an integer strconv.Atoi: parsing "{text}": '
                        "invalid syntax"
                    ) from None
                await flows.set_info(job_id, priority=priority)
                return ok(f"job priority updated: {job_id} to {priority}")
            if "pipeline" in query:
                pipeline = query.get("pipeline") or ""
                await flows.set_info(job_id, pipeline=pipeline)
                return ok(f"job pipeline updated: {job_id} to {pipeline}")
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
