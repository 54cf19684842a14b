"""What Corral's own page reads beyond the job and worker listings: a job's ancestors and
runs and the jobs that wait on it, a window of its log, and the farm at a glance."""

import math
import time
from collections.abc import Sequence
from typing import Final

import msgspec

from core import metrics
from core.db import Conn, Database
from core.errors import Invalid, NotFound
from core.logs import Logs
from core.models import EventState
from core.sql import Queries

Q = Queries("dashboard.sql")

# the chart's window: the last hour, by the minute
MINUTES: Final = 60
# runs and dependants listed at most: the page shows the newest, not a million
RUNS_SHOWN: Final = 200
DEPENDANTS_SHOWN: Final = 1000


class Ancestor(msgspec.Struct):
    id: int
    title: str


class Run(msgspec.Struct, kw_only=True):
    """One run of a job: where, when, how long, and how it ended."""

    id: int
    worker: str
    state: EventState
    start: float
    # seconds; so far, while it runs
    duration: float
    # None while it runs, and when it ended without exiting (stopped, lost)
    exit_code: int | None
    # why it ended other than by its own exit: paused, reset, timeout, ...
    reason: str


class LogWindow(msgspec.Struct, kw_only=True):
    """Bytes `start` to `end` of a job's log as text (undecodable bytes replaced), and the
    log's size when read: the page asks for earlier bytes with `end` = this `start`."""

    start: int
    end: int
    size: int
    text: str
    # the job is running: more may come
    running: bool
    # when the newest output arrived (epoch seconds), None before any
    last_output: float | None = None


class Minute(msgspec.Struct):
    # the minute's start, epoch seconds
    at: int
    finished: int
    failed: int


class Sample(msgspec.Struct):
    """The farm as sampled once in a minute."""

    # the minute's start, epoch seconds
    at: int
    # leaves waiting or pending
    queued: int
    # runs going on, and the slots of the workers in dispatch
    busy: int
    slots: int


class Glance(msgspec.Struct, kw_only=True):
    """The farm at a glance."""

    # leaves (not groups) by state
    jobs: dict[str, int]
    # workers by state, STOPPED for those out of dispatch
    workers: dict[str, int]
    # slots of the workers in dispatch, and runs going on
    slots: int
    busy: int
    # runs ended per minute over the last hour, oldest first, every minute present
    minutes: list[Minute]
    # the samples of the last hour, oldest first: a minute no server sampled is absent
    history: list[Sample] = msgspec.field(default_factory=list)


