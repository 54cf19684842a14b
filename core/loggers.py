"""Logger levels of service runs: a default per logger, and overrides for one
allocation. The effective map reaches a run in its environment as it starts
(`GENVID_LOG_LEVEL_<LOGGER>`) and, while it runs, in its worker's heartbeat answers."""

import re
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Final

from core.db import Conn, Database
from core.errors import Invalid, NotFound
from core.sql import Queries

Q = Queries("loggers.sql")

LEVELS: Final = ("debug", "info", "warning", "error", "fatal", "panic")
_ALIASES: Final = {"warn": "warning"}
_LOGGER = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_NOT_IN_NAME = re.compile(r"[^A-Z0-9_]")


def level_of(text: str) -> str:
    """A level as stored: one of LEVELS (`warn` is `warning`)."""
    level = _ALIASES.get(text.lower(), text.lower())
    if level not in LEVELS:
        raise Invalid(f"{text!r} is not a log level; use one of {', '.join(LEVELS)}")
    return level


def check_logger(logger: str) -> None:
    if not _LOGGER.fullmatch(logger):
        raise Invalid(f"logger id {logger!r} must be 1 to 64 letters, digits, '_', '.' or '-'")


def environment_name(logger: str) -> str:
    """The environment variable that hands a logger's level to a task."""
    return "GENVID_LOG_LEVEL_" + _NOT_IN_NAME.sub("_", logger.upper())


def allocation_id(alloc: str) -> str:
    """`alloc` when it is an allocation id as services make them (a UUID in its canonical
    text); anything else names no allocation. Checked before a query, which would refuse
    a malformed uuid with an error of its own."""
    try:
        canonical = str(uuid.UUID(alloc))
    except ValueError:
        canonical = ""
    if canonical != alloc:
        raise NotFound(f"allocation {alloc!r} does not exist")
    return alloc


class Loggers:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def defaults(self) -> dict[str, str]:
        async def work(conn: Conn) -> dict[str, str]:
            return {r["logger"]: r["level"] for r in await conn.fetch(Q["defaults"])}

        return await self._db.read(work)

    async def set_default(self, logger: str, level: str) -> dict[str, str]:
        """Set a logger's default level ("" removes it); the defaults now."""
        check_logger(logger)
        stored = level_of(level) if level else ""

        async def work(conn: Conn) -> dict[str, str]:
            if stored:
                await conn.execute(Q["set_default"], logger, stored)
            else:
                await conn.execute(Q["delete_default"], logger)
            return {r["logger"]: r["level"] for r in await conn.fetch(Q["defaults"])}

        return await self._db.transact(work)

    async def overrides(self, alloc: str) -> dict[str, str]:
        """Every logger with a default or an override for `alloc`: the override, or ""
        where the allocation uses the default."""

        async def work(conn: Conn) -> dict[str, str]:
            return await _overrides(conn, allocation_id(alloc))

        return await self._db.read(work)

    async def set_override(self, alloc: str, logger: str, level: str) -> dict[str, str]:
        """Set `alloc`'s level for `logger` ("" clears it); its map now."""
        check_logger(logger)
        stored = level_of(level) if level else ""
        known = allocation_id(alloc)

        async def work(conn: Conn) -> dict[str, str]:
            if await conn.fetchval(Q["allocation_known"], known) is None:
                raise NotFound(f"allocation {alloc!r} does not exist")
            if stored:
                await conn.execute(Q["set_override"], known, logger, stored)
            else:
                await conn.execute(Q["delete_override"], known, logger)
            return await _overrides(conn, known)

        return await self._db.transact(work)


async def _overrides(conn: Conn, alloc: str) -> dict[str, str]:
    if await conn.fetchval(Q["allocation_known"], alloc) is None:
        raise NotFound(f"allocation {alloc!r} does not exist")
    return {r["logger"]: r["level"] for r in await conn.fetch(Q["overrides"], alloc)}


async def effective(conn: Conn, jobs: Sequence[int]) -> dict[int, dict[str, str]]:
    """The effective levels of the allocations whose leaves are `jobs` (each allocation
    has a map, empty when no logger has a level)."""
    levels: dict[int, dict[str, str]] = defaultdict(dict)
    for row in await conn.fetch(Q["effective"], list(jobs)):
        levels[row["job_id"]][row["logger"]] = row["level"]
    return {job: levels.get(job, {}) for job in jobs}
