"""The legacy Coalition worker protocol, so existing Coalition workers connect unchanged.

Form-encoded POSTs (query arguments work too) with plain-text answers: `pickjob` answers
the text of a Python tuple literal that the legacy worker evaluates, `heartbeat` answers
`true` (go on) or `false` (kill the job), `endjob` reports the exit code. Mounted while the
`coalition_workers` plugin is enabled.
"""

import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qsl

import msgspec
from litestar import MediaType, Request, Response, Router, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec

from api.access import IdentityDep, access, as_worker
from api.hot import HotCall, HotRequest, HotRoute
from api.params import CoreDep
from core.pings import Machine
from core.runs import RunReport
from core.service import Core
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
    fields = _parsed(values)
    if fields is not None:
        as_worker(identity, fields.hostname)
    return fields


def _parsed(values: dict[str, str]) -> _Fields | None:
    try:
        fields = msgspec.convert(values, _Fields, strict=False)
    except msgspec.ValidationError:
        return None
    return fields if fields.hostname else None


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
    return _text(await _pick_job(core, fields, request.client.host if request.client else ""))


async def _pick_job(core: Core, fields: _Fields, ip: str) -> str:
    host, machine, wait = fields.hostname, _machine(fields), core.config.dispatch.legacy_pick_wait
    # the pick makes contact: one statement for a worker already known that holds nothing
    picked = await core.picks.pick(host, 1, wait, contact=machine)
    if picked is None or picked.held:
        if await core.workers.contact(host, ip, machine):
            # a legacy worker runs one job at a time: asking for one means it let go of any
            # other
            await core.workers.drop_runs(host, "the worker asked for another job")
        picked = await core.picks.pick(host, 1, wait)
    if picked is None or not picked.runs:
        return NOTHING
    run = picked.runs[0]
    # the legacy worker splits the environment on the two characters backslash and n
    env = "\\n".join(line for line in run.environment.splitlines() if line)
    return f"({run.job}, {run.command!r}, {run.dir!r}, {run.user!r}, {env!r})"


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
    output = _log(fields)
    if output is None:
        return _bad("log is not base64")
    return _text(await _heartbeat(core, fields, fields.jobId, output))


def _log(fields: _Fields) -> bytes | None:
    """The output a heartbeat carries; None when it is not base64."""
    try:
        return base64.b64decode(fields.log, validate=False) if fields.log else b""
    except (binascii.Error, ValueError):
        return None


async def _heartbeat(core: Core, fields: _Fields, job: int, output: bytes) -> str:
    event = await core.runs.current_event(job, fields.hostname)
    reports = [] if event is None else [RunReport(event, output)]
    answers = await core.runs.heartbeat(fields.hostname, _machine(fields), reports)
    going = bool(answers) and answers is not None and answers[0].action == "continue"
    return "true" if going else "false"


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
    return _text(await _end_job(core, fields, fields.jobId, fields.errorCode))


async def _end_job(core: Core, fields: _Fields, job: int, exit_code: int) -> str:
    await core.runs.finish_job(fields.hostname, job, exit_code)
    return "1"


def legacy_worker_router() -> Router:
    return Router(
        path="/workers",
        route_handlers=[pick_job, heartbeat, end_job],
        tags=["coalition legacy workers"],
    )


# -- the same routes answered hot (api/hot.py): a legacy worker's every request

_FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class _Call:
    worker: str
    serve: Callable[[Core], Awaitable[str]]

    async def answer(self, core: Core) -> bytes:
        return (await self.serve(core)).encode()


def _hot_fields(request: HotRequest) -> _Fields | None:
    """The fields as `_fields` reads them: the query's, then the form's over them (what
    is neither an empty body nor a form, as multipart, is left to the Litestar route)."""
    media_type = request.content_type.partition(";")[0].strip().lower()
    if media_type != _FORM and request.body:
        return None
    return _parsed(dict(_pairs(request.query_string)) | dict(_pairs(request.body)))


def _pairs(encoded: bytes) -> list[tuple[str, str]]:
    # as Litestar parses forms and queries
    return parse_qsl(encoded.decode("latin-1"), keep_blank_values=True, separator="&")


def _hot_pick(request: HotRequest) -> HotCall | None:
    fields = _hot_fields(request)
    if fields is None:
        return None
    return _Call(fields.hostname, lambda core: _pick_job(core, fields, request.client))


def _hot_heartbeat(request: HotRequest) -> HotCall | None:
    fields = _hot_fields(request)
    if fields is None or fields.jobId is None:
        return None
    job, output = fields.jobId, _log(fields)
    if output is None:
        return None
    return _Call(fields.hostname, lambda core: _heartbeat(core, fields, job, output))


def _hot_end(request: HotRequest) -> HotCall | None:
    fields = _hot_fields(request)
    if fields is None or fields.jobId is None or fields.errorCode is None:
        return None
    job, code = fields.jobId, fields.errorCode
    return _Call(fields.hostname, lambda core: _end_job(core, fields, job, code))


def legacy_hot_routes() -> list[HotRoute]:
    """pickjob, heartbeat and endjob, as a legacy worker sends them."""
    text = b"text/plain; charset=utf-8"
    return [
        HotRoute("POST", "/workers/pickjob", _hot_pick, media_type=text),
        HotRoute("POST", "/workers/heartbeat", _hot_heartbeat, media_type=text),
        HotRoute("POST", "/workers/endjob", _hot_end, media_type=text),
    ]
