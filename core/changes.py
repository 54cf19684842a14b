"""The change feed: what tells an open dashboard to read again.

Every statement that changes jobs or workers notifies `corral_changes` with the table's
name (migration 0018), whichever server process made it; each process listens on one
dedicated connection and fans the news out to its subscribers (the `GET
/api/v2/changes` streams). A subscriber is told which tables changed, never how: the
page reads what it shows again, so a message lost or merged costs nothing.

Coalesced per subscriber: whatever arrives while a message waits, or within `INTERVAL`
after one was taken, joins the next one, so a farm finishing 500 jobs a second sends each
page at most a few messages a second, each naming at most the two tables.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Final, Literal, get_args

import asyncpg

log = logging.getLogger("corral.changes")

Table = Literal["jobs", "workers"]
TABLES: Final[frozenset[str]] = frozenset(get_args(Table))
CHANNEL: Final = "corral_changes"
# seconds between two messages to one subscriber at least
INTERVAL: Final = 0.25
# a listener connection lost is opened again after this many seconds
_RECONNECT: Final = 1.0


class Subscriber:
    """The tables changed since the subscriber last took its news."""

    def __init__(self) -> None:
        self._changed: set[str] = set()
        self._ready = asyncio.Event()

    def add(self, tables: set[str]) -> None:
        self._changed |= tables
        self._ready.set()

    async def next(self) -> list[str]:
        """The next message: the tables changed (sorted), once at least one has."""
        await self._ready.wait()
        self._ready.clear()
        changed, self._changed = sorted(self._changed), set()
        return changed


class ChangeFeed:
    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._subscribers: set[Subscriber] = set()
        self._task: asyncio.Task[None] | None = None
        # set while a listener connection is open: what a subscriber misses before is
        # told as "everything changed" when it opens
        self.listening = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscriber]:
        subscriber = Subscriber()
        self._subscribers.add(subscriber)
        try:
            yield subscriber
        finally:
            self._subscribers.discard(subscriber)

    def subscribers(self) -> int:
        return len(self._subscribers)

    def _tell(self, tables: set[str]) -> None:
        for subscriber in self._subscribers:
            subscriber.add(tables)

    def _on_change(self, conn: object, pid: int, channel: str, payload: object) -> None:
        if isinstance(payload, str) and payload in TABLES:
            self._tell({payload})

    async def _listen(self) -> None:
        while True:
            try:
                conn = await asyncpg.connect(self._url)
            except (OSError, asyncpg.PostgresError):
                log.warning("cannot listen for changes; trying again")
                await asyncio.sleep(_RECONNECT)
                continue
            lost = asyncio.Event()
            try:
                conn.add_termination_listener(lambda c, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, self._on_change)
                self.listening.set()
                # whatever changed while no one listened
                self._tell(set(TABLES))
                await lost.wait()
            finally:
                self.listening.clear()
                await conn.close()