class Dashboard:
    def __init__(self, db: Database, logs: Logs) -> None:
        self._db = db
        self._logs = logs

    async def path(self, job_id: int) -> list[Ancestor]:
        async def work(conn: Conn) -> list[Ancestor]:
            row = await conn.fetchrow(Q["job_path"], job_id)
            if row is None:
                raise NotFound(f"no such job: {job_id}")
            return [Ancestor(i, t) for i, t in zip(row["ids"], row["titles"], strict=True)]

        return await self._db.read(work)

    async def runs(self, job_id: int) -> list[Run]:
        async def work(conn: Conn) -> list[Run]:
            await _require(conn, job_id)
            rows = await conn.fetch(Q["job_runs"], job_id, RUNS_SHOWN)
            return [msgspec.convert(dict(r.items()), Run) for r in rows]

        return await self._db.read(work)

    async def dependants(self, job_id: int) -> list[int]:
        async def work(conn: Conn) -> list[int]:
            await _require(conn, job_id)
            rows = await conn.fetch(Q["job_dependants"], job_id, DEPENDANTS_SHOWN)
            return [r["job_id"] for r in rows]

        return await self._db.read(work)

    async def log(self, job_id: int, start: int | None, end: int | None, limit: int) -> LogWindow:
        """At most `limit` bytes of the log: from byte `start` on when it is given (to
        follow a running job's new output), else ending at byte `end` (None: the end), so
        the page tails a log and pages back through it without reading it whole."""

        if start is not None and end is not None:
            raise Invalid("a log window is read from a start or up to an end, not both")

        async def size(conn: Conn) -> tuple[int, bool, float | None]:
            row = await conn.fetchrow(Q["job_log_size"], job_id)
            if row is None:
                raise NotFound(f"no such job: {job_id}")
            return row["log_size"], row["running"], row["last_output"]

        total, running, last_output = await self._db.read(size)
        if start is not None:
            first = min(start, total)
            stop = min(first + limit, total)
        else:
            stop = total if end is None else min(end, total)
            first = max(stop - limit, 0)
        read = await self._logs.read_merged(job_id, first, stop - first)
        log_size = max(read.size, total)
        # a window cut inside a character would show it as two replacement characters, one
        # at each side of the cut: the window shrinks to whole characters instead, and the
        # reader's next window (from this `end`, or up to this `start`) takes the rest. A
        # character the log will never complete (it has ended) is shown as it is.
        head, tail = _whole_characters(
            read.data,
            cut_head=read.start > 0,
            cut_tail=running or read.start + len(read.data) < log_size,
        )
        return LogWindow(
            start=read.start + head,
            end=read.start + tail,
            size=log_size,
            text=read.data[head:tail].decode("utf-8", errors="replace"),
            running=running,
            last_output=last_output,
        )

    async def last_outputs(self, job_ids: Sequence[int]) -> dict[int, float]:
        """When the newest output of each of `job_ids` arrived, for those with any."""
        if not job_ids:
            return {}

        async def work(conn: Conn) -> dict[int, float]:
            rows = await conn.fetch(Q["last_outputs"], list(job_ids))
            return {r["id"]: r["at"] for r in rows}

        return await self._db.read(work)

    async def sample(self, keep: float) -> bool:
        """Write this minute's sample of the farm unless a server process did already, and
        prune the samples older than `keep` seconds; True when this call wrote it."""
        minute = math.floor(time.time() / 60) * 60

        async def done(conn: Conn) -> bool:
            return await conn.fetchval(Q["farm_sampled"], minute) is not None

        if await self._db.read(done):
            return False
        farm = await metrics.farm(self._db)
        queued = farm.jobs.get("WAITING", 0) + farm.jobs.get("PENDING", 0)

        async def work(conn: Conn) -> bool:
            slots = await conn.fetchrow(Q["farm_slots"])
            assert slots is not None
            status: str = await conn.execute(
                Q["farm_sample"], minute, queued, slots["busy"], slots["slots"]
            )
            await conn.execute(Q["farm_prune"], minute - math.ceil(keep))
            return status.endswith(" 1")

        return await self._db.transact(work)

    async def glance(self) -> Glance:
        farm = await metrics.farm(self._db)
        now = time.time()
        first = (math.floor(now / 60) - (MINUTES - 1)) * 60

        async def work(conn: Conn) -> Glance:
            slots = await conn.fetchrow(Q["farm_slots"])
            assert slots is not None
            counts = {
                r["minute"]: (r["finished"], r["failed"])
                for r in await conn.fetch(Q["farm_minutes"], float(first))
            }
            minutes = [Minute(first + 60 * m, *counts.get(m, (0, 0))) for m in range(MINUTES)]
            history = [
                Sample(r["minute"], r["queued"], r["busy"], r["slots"])
                for r in await conn.fetch(Q["farm_history"], first)
            ]
            return Glance(
                jobs=dict(farm.jobs),
                workers=dict(farm.workers),
                slots=slots["slots"],
                busy=slots["busy"],
                minutes=minutes,
                history=history,
            )

        return await self._db.read(work)


async def _require(conn: Conn, job_id: int) -> None:
    if await conn.fetchval(Q["job_exists"], job_id) is None:
        raise NotFound(f"no such job: {job_id}")


def _whole_characters(data: bytes, *, cut_head: bool, cut_tail: bool) -> tuple[int, int]:
    """Where the whole UTF-8 characters of `data` begin and end: past the continuation
    bytes it starts with (when `cut_head`), and before a last character whose bytes are
    not all there (when `cut_tail`). Bytes that are not UTF-8 at all are left as they are:
    at most 3 are looked at on either side."""
    head = 0
    if cut_head:
        while head < min(3, len(data)) and 0x80 <= data[head] < 0xC0:
            head += 1
    tail = len(data)
    if cut_tail:
        lead = tail - 1
        while lead >= max(head, tail - 3) and 0x80 <= data[lead] < 0xC0:
            lead -= 1
        if lead >= head and tail - lead < _utf8_length(data[lead]):
            tail = lead
    return head, tail


def _utf8_length(lead: int) -> int:
    """How many bytes the UTF-8 character that `lead` begins takes (1 for a byte that
    begins none)."""
    if 0xC0 <= lead < 0xE0:
        return 2
    if 0xE0 <= lead < 0xF0:
        return 3
    if 0xF0 <= lead < 0xF8:
        return 4
    return 1
