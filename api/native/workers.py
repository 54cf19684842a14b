"""The native worker protocol (JSON, version 1): register, pick, heartbeat, finish.

A worker registers once per process start, then loops on `pick`, which waits (long poll)
until the planner assigns it runs or `wait` seconds pass. While runs go, it heartbeats
about every second with their new output and its machine's load, and is told to go on or
to stop each run and why. When a run's process exits it reports the exit code with
`finish`, retrying until the server has it.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Final, Generic, Literal, TypeVar

import msgspec
from litestar import Controller, Request, post
from litestar.datastructures import State
from litestar.params import JSONBody, PathParameter
from msgspec import UNSET, UnsetType

from api.access import IdentityDep, access, as_worker
from api.hot import HotCall, HotRequest, HotRoute
from api.params import CoreDep
from core.errors import NotFound
from core.logs import LogChunk
from core.models import Amount, AppName, PoolName, ResourceName
from core.pings import Machine
from core.runs import Assignment, RunReport
from core.service import Core

PROTOCOL: Final = 1
# where the protocol lives: under the native router's /api/v2
PREFIX: Final = "/api/v2/workers"
Protocol = Literal[1]
WorkerName = Annotated[
    str, PathParameter(min_length=1, max_length=255, description="the worker's name")
]
Slots = Annotated[int, msgspec.Meta(ge=1, le=1024)]
EventId = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Megabytes = Annotated[int, msgspec.Meta(ge=0, le=2**53)]

# Windows reports crashes as unsigned 32-bit codes (0xC0000005), POSIX as small ints
ExitCode = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
# logger name -> level, for the task's GENVID_LOGGERS_FILE
Loggers = dict[str, str]


class Chunk(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Output of one stream of a run, as it arrived."""

    stream: Literal["stdout", "stderr"]
    data: str


# a bound on rows per run per request besides the bytes (limits.max_log_chunk): output
# alternating between the streams byte by byte would be a row per byte
Chunks = Annotated[list[Chunk], msgspec.Meta(max_length=4096)]


def _report(event: int, output: str, chunks: list[Chunk]) -> RunReport:
    return RunReport(
        event, output.encode(), tuple(LogChunk(c.stream, c.data.encode()) for c in chunks)
    )


class Register(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    protocol: Protocol = PROTOCOL
    # it goes in URLs: no '/'
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=255, pattern="^[^/]+$")]
    # ordered affinity rules: one per line or separated by ';', each comma-separated; left
    # out, the worker keeps the rules it has (those an admin edited survive its restart)
    affinity: str | UnsetType = UNSET
    slots: Slots = 1
    # what the worker offers the jobs that declare needs (cpus, mem in MB, gpus, a
    # licence, ...): none offered, none of the resources checked
    resources: dict[ResourceName, Amount] = msgspec.field(default_factory=dict)
    # the pool it belongs to ("" for none) and the applications it runs ("*": any), for
    # the jobs tagged `pool:<name>` and `app:<name>`; left out, it keeps what it had
    pool: PoolName | None = None
    apps: Annotated[list[AppName], msgspec.Meta(max_length=1024)] | None = None


class Registered(msgspec.Struct, kw_only=True):
    protocol: int = PROTOCOL
    name: str
    # seconds between heartbeats the server expects, and the longest a pick waits
    heartbeat_interval: float
    pick_wait: float
    # a worker silent this long is taken for lost and its runs go to others
    worker_timeout: float


