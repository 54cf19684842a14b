"""Stored JSON documents by name (the Genvid face's settings and events definitions), and
the events results feed, which lives in each server process's memory.

A document is written whole, in one transaction, and read back as it was written (the
`documents` table keeps its JSON text, keys in their order).
"""

import time
from collections.abc import Callable
from typing import Final, TypeVar

import msgspec

from core.db import Conn, Database
from core.sql import Queries

Q = Queries("documents.sql")
T = TypeVar("T")


class Documents:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, name: str, kind: type[T]) -> T | None:
        """The document stored under `name`, decoded as `kind`; None before any `put`."""

        async def work(conn: Conn) -> str | None:
            text: str | None = await conn.fetchval(Q["get"], name)
            return text

        text = await self._db.read(work)
        return None if text is None else msgspec.json.decode(text, type=kind)

    async def put(self, name: str, document: object) -> None:
        """Store `document` under `name`, replacing what was there."""
        text = msgspec.json.encode(document).decode()

        async def work(conn: Conn) -> None:
            await conn.execute(Q["put"], name, text)

        await self._db.transact(work)


class Result(msgspec.Struct, frozen=True):
    """One message of the events results feed."""

    error: str = ""
    value: str = ""


class ResultsFeed:
    """The events results feed of one server process (`GET /v1/events/results/{counter}`).

    Messages have positions from 0; a reader asks for those after the position it last
    saw and learns the end of the feed. When nobody has read for `IDLE` seconds, the
    feed is emptied and positions start again from 0. A producer appends through the
    core (`Core.event_results.append`); Corral has none of its own.
    """

    IDLE: Final = 5.0
    # messages kept at most; the oldest go first, their positions stay taken
    LIMIT: Final = 10_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._messages: list[Result] = []
        # the position of _messages[0]
        self._first = 0
        self._read_at = clock()

    def append(self, *messages: Result) -> None:
        self._expire()
        self._messages.extend(messages)
        overflow = len(self._messages) - self.LIMIT
        if overflow > 0:
            del self._messages[:overflow]
            self._first += overflow

    def read(self, counter: int) -> tuple[int, list[Result]]:
        """The end of the feed and the messages after position `counter`; a counter past
        the end (the feed was emptied since) gets every message from the start."""
        self._expire()
        self._read_at = self._clock()
        end = self._first + len(self._messages)
        if counter > end:
            counter = 0
        return end, self._messages[max(counter - self._first, 0) :]

    def _expire(self) -> None:
        now = self._clock()
        if now - self._read_at > self.IDLE:
            self._messages.clear()
            self._first = 0
            # what is appended from now on waits IDLE seconds for its first reader
            self._read_at = now
