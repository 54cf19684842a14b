"""`/work`: checkout through Corral's dispatcher, workunits, and reports (docs/awe.md)."""

from typing import Annotated

import msgspec
from litestar import Controller, Request, Response, get, put
from litestar.datastructures import State, UploadFile
from litestar.params import PathParameter

from api.access import access, as_client, as_worker, identity_of
from api.awe.envelope import Envelope, ok
from api.awe.wire import workunit_out
from api.params import CoreDep
from core.clients import Status
from core.errors import Forbidden, Invalid, NotFound

UnitId = Annotated[str, PathParameter(description="<jobid>_<taskid>_<rank>, or base64: of it")]
REPORTS = ("stdout", "stderr", "worknotes")
STATUSES: dict[str, Status] = {
    "done": "done",
    "fail": "fail",
    "failed-permanent": "failed-permanent",
}


def _client(request: Request[object, object, State]) -> str:
    client: str | None = request.query_params.get("client")
    if not client:
        raise Invalid("This request type requires the client=clientid parameter.")
    return client


async def _holder(core: CoreDep, request: Request[object, object, State], job: int) -> None:
    """The caller is the client named by `?client=` (its worker token, its group's, or an
    admin) and that client runs the workunit: its secrets go to it alone."""
    client = _client(request)
    identity = identity_of(request)
    if identity.role not in ("admin", "worker", "cgroup"):
        raise Forbidden("only the client running a workunit reads its secrets")
    if identity.role == "worker":
        as_worker(identity, client)
    await as_client(core, identity, client)
    if await core.runs.current_event(job, client) is None:
        raise Invalid(f"the workunit is not checked out by client {client}")


class WorkController(Controller):
    path = "/work"

    @get("/", opt=access("worker"))
    async def checkout(
        self, core: CoreDep, request: Request[object, object, State]
    ) -> Response[Envelope]:
        """A workunit for the client, as the planner chooses it."""
        client = _client(request)
        try:
            unit = await core.clients.checkout(client, core.config.awe.checkout_wait)
        except NotFound as exc:
            raise Invalid(exc.message) from None
        if unit is None:
            raise Invalid("No eligible workunit found")
        return ok(workunit_out(unit, client, "reserved"))

    @get("/{unit_id:str}", opt=access("data"))
    async def workunit(
        self, core: CoreDep, unit_id: UnitId, request: Request[object, object, State]
    ) -> Response[Envelope]:
        """A workunit, the text a report carried (`?report=`), or, for the client that
        runs it only, its data token (`?datatoken`) or private environment (`?privateenv`)."""
        query = request.query_params
        try:
            job = await core.workflows.leaf(unit_id)
        except NotFound as exc:
            raise Invalid(exc.message) from None
        if "datatoken" in query or "privateenv" in query:
            await _holder(core, request, job)
        if "datatoken" in query:
            return ok(None, headers={"Datatoken": await core.workflows.datatoken(job)})
        if "privateenv" in query:
            unit = await core.workflows.unit(job)
            private = unit.task.task.cmd.environ.private
            return ok(None, headers={"Privateenv": msgspec.json.encode(private).decode()})
        kind = query.get("report")
        if kind is not None:
            text = await core.workflows.report(job, kind) if kind in REPORTS else None
            if text is None:
                raise Invalid(f"log type '{kind}' not found")
            return ok(text)
        unit = await core.workflows.unit(job)
        return ok(workunit_out(unit, "", "queued"))

    @put("/{unit_id:str}", status_code=200, opt=access("worker"), request_max_body_size=None)
    async def report(
        self, core: CoreDep, unit_id: UnitId, request: Request[object, object, State]
    ) -> Response[Envelope]:
        """A workunit's end; "ok" to every report of a known client."""
        client = _client(request)
        status = STATUSES.get(request.query_params.get("status", ""))
        files: dict[str, bytes] = {}
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form()
            for kind in REPORTS:
                part = form.get(kind)
                if isinstance(part, UploadFile):
                    files[kind] = await part.read()
        try:
            if status is not None:
                await core.clients.report(client, unit_id, status, files)
            else:
                await core.clients.profile(client)
        except NotFound as exc:
            raise Invalid(exc.message) from None
        except Invalid:
            # a report AWE's worker sent: never refused, or it repeats it for ever
            pass
        return ok("ok")