class Ended(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A run whose process exited."""

    event: EventId
    exit_code: ExitCode
    # stdout not yet sent by a heartbeat, from workers that send no chunks
    output: str = ""
    # output not yet sent by a heartbeat, in the order it arrived (after `output`)
    chunks: Chunks = msgspec.field(default_factory=list)

    def report(self) -> RunReport:
        return _report(self.event, self.output, self.chunks)


FinishResult = Literal["FINISHED", "ERROR", "RETRY", "IGNORED"]


class Pick(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    protocol: Protocol = PROTOCOL
    # free slots to fill
    slots: Slots = 1
    # seconds to wait for work at most (the server's pick_wait caps it)
    wait: Annotated[float, msgspec.Meta(ge=0, le=3600)] | None = None
    # runs that ended since the worker last asked, reported before it waits: a worker
    # going straight from one run to the next needs one request, not a finish and a pick
    finished: Annotated[list[Ended], msgspec.Meta(max_length=1024)] = msgspec.field(
        default_factory=list
    )


class RunResult(msgspec.Struct, kw_only=True):
    event: int
    # what became of the job: FINISHED, ERROR, RETRY (queued again), or IGNORED when the
    # run had already been stopped (paused, reset, deleted, timed out)
    result: FinishResult


class Run(msgspec.Struct, kw_only=True):
    """A run handed to the worker: what to run and where."""

    event: int
    job: int
    title: str
    command: str
    dir: str
    # `K=V` lines, a job type's secret settings among them
    environment: str
    user: str
    progress_pattern: str
    timeout: int
    # a run of a service group: its logger levels, which the worker writes to the file it
    # names to the task as GENVID_LOGGERS_FILE; left out for other runs
    loggers: Loggers | UnsetType = UNSET

    @classmethod
    def of(cls, run: Assignment) -> "Run":
        return cls(
            event=run.event,
            job=run.job,
            title=run.title,
            command=run.command,
            dir=run.dir,
            environment=run.environment,
            user=run.user,
            progress_pattern=run.progress_pattern,
            timeout=run.timeout,
            loggers=UNSET if run.loggers is None else run.loggers,
        )


class Picked(msgspec.Struct, kw_only=True):
    protocol: int = PROTOCOL
    runs: list[Run]
    # one for each run reported in `finished`, in the same order
    results: list[RunResult] = msgspec.field(default_factory=list)


class RunHeartbeat(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    event: EventId
    # the run's stdout since the last heartbeat, from workers that send no chunks
    output: str = ""
    # the run's output since the last heartbeat, in the order it arrived (after `output`)
    chunks: Chunks = msgspec.field(default_factory=list)

    def report(self) -> RunReport:
        return _report(self.event, self.output, self.chunks)


class Heartbeat(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    protocol: Protocol = PROTOCOL
    runs: list[RunHeartbeat] = msgspec.field(default_factory=list)
    # load of each core, 0..100
    cpu: list[Annotated[float, msgspec.Meta(ge=0, le=100)]] | None = None
    # megabytes
    free_memory: Megabytes | None = None
    total_memory: Megabytes | None = None


class RunAnswer(msgspec.Struct, kw_only=True):
    event: int
    action: Literal["continue", "stop"]
    # why to stop: paused, reset, deleted, worker stopped, timeout, ...
    reason: str = ""
    # a run of a service group: its logger levels now; left out for other runs
    loggers: Loggers | UnsetType = UNSET


class HeartbeatAnswer(msgspec.Struct, kw_only=True):
    protocol: int = PROTOCOL
    runs: list[RunAnswer]


class Finish(Ended, forbid_unknown_fields=True, kw_only=True):
    protocol: Protocol = PROTOCOL


class Finished(msgspec.Struct, kw_only=True):
    protocol: int = PROTOCOL
    result: FinishResult


class WorkerProtocol(Controller):
    path = "/workers"

    @post("/register", status_code=200, summary="A worker process starts", opt=access("worker"))
    async def register(
        self,
        core: CoreDep,
        identity: IdentityDep,
        request: Request[object, object, State],
        data: JSONBody[Register],
    ) -> Registered:
        as_worker(identity, data.name)
        ip = request.client.host if request.client else ""
        await core.workers.register(
            data.name,
            ip,
            slots=data.slots,
            rules=None if data.affinity is UNSET else data.affinity,
            resources=data.resources,
            pool=data.pool,
            apps=data.apps,
        )
        d = core.config.dispatch
        return Registered(
            name=data.name,
            heartbeat_interval=d.heartbeat_interval,
            pick_wait=d.pick_wait,
            worker_timeout=d.worker_timeout,
        )

    @post(
        "/{name:str}/pick",
        status_code=200,
        summary="Wait for runs (long poll)",
        opt=access("worker"),
    )
    async def pick(self, core: CoreDep, name: WorkerName, data: JSONBody[Pick]) -> Picked:
        return await _pick(core, name, data)

    @post(
        "/{name:str}/heartbeat",
        status_code=200,
        summary="Report output and load",
        opt=access("worker"),
    )
    async def heartbeat(
        self, core: CoreDep, name: WorkerName, data: JSONBody[Heartbeat]
    ) -> HeartbeatAnswer:
        return await _heartbeat(core, name, data)

    @post(
        "/{name:str}/finish",
        status_code=200,
        summary="A run's process exited",
        opt=access("worker"),
    )
    async def finish(self, core: CoreDep, name: WorkerName, data: JSONBody[Finish]) -> Finished:
        return await _finished(core, name, data)


async def _pick(core: Core, name: str, data: Pick) -> Picked:
    # output over the bound anywhere refuses the whole pick before any run is ended
    core.runs.check([ended.report() for ended in data.finished])
    # runs that exited with code 0 and have nothing more to say end within the pick's
    # own statement, when no plugin needs to hear of each change; the others first,
    # one by one, in the order reported
    quiet: set[int] = set()
    if core.runs.ends_quietly():
        loud = {e.event for e in data.finished if e.exit_code != 0 or e.output or e.chunks}
        quiet = {e.event for e in data.finished} - loud
    results: list[FinishResult | None] = [
        None if ended.event in quiet else await _finish(core, name, ended)
        for ended in data.finished
    ]
    limit = core.config.dispatch.pick_wait
    wait = limit if data.wait is None else min(data.wait, limit)
    picked = await core.picks.pick(name, data.slots, wait, sorted(quiet))
    if picked is None:
        raise NotFound(f"worker {name!r} is not registered")
    # a run reported twice ends once: FINISHED the first time, IGNORED after
    finished = set(picked.finished)
    for index, ended in enumerate(data.finished):
        if results[index] is None:
            results[index] = "FINISHED" if ended.event in finished else "IGNORED"
            finished.discard(ended.event)
    return Picked(
        runs=[Run.of(run) for run in picked.runs],
        results=[
            RunResult(event=e.event, result=r or "IGNORED")
            for e, r in zip(data.finished, results, strict=True)
        ],
    )


async def _heartbeat(core: Core, name: str, data: Heartbeat) -> HeartbeatAnswer:
    machine = Machine(cpu=data.cpu, free_memory=data.free_memory, total_memory=data.total_memory)
    answers = await core.runs.heartbeat(name, machine, [r.report() for r in data.runs])
    if answers is None:
        raise NotFound(f"worker {name!r} is not registered")
    return HeartbeatAnswer(
        runs=[
            RunAnswer(
                event=a.event,
                action=a.action,
                reason=a.reason,
                loggers=UNSET if a.loggers is None else a.loggers,
            )
            for a in answers
        ]
    )


async def _finished(core: Core, name: str, data: Finish) -> Finished:
    return Finished(result=await _finish(core, name, data))


async def _finish(core: Core, name: str, ended: Ended) -> FinishResult:
    report = ended.report()
    if report.pieces():
        await core.runs.heartbeat(name, Machine(), [report])
    return await core.runs.finish(name, ended.event, ended.exit_code)


# -- the same routes answered hot (api/hot.py): without the framework's per-request cost

Body = TypeVar("Body", Pick, Heartbeat, Finish)
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class _Call(Generic[Body]):
    worker: str
    data: Body
    serve: Callable[[Core, str, Body], Awaitable[msgspec.Struct]]

    async def answer(self, core: Core) -> bytes:
        return _encode(await self.serve(core, self.worker, self.data))


def _hot(
    action: str, body: type[Body], serve: Callable[[Core, str, Body], Awaitable[msgspec.Struct]]
) -> HotRoute:
    # as CorralRequest reads it: "1" may stand for 1
    decoder = msgspec.json.Decoder(body, strict=False)

    def decode(request: HotRequest) -> HotCall | None:
        try:
            return _Call(request.name, decoder.decode(request.body), serve)
        except (msgspec.DecodeError, RecursionError):
            # the Litestar route answers it, saying what is wrong
            return None

    return HotRoute("POST", f"{PREFIX}/{{name}}/{action}", decode)


def hot_routes() -> list[HotRoute]:
    """The worker protocol's requests of every moment: pick, heartbeat, finish."""
    return [
        _hot("pick", Pick, _pick),
        _hot("heartbeat", Heartbeat, _heartbeat),
        _hot("finish", Finish, _finished),
    ]
