"""`/job`: submitting workflow documents, and reading jobs (docs/awe.md)."""

from typing import Annotated

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State, UploadFile
from litestar.params import PathParameter

from api.access import access
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
