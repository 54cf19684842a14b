"""The change feed: what tells an open dashboard to read again.

Every statement that changes jobs or workers notifies `corral_changes` with the table's
name (migration 0018), whichever server process made it; each process listens on one
dedicated connection and fans the news out to its subscribers (the `GET
/api/v2/changes` streams). A subscriber is told which tables changed, never how: the
page reads what it shows again, so a message lost or merged costs nothing.

Coalesced per subscriber: whatever arrives while a message waits, or within `INTERVAL`
after one was taken, joins the next one, so a farm finishing 500 jobs a second sends each
page at most a few messages a second, each naming at most the two tables.

A process listens only while it has subscribers, and `LINGER` seconds after the last one
left (a page reloading keeps it): a listening connection has PostgreSQL signal it at every
commit that changes jobs or workers, which costs a busy farm with no page open 5% of its
jobs a second (docs/bench-profile.md). A subscriber that arrives while no one listens is
told "everything changed" once the listener is up, so it misses nothing of the gap.
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
# seconds a process goes on listening after its last subscriber left
LINGER: Final = 30.0


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
        # the listener's end, LINGER seconds after the last subscriber left
        self._linger: asyncio.TimerHandle | None = None
        self._stopped = False
        # set while a listener connection is open: what a subscriber misses before is
        # told as "everything changed" when it opens
        self.listening = asyncio.Event()

    async def stop(self) -> None:
        self._stopped = True
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscriber]:
        subscriber = Subscriber()
        self._subscribers.add(subscriber)
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        if self._task is None and not self._stopped:
            self._task = asyncio.create_task(self._listen())
        try:
            yield subscriber
        finally:
            self._subscribers.discard(subscriber)
            if not self._subscribers and self._task is not None and self._linger is None:
                self._linger = asyncio.get_running_loop().call_later(LINGER, self._lingered)

    def _lingered(self) -> None:
        """Stop listening until the next subscriber (the listener closes its connection
        as it is cancelled)."""
        self._linger = None
        if not self._subscribers and self._task is not None:
            self._task.cancel()
            self._task = None

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
