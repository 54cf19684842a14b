"""The render-node agent: registers, picks work, runs it, streams its output, reports how
it ended, and keeps going through server outages without losing a result."""

import asyncio
import codecs
import contextlib
import itertools
import logging
import os
import random
import shutil
import signal
import tempfile
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import quote

import httpx
import msgspec

from worker import protocol as p
from worker.machine import CpuMeter, memory_mb

log = logging.getLogger("corral.worker")
T = TypeVar("T")

# seconds a stopped process gets between SIGTERM and SIGKILL
KILL_GRACE = 5.0
# backoff while the server cannot be reached: from 0.5 s doubling up to 30 s
_BACKOFF_START = 0.5
_BACKOFF_MAX = 30.0
# idle workers heartbeat less often than busy ones
_IDLE_HEARTBEAT = 5.0
# bytes of one run's output per request, well under the server's [limits] max_log_chunk
_CHUNK = 256 * 1024
# chunks of one run per request: the server takes 4096
_PIECES = 1024
# the variable naming the file of a service run's logger levels, and the file's name
LOGGERS_VARIABLE = "GENVID_LOGGERS_FILE"
_LOGGERS_FILE = "loggers.json"


class ProtocolError(Exception):
    """The server refused a request: a bug or a misconfiguration, not an outage."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Output:
    """A run's output not sent yet: pieces of one stream each, in the order they arrived.
    Each piece is valid UTF-8: a character split between two reads of a pipe waits for
    its end, and bytes that are not UTF-8 become U+FFFD, stream by stream."""

    def __init__(self) -> None:
        self._pieces: deque[tuple[p.Stream, bytearray]] = deque()
        self._decoders = {
            stream: codecs.getincrementaldecoder("utf-8")(errors="replace")
            for stream in ("stdout", "stderr")
        }
        self.size = 0

    def add(self, stream: p.Stream, data: bytes, final: bool = False) -> None:
        """What a read of `stream` brought; `final` at its end."""
        text = self._decoders[stream].decode(data, final)
        if not text:
            return
        encoded = text.encode()
        if self._pieces and self._pieces[-1][0] == stream:
            self._pieces[-1][1].extend(encoded)
        else:
            self._pieces.append((stream, bytearray(encoded)))
        self.size += len(encoded)

    def peek(self, limit: int = _CHUNK, pieces: int = _PIECES) -> tuple[list[p.Chunk], int]:
        """The chunks of the next request, at most `limit` bytes in at most `pieces`
        chunks, cut on a character boundary, and their size in bytes."""
        chunks: list[p.Chunk] = []
        taken = 0
        for stream, data in itertools.islice(self._pieces, pieces):
            size = min(len(data), limit - taken)
            # not inside a UTF-8 sequence: continuation bytes are 0b10xxxxxx
            while 0 < size < len(data) and data[size] & 0xC0 == 0x80:
                size -= 1
            if size == 0:
                break
            chunks.append(p.Chunk(stream=stream, data=bytes(data[:size]).decode()))
            taken += size
            if size < len(data):
                break
        return chunks, taken

    def drop(self, size: int) -> None:
        """Forget the first `size` bytes, which the server has. Output added since the
        peek is only ever at the end, so the same bytes go."""
        self.size -= size
        while size:
            data = self._pieces[0][1]
            if len(data) > size:
                del data[:size]
                return
            size -= len(data)
            self._pieces.popleft()


@dataclass
class Run:
    assignment: p.Assignment
    process: asyncio.subprocess.Process | None = None
    output: Output = field(default_factory=Output)
    stopping: str = ""
    # a service run's own directory, holding its loggers file, and the levels written
    private: str | None = None
    loggers: dict[str, str] | None = None


class Agent:
    def __init__(
        self,
        server: str,
        name: str,
        affinity: str | None,
        slots: int,
        token: str = "",
        resources: dict[str, float] | None = None,
        *,
        pool: str | None = None,
        apps: list[str] | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.name = name
        self.affinity = affinity
        self.slots = slots
        self.resources = resources or {}
        # None: not given, so the server keeps the worker's pool and apps as they are
        self.pool = pool
        self.apps = apps
        self.runs: dict[int, Run] = {}
        self._finishes: asyncio.Queue[p.Finish] = asyncio.Queue()
        # ends of runs the next pick reports; while a pick waits, the finish loop sends them
        self._unreported: list[p.Ended] = []
        self._picking = False
        self._slot_free = asyncio.Event()
        self._cpu = CpuMeter()
        self._settings: p.Registered | None = None
        self._http: httpx.AsyncClient | None = None
        # held while output is on its way in a heartbeat, so a run ending meanwhile does
        # not send the same output again with its exit code
        self._sending = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Work until cancelled; on the way out, stop the running processes."""
        async with httpx.AsyncClient(
            base_url=self.server, timeout=30.0, headers=self._headers
        ) as http:
            self._http = http
            await self._register()
            tasks = [
                asyncio.create_task(self._pick_loop(), name="pick"),
                asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
                asyncio.create_task(self._finish_loop(), name="finish"),
            ]
            try:
                await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(
                    *(self._kill(run, "worker shutting down") for run in list(self.runs.values()))
                )

    # -- talking to the server ----------------------------------------------------------

    async def _call(
        self, path: str, body: msgspec.Struct, answer: type[T], seconds: float = 30.0
    ) -> T:
        """POST `body`, retrying with backoff while the server is unreachable or failing;
        a 4xx is a ProtocolError."""
        assert self._http is not None
        delay = _BACKOFF_START
        payload = msgspec.json.encode(body)
        while True:
            try:
                response = await self._http.post(
                    path,
                    content=payload,
                    headers={"content-type": "application/json"},
                    timeout=seconds,
                )
            except httpx.TransportError as exc:
                log.warning(
                    "server unreachable (%s); retrying in %.1f s", exc.__class__.__name__, delay
                )
            else:
                if response.status_code < 300:
                    return msgspec.json.decode(response.content, type=answer)
                if response.status_code < 500:
                    raise ProtocolError(
                        f"{path}: {response.status_code} {response.text}", response.status_code
                    )
                log.warning(
                    "server error %s on %s; retrying in %.1f s", response.status_code, path, delay
                )
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, _BACKOFF_MAX)

    async def _register(self) -> None:
        self._settings = await self._call(
            "/api/v2/workers/register",
            p.Register(
                name=self.name,
                affinity=msgspec.UNSET if self.affinity is None else self.affinity,
                slots=self.slots,
                resources=self.resources,
                pool=msgspec.UNSET if self.pool is None else self.pool,
                apps=msgspec.UNSET if self.apps is None else self.apps,
            ),
            p.Registered,
        )
        log.info("registered as %s with %d slot(s) at %s", self.name, self.slots, self.server)

    def _path(self, verb: str) -> str:
        return f"/api/v2/workers/{quote(self.name, safe='')}/{verb}"

    # -- picking ------------------------------------------------------------------------

    async def _pick_loop(self) -> None:
        while True:
            free = self.slots - len(self.runs)
            if free <= 0:
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            assert self._settings is not None
            wait = self._settings.pick_wait
            ended, self._unreported = self._unreported, []
            self._picking = True
            try:
                picked = await self._call(
                    self._path("pick"),
                    p.Pick(slots=free, wait=wait, finished=ended),
                    p.Picked,
                    seconds=wait + 30,
                )
            except ProtocolError as exc:
                # stopped, removed, or the server forgot us: register again and carry on;
                # the finish loop reports the ends of runs on its own
                log.warning("pick refused (%s); registering again", exc)
                for e in ended:
                    await self._finishes.put(p.Finish(**msgspec.structs.asdict(e)))
                await asyncio.sleep(_BACKOFF_START)
                await self._register()
                continue
            finally:
                self._picking = False
            for done in picked.results:
                log.info("run %d reported: %s", done.event, done.result)
            for assignment in picked.runs:
                run = Run(assignment)
                self.runs[assignment.event] = run
                self._spawn(self._execute(run))

    # -- running ------------------------------------------------------------------------

    async def _execute(self, run: Run) -> None:
        try:
            await self._run_process(run)
        finally:
            # also when the agent is cancelled on its way out
            if run.private is not None:
                shutil.rmtree(run.private, ignore_errors=True)

    async def _run_process(self, run: Run) -> None:
        a = run.assignment
        log.info("job %d (%s) starts: %s", a.job, a.title, a.command)
        env = {**os.environ, **_environment(a.environment)}
        try:
            if a.loggers is not None:
                run.private = tempfile.mkdtemp(prefix=f"corral-run-{a.event}-")
                env[LOGGERS_VARIABLE] = write_loggers(run.private, a.loggers)
                run.loggers = a.loggers
            run.process = await asyncio.create_subprocess_shell(
                a.command,
                cwd=a.dir or None,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                # its own process group, so stopping it stops everything it started
                start_new_session=True,
            )
        except OSError as exc:
            run.output.add("stderr", f"corral worker: cannot start the command: {exc}\n".encode())
            await self._finished(run, 127)
            return
        assert run.process.stdout is not None
        assert run.process.stderr is not None
        # both pipes at once: whichever has output is read first, so the chunks keep the
        # order in which the streams were written, and neither pipe fills up and blocks
        await asyncio.gather(
            _pump(run.output, "stdout", run.process.stdout),
            _pump(run.output, "stderr", run.process.stderr),
        )
        code = await run.process.wait()
        await self._finished(run, code)

    async def _finished(self, run: Run, code: int) -> None:
        a = run.assignment
        stopped = f" ({run.stopping})" if run.stopping else ""
        log.info("job %d ends with exit code %d%s", a.job, code, stopped)
        async with self._sending:
            # what does not fit in one request goes first, while the run is still current
            while True:
                chunks, size = run.output.peek()
                if size in (run.output.size, 0):
                    break
                beat = p.Heartbeat(runs=[p.RunHeartbeat(event=a.event, chunks=chunks)])
                try:
                    await self._call(self._path("heartbeat"), beat, p.HeartbeatAnswer)
                except ProtocolError as exc:
                    log.warning("output of job %d refused (%s)", a.job, exc)
                run.output.drop(size)
            run.output.drop(size)
            self.runs.pop(a.event, None)
        if self._picking:
            await self._finishes.put(p.Finish(event=a.event, exit_code=code, chunks=chunks))
        else:
            # the pick loop wakes for the free slot and reports it with its next pick
            self._unreported.append(p.Ended(event=a.event, exit_code=code, chunks=chunks))
        self._slot_free.set()

    async def _kill(self, run: Run, reason: str) -> None:
        # a leader that has exited may have left the group running: it is stopped too
        if run.stopping or run.process is None:
            return
        run.stopping = reason
        log.info("stopping job %d: %s", run.assignment.job, reason)
        pgid = run.process.pid
        deadline = time.monotonic() + KILL_GRACE
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.process.wait(), KILL_GRACE)
        # the leader may go while what it started lives on (a shell that did not exec its
        # command, a child ignoring SIGTERM) and holds the output pipes, so the run would
        # never end: the whole group gets the grace, then SIGKILL
        while time.monotonic() < deadline:
            if not _group_alive(pgid):
                return
            await asyncio.sleep(0.1)
        if _group_alive(pgid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)

    def _spawn(self, work: Coroutine[None, None, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- reporting ----------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        assert self._settings is not None
        while True:
            busy = bool(self.runs)
            await asyncio.sleep(self._settings.heartbeat_interval if busy else _IDLE_HEARTBEAT)
            async with self._sending:
                sent: dict[int, int] = {}
                reports = []
                for event, run in self.runs.items():
                    chunks, sent[event] = run.output.peek()
                    reports.append(p.RunHeartbeat(event=event, chunks=chunks))
                memory = memory_mb()
                beat = p.Heartbeat(
                    runs=reports,
                    cpu=self._cpu.read(),
                    free_memory=memory[0] if memory else None,
                    total_memory=memory[1] if memory else None,
                )
                try:
                    answer = await self._call(self._path("heartbeat"), beat, p.HeartbeatAnswer)
                except ProtocolError as exc:
                    log.warning("heartbeat refused (%s)", exc)
                    if exc.status == 404:
                        # removed from the farm: what it runs is no longer anybody's
                        for run in list(self.runs.values()):
                            self._spawn(self._kill(run, "the server no longer knows this worker"))
                    continue
                for event, size in sent.items():
                    self.runs[event].output.drop(size)
            for reply in answer.runs:
                current = self.runs.get(reply.event)
                if current is None:
                    continue
                if reply.action == "stop":
                    self._spawn(self._kill(current, reply.reason or "stopped by the server"))
                elif reply.loggers is not None:
                    _update_loggers(current, reply.loggers)

    async def _finish_loop(self) -> None:
        while True:
            finish = await self._finishes.get()
            try:
                done = await self._call(self._path("finish"), finish, p.Finished)
                log.info("run %d reported: %s", finish.event, done.result)
            except ProtocolError as exc:
                log.error("the server refused the end of run %d: %s", finish.event, exc)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # not ours: the group is gone and its number taken by another user's
        return False
    return True


async def _pump(output: Output, stream: p.Stream, pipe: asyncio.StreamReader) -> None:
    while data := await pipe.read(65536):
        output.add(stream, data)
    output.add(stream, b"", final=True)


def write_loggers(directory: str, loggers: dict[str, str]) -> str:
    """Write `loggers` as a JSON object to the loggers file in `directory`; its path.
    The file is replaced in one step (a new file renamed over it), so a task reading it
    sees the old map or the new one, never a part."""
    path = os.path.join(directory, _LOGGERS_FILE)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".loggers-", suffix=".json")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(msgspec.json.encode(loggers))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return path


def _update_loggers(run: Run, loggers: dict[str, str]) -> None:
    """Rewrite the run's loggers file when the server tells other levels; only a run that
    was given one at its start has it."""
    if run.private is None or loggers == run.loggers:
        return
    try:
        write_loggers(run.private, loggers)
    except OSError as exc:
        # the levels stay as they were; the next answer that tells them tries again
        log.warning("cannot write the loggers of job %d: %s", run.assignment.job, exc)
        return
    run.loggers = loggers


def _environment(text: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip():
            env[name.strip()] = value
    return env


def run_agent(
    server: str,
    name: str,
    affinity: str | None,
    slots: int,
    token: str = "",
    resources: dict[str, float] | None = None,
    *,
    pool: str | None = None,
    apps: list[str] | None = None,
) -> None:
    """Run an agent until SIGINT or SIGTERM."""

    async def main() -> None:
        agent = Agent(server, name, affinity, slots, token, resources, pool=pool, apps=apps)
        task = asyncio.create_task(agent.run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
