"""The clients of workflows (AWE's workers): each a Corral worker of its name with one
slot and the rule that takes workflow leaves, plus the profile it registered with.

Checkout is a pick through the dispatcher, a report the end of the run, a heartbeat the
worker's ping; nothing here chooses work.
"""

from collections.abc import Sequence
from typing import Literal

import msgspec

from core.db import Conn, Database
from core.dispatch import Picks
from core.errors import CorralError, NotFound
from core.logs import LogChunk
from core.pings import Machine
from core.runs import RunReport, Runs
from core.sql import Queries
from core.workers import Workers
from core.workflows import AFFINITY, Unit, Workflows

Q = Queries("workflows.sql")

Status = Literal["done", "fail", "failed-permanent"]
# what a report's status means to the run: AWE's workers exit 42 for a permanent failure
EXIT_CODES: dict[Status, int] = {"done": 0, "fail": 1, "failed-permanent": 42}
# bytes of each report file that join the workunit's log, well under [limits]
# max_log_chunk for both together
_LOG_TAIL = 256 * 1024


class ClientNotFound(NotFound):
    """AWE's workers compare this message to register again."""

    def __init__(self) -> None:
        super().__init__("Client not found")


class Clients:
    def __init__(
        self, db: Database, workers: Workers, picks: Picks, runs: Runs, workflows: Workflows
    ) -> None:
        self._db = db
        self._workers = workers
        self._picks = picks
        self._runs = runs
        self._workflows = workflows

    async def register(self, name: str, ip: str, profile: dict[str, object]) -> None:
        """A client starts, or registers again (its runs of an earlier life end)."""
        await self._workers.register(name, ip, slots=1, rules=AFFINITY)

        async def work(conn: Conn) -> None:
            await conn.execute(Q["put_client"], name, msgspec.json.encode(profile).decode())

        await self._db.transact(work)

    async def profile(self, name: str) -> dict[str, object]:
        async def work(conn: Conn) -> str | None:
            found: str | None = await conn.fetchval(Q["client"], name)
            return found

        found = await self._db.read(work)
        if found is None:
            raise ClientNotFound()
        return msgspec.json.decode(found, type=dict[str, object])

    async def checkout(self, name: str, wait: float) -> Unit | None:
        """A workunit for the client, within `wait` seconds; None when there is none."""
        await self.profile(name)
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
        await self.profile(name)
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
        await self._runs.finish(name, event, EXIT_CODES[status])

    async def heartbeat(self, name: str, running: Sequence[str]) -> list[str]:
        """The client is alive and runs the workunits `running`; those it must discard."""
        await self.profile(name)
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
