"""The clients of workflows (AWE's workers): each a Corral worker of its name with one
slot and the rule that takes workflow leaves, plus the profile it registered with.

Checkout is a pick through the dispatcher, a report the end of the run, a heartbeat the
worker's ping; nothing here chooses work. What follows a failed report is the failure
policy of workflows: the retry policy requeues a workunit up to its limit (its leaf's
`retry`), then the workflow is suspended with an error saying why; `failed-permanent`
ends the workflow at once; a client whose last `[awe] max_client_failure` runs all failed
is suspended (its worker stopped). A client is suspended exactly when its worker is
stopped, so stopping it through another face suspends it too.
"""

from collections.abc import Sequence
from typing import Literal

import msgspec

from core.config import Config
from core.db import Conn, Database
from core.dispatch import Picks
from core.errors import CorralError, Invalid, NotFound
from core.hookspecs import JobView
from core.jobs import Jobs
from core.logs import LogChunk
from core.pings import Machine
from core.runs import FinishResult, RunReport, Runs
from core.sql import Queries
from core.workers import Workers
from core.workflows import AFFINITY, Unit, Workflows

Q = Queries("clients.sql")
WORKFLOWS = Queries("workflows.sql")

Status = Literal["done", "fail", "failed-permanent"]
# what a report's status means to the run: AWE's workers exit 42 for a permanent failure
EXIT_CODES: dict[Status, int] = {"done": 0, "fail": 1, "failed-permanent": 42}
# bytes of each report file that join the workunit's log, well under [limits]
# max_log_chunk for both together
_LOG_TAIL = 256 * 1024
# bytes of stderr a workflow's error keeps as `apperror`
_APP_ERROR = 16 * 1024
MAX_CLIENT_FAILURE = "MAX_CLIENT_FAILURE on client reached"


class ClientNotFound(NotFound):
    """AWE's workers compare this message to register again."""

    def __init__(self) -> None:
        super().__init__("Client not found")


class Refused(Invalid):
    """A checkout refused for a reason AWE's workers compare with `==`."""


class Client(msgspec.Struct, frozen=True, kw_only=True):
    """A client as the face shows it."""

    name: str
    profile: dict[str, object]
    registered: float
    ping_time: float
    lost: bool
    suspended: bool
    suspend_reason: str
    # workunit ids: those it runs now, those it failed (never handed to it again)
    running: list[str]
    skip: list[str]
    checkouts: int
    completed: int
    failed: int

    @property
    def status(self) -> str:
        if self.suspended:
            return "suspended"
        return "busy" if self.running else "online"


class _Check(msgspec.Struct, frozen=True):
    lost: bool
    suspended: bool
    busy: bool
    queue_suspended: bool


