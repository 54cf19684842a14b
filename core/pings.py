"""Idle heartbeats, written in batches.

An idle worker's heartbeat is the most frequent request of a big farm (10,000 workers at
one every 5 s make 2,000 a second) and only says the worker is alive. They are written
like a group commit: the first one starts a write at once, those arriving meanwhile wait
for the next, which takes them all in one statement. A heartbeat waits for at most the
write in flight and its own; a farm costs a few statements a second instead of one per
heartbeat.
"""

import asyncio

import msgspec

from core.db import Database
from core.sql import Queries

Q = Queries("runs.sql")

# heartbeats one statement takes at most
_BATCH = 2000


class Machine(msgspec.Struct, frozen=True):
    """What a worker tells of its machine."""

    cpu: list[float] | None = None
    free_memory: int | None = None
    total_memory: int | None = None


class _Row(msgspec.Struct, frozen=True):
    name: str
    cpu: list[float] | None
    free_memory: int | None
    total_memory: int | None


class Pings:
    """The idle heartbeats of one server process, waiting for their write."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._next: list[tuple[_Row, asyncio.Future[bool]]] = []
        self._writing: asyncio.Task[None] | None = None

    async def ping(self, worker: str, machine: Machine) -> bool:
        """The worker is alive; False if it is not registered."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        row = _Row(worker, machine.cpu, machine.free_memory, machine.total_memory)
        self._next.append((row, future))
        if self._writing is None:
            self._writing = asyncio.create_task(self._write())
        return await future

    async def _write(self) -> None:
        try:
            while self._next:
                batch, self._next = self._next[:_BATCH], self._next[_BATCH:]
                try:
                    known = await self._known([row for row, _ in batch])
                except Exception as exc:
                    # each heartbeat of the batch answers the error (503 for an
                    # unreachable database); the next batch tries again
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for row, future in batch:
                    # a request gone meanwhile cancelled its own
                    if not future.done():
                        future.set_result(row.name in known)
        finally:
            self._writing = None

    async def _known(self, rows: list[_Row]) -> set[str]:
        payload = msgspec.json.encode(rows).decode()
        found = await self._db.statement(lambda c: c.fetch(Q["ping_workers"], payload))
        return {r["name"] for r in found}
