"""The legacy Coalition worker protocol, so existing Coalition workers connect unchanged.

Form-encoded POSTs (query arguments work too) with plain-text answers: `pickjob` answers
the text of a Python tuple literal that the legacy worker evaluates, `heartbeat` answers
`true` (go on) or `false` (kill the job), `endjob` reports the exit code. Mounted while the
`coalition_workers` plugin is enabled.
"""

import base64
import binascii
from typing import Annotated

import msgspec
from litestar import MediaType, Request, Response, Router, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec

from api.access import IdentityDep, access, as_worker
from api.params import CoreDep
from core.pings import Machine
from core.runs import RunReport
from core.tokens import Identity

NOTHING = "(-1, '', '', '', None)"
# a refusal of the legacy protocol is text, with the reason in X-Corral-Error too
_TEXT_REFUSAL = {
    400: ResponseSpec(
        data_container=str,
        media_type=MediaType.TEXT,
        description="the reason, as text",
        generate_examples=False,
    )
}


Id = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Megabytes = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
ExitCode = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class _Fields(msgspec.Struct, kw_only=True):
    hostname: Annotated[str, msgspec.Meta(max_length=255)] = ""
    # the legacy protocol's names
    jobId: Id | None = None
    errorCode: ExitCode | None = None
    log: str = ""
    load: str = ""
    free_memory: Megabytes | None = None
    total_memory: Megabytes | None = None


async def _fields(request: Request[object, object, State], identity: Identity) -> _Fields | None:
    """The request's fields; None when they are unusable. A worker token acts only as its
    own host name."""
    values: dict[str, str] = dict(request.query_params.items())
    if request.method == "POST":
        form = await request.form()
        values |= {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        fields = msgspec.convert(values, _Fields, strict=False)
    except msgspec.ValidationError:
        return None
    if not fields.hostname:
        return None
    as_worker(identity, fields.hostname)
    return fields


def _machine(fields: _Fields) -> Machine:
    cpu: list[float] | None = None
    if fields.load:
        try:
            cpu = [min(max(float(x), 0.0), 100.0) for x in msgspec.json.decode(fields.load)]
        except (msgspec.DecodeError, TypeError, ValueError, RecursionError):
            cpu = None
    return Machine(cpu=cpu, free_memory=fields.free_memory, total_memory=fields.total_memory)


def _text(body: str, status: int = 200) -> Response[str]:
    return Response(body, status_code=status, media_type="text/plain")


def _bad(reason: str) -> Response[str]:
    return Response(
        reason, status_code=400, media_type="text/plain", headers={"X-Corral-Error": reason}
    )


@post(
    "/pickjob",
    status_code=200,
    summary="Legacy worker: ask for a job",
    opt=access("worker"),
    media_type=MediaType.TEXT,
    responses=_TEXT_REFUSAL,
)
async def pick_job(
    request: Request[object, object, State], core: CoreDep, identity: IdentityDep
) -> Response[str]:
    fields = await _fields(request, identity)
    if fields is None:
        return _bad("hostname is required, and numbers must be numbers")
    ip = request.client.host if request.client else ""
    if await core.workers.contact(fields.hostname, ip, _machine(fields)):
        # a legacy worker runs one job at a time: asking for one means it let go of any other
        await core.workers.drop_runs(fields.hostname, "the worker asked for another job")
    picked = await core.picks.pick(fields.hostname, 1, core.config.dispatch.legacy_pick_wait)
    if picked is None or not picked.runs:
        return _text(NOTHING)
    run = picked.runs[0]
    # the legacy worker splits the environment on the two characters backslash and n
    env = "\\n".join(line for line in run.environment.splitlines() if line)
    return _text(f"({run.job}, {run.command!r}, {run.dir!r}, {run.user!r}, {env!r})")


@post(
    "/heartbeat",
    status_code=200,
    summary="Legacy worker: a running job's output",
    opt=access("worker"),
    media_type=MediaType.TEXT,
    responses=_TEXT_REFUSAL,
)
async def heartbeat(
    request: Request[object, object, State], core: CoreDep, identity: IdentityDep
) -> Response[str]:
    fields = await _fields(request, identity)
    if fields is None or fields.jobId is None:
        return _bad("hostname and jobId are required")
    try:
        output = base64.b64decode(fields.log, validate=False) if fields.log else b""
    except (binascii.Error, ValueError):
        return _bad("log is not base64")
    event = await core.runs.current_event(fields.jobId, fields.hostname)
    reports = [] if event is None else [RunReport(event, output)]
    answers = await core.runs.heartbeat(fields.hostname, _machine(fields), reports)
    going = bool(answers) and answers is not None and answers[0].action == "continue"
    return _text("true" if going else "false")


@post(
    "/endjob",
    status_code=200,
    summary="Legacy worker: a job's process exited",
    opt=access("worker"),
    media_type=MediaType.TEXT,
    responses=_TEXT_REFUSAL,
)
async def end_job(
    request: Request[object, object, State], core: CoreDep, identity: IdentityDep
) -> Response[str]:
    fields = await _fields(request, identity)
    if fields is None or fields.jobId is None or fields.errorCode is None:
        return _bad("hostname, jobId and errorCode are required")
    await core.runs.finish_job(fields.hostname, fields.jobId, fields.errorCode)
    return _text("1")


def legacy_worker_router() -> Router:
    return Router(
        path="/workers",
        route_handlers=[pick_job, heartbeat, end_job],
        tags=["coalition legacy workers"],
    )