class Clients:
    def __init__(
        self,
        db: Database,
        config: Config,
        jobs: Jobs,
        workers: Workers,
        picks: Picks,
        runs: Runs,
        workflows: Workflows,
    ) -> None:
        self._db = db
        self._config = config
        self._jobs = jobs
        self._workers = workers
        self._picks = picks
        self._runs = runs
        self._workflows = workflows

    async def register(self, name: str, ip: str, profile: dict[str, object]) -> None:
        """A client starts, or registers again (its runs of an earlier life end; its
        counters, skip list and suspension stay). Its group is its worker's pool and its
        apps the applications it runs, as the placement policy matches them."""
        group = profile.get("group")
        apps = profile.get("apps")
        await self._workers.register(
            name,
            ip,
            slots=1,
            rules=AFFINITY,
            pool=group if isinstance(group, str) else "",
            apps=[a for a in apps if isinstance(a, str)] if isinstance(apps, list) else [],
        )

        async def work(conn: Conn) -> None:
            await conn.execute(Q["put_client"], name, msgspec.json.encode(profile).decode())

        await self._db.transact(work)

    async def _check(self, name: str) -> _Check:
        """The client's state; a client unknown or lost is not found (AWE's workers then
        register again)."""

        async def work(conn: Conn) -> _Check | None:
            row = await conn.fetchrow(Q["check"], name)
            return None if row is None else _Check(*row.values())

        found = await self._db.read(work)
        if found is None or found.lost:
            raise ClientNotFound()
        return found

    async def profile(self, name: str) -> dict[str, object]:
        await self._check(name)

        async def work(conn: Conn) -> str | None:
            found: str | None = await conn.fetchval(Q["profile"], name)
            return found

        found = await self._db.read(work)
        if found is None:
            raise ClientNotFound()
        return msgspec.json.decode(found, type=dict[str, object])

    async def clients(self, names: Sequence[str] | None = None) -> list[Client]:
        """The clients `names` (every client when None), lost ones included."""

        async def work(conn: Conn) -> list[Client]:
            rows = await conn.fetch(Q["clients"], None if names is None else list(names))
            return [
                Client(
                    name=r["name"],
                    profile=msgspec.json.decode(r["profile"], type=dict[str, object]),
                    registered=r["registered"],
                    ping_time=r["ping_time"],
                    lost=r["lost"],
                    suspended=r["suspended"],
                    suspend_reason=r["suspend_reason"],
                    running=list(r["running"]),
                    skip=list(r["skip"]),
                    checkouts=r["checkouts"],
                    completed=r["completed"],
                    failed=r["failed"],
                )
                for r in rows
            ]

        return await self._db.read(work)

    async def client(self, name: str) -> Client:
        await self._check(name)
        [found] = await self.clients([name])
        return found

    async def suspend(self, names: Sequence[str] | None, reason: str) -> int:
        """Suspend the clients `names` (all when None); how many were not yet."""
        if names is not None:
            for name in names:
                await self._check(name)

        async def work(conn: Conn) -> int:
            rows = await conn.fetch(Q["suspend"], None if names is None else list(names), reason)
            return len(rows)

        return await self._db.transact(work)

    async def resume(self, names: Sequence[str] | None) -> int:
        """Resume the suspended clients `names` (all when None); how many were."""
        if names is not None:
            for name in names:
                await self._check(name)

        async def work(conn: Conn) -> int:
            return len(await conn.fetch(Q["resume"], None if names is None else list(names)))

        return await self._db.transact(work)

    async def checkout(self, name: str, wait: float) -> Unit | None:
        """A workunit for the client, within `wait` seconds; None when there is none."""
        state = await self._check(name)
        if state.suspended:
            raise Refused("Client suspended")
        if state.queue_suspended:
            raise Refused("Server queue is suspended")
        if state.busy:
            raise Refused("Client busy")
        picked = await self._picks.pick(name, 1, wait)
        if picked is None:
            raise ClientNotFound()
        if not picked.runs:
            return None
        return await self._workflows.unit(picked.runs[0].job)

    async def report(
        self, name: str, unit_id: str, status: Status, files: dict[str, bytes]
    ) -> None:
        """A workunit's end as the client reports it, with its stdout, stderr and notes. A
        report of a run no longer current (stopped, ended, another client's) changes
        nothing: AWE's workers repeat any report that is not answered "ok"."""
        await self._check(name)
        try:
            job = await self._workflows.leaf(unit_id)
        except NotFound:
            return
        texts = {k: v.decode("utf-8", errors="replace") for k, v in files.items()}
        event = await self._runs.current_event(job, name)
        if event is None:
            return
        await self._workflows.put_reports(job, texts)
        # the log takes the end of each file (the whole is kept for `?report=`), within
        # what one heartbeat may carry
        chunks = tuple(
            LogChunk("stdout" if kind == "stdout" else "stderr", files[kind][-_LOG_TAIL:])
            for kind in ("stdout", "stderr")
            if files.get(kind)
        )
        await self._runs.heartbeat(name, Machine(), [RunReport(event, chunks=chunks)])

        async def then(conn: Conn, result: FinishResult, leaf: JobView) -> None:
            if status != "done":
                await self._failed(conn, name, leaf.id, status, result, texts)

        await self._runs.finish(
            name,
            event,
            EXIT_CODES[status],
            permanent=status == "failed-permanent",
            then=None if status == "done" else then,
        )

    async def _failed(
        self,
        conn: Conn,
        name: str,
        leaf: int,
        status: Status,
        result: FinishResult,
        texts: dict[str, str],
    ) -> None:
        """After a failed run, in its transaction: the workflow's and the client's part of
        the failure policy."""
        if result == "ERROR":
            # the leaf's failures are spent, or the failure is permanent: the whole
            # workflow stops, with an error saying why
            unit = await conn.fetchrow(Q["unit"], leaf)
            if unit is not None:
                permanent = status == "failed-permanent"
                error = {
                    "clientfailed": name,
                    "workfailed": f"{unit['workflow']}_{unit['task']}_{unit['rank']}",
                    "taskfailed": f"{unit['workflow']}_{unit['task']}",
                    "servernotes": "exit code 42 encountered"
                    if permanent
                    else f"workunit failed {self._config.awe.max_work_failure} time(s)",
                    "worknotes": texts.get("worknotes", ""),
                    "apperror": texts.get("stderr", "")[-_APP_ERROR:],
                    "status": "failed-permanent" if permanent else "suspend",
                }
                await self._jobs.pause_in(conn, [unit["root"]])
                await conn.execute(
                    WORKFLOWS["mark"],
                    unit["root"],
                    msgspec.json.encode(error).decode(),
                    0,
                    "failed-permanent" if permanent else None,
                )
        limit = self._config.awe.max_client_failure
        if status == "fail" and limit > 0 and await conn.fetchval(Q["failing"], name, limit):
            await conn.fetch(Q["suspend"], [name], MAX_CLIENT_FAILURE)

    async def heartbeat(self, name: str, running: Sequence[str]) -> list[str]:
        """The client is alive and runs the workunits `running`; those it must discard."""
        await self._check(name)
        discard: list[str] = []
        reports: list[RunReport] = []
        by_event: dict[int, str] = {}
        for unit_id in running:
            try:
                job = await self._workflows.leaf(unit_id)
            except CorralError:
                discard.append(unit_id)
                continue
            event = await self._runs.current_event(job, name)
            if event is None:
                discard.append(unit_id)
                continue
            reports.append(RunReport(event))
            by_event[event] = unit_id
        answers = await self._runs.heartbeat(name, Machine(), reports)
        if answers is None:
            raise ClientNotFound()
        discard += [by_event[a.event] for a in answers if a.action == "stop"]
        return discard
