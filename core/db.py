"""The connection pool and the one way core code runs a transaction."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeAlias, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from core.errors import Invalid

Conn: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"
T = TypeVar("T")

# Deadlocks between writers touching the same groups are expected under load (a finish
# locks a leaf then its ancestors, a pause locks a subtree): the loser runs again.
_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
# PostgreSQL refuses these characters in text: the request carried them
_BAD_TEXT = (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError)
_ATTEMPTS = 8


class ConnectionLost(Exception):
    """The connection died under a request (asyncpg then reports misuse of a closed
    connection, which is not the caller's misuse)."""


# The database cannot be reached, is restarting or went away mid-request: nothing was
# committed, and the same request can succeed once it is back.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    ConnectionLost,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)


class Database:
    """An asyncpg pool over the Corral schema."""

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record]) -> None:
        self.pool = pool

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        min_size: int = 2,
        max_size: int = 20,
        settings: dict[str, str] | None = None,
    ) -> Database:
        pool = await asyncpg.create_pool(
            url,
            min_size=min_size,
            max_size=max_size,
            reset=_keep_session,
            server_settings=settings,
        )
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    async def transact(self, work: Callable[[Conn], Awaitable[T]]) -> T:
        """Run `work` in one transaction, again from the start if it lost a deadlock."""
        for attempt in range(_ATTEMPTS):
            try:
                async with self.pool.acquire() as conn, _lost(conn), conn.transaction():
                    return await work(conn)
            except _BAD_TEXT:
                raise Invalid("text must not contain NUL characters") from None
            except _RETRYABLE:
                if attempt == _ATTEMPTS - 1:
                    raise
                await asyncio.sleep(random.uniform(0, 0.005 * 2**attempt))
        raise AssertionError("unreachable")

    async def read(self, work: Callable[[Conn], Awaitable[T]]) -> T:
        """Run read-only `work` on one connection (one snapshot per statement)."""
        async with self.pool.acquire() as conn, _lost(conn):
            try:
                return await work(conn)
            except _BAD_TEXT:
                raise Invalid("text must not contain NUL characters") from None

    async def statement(self, work: Callable[[Conn], Awaitable[T]]) -> T:
        """Run `work` that changes data in one statement, which is its own transaction:
        no BEGIN and COMMIT round trips on the hot paths. Retried like `transact`."""
        for attempt in range(_ATTEMPTS):
            try:
                return await self.read(work)
            except _RETRYABLE:
                if attempt == _ATTEMPTS - 1:
                    raise
                await asyncio.sleep(random.uniform(0, 0.005 * 2**attempt))
        raise AssertionError("unreachable")


@contextlib.asynccontextmanager
async def _lost(conn: Conn) -> AsyncIterator[None]:
    try:
        yield
    except (asyncpg.InterfaceError, asyncpg.InternalClientError) as exc:
        if _after_loss(exc) or _closed(conn):
            raise ConnectionLost(str(exc)) from exc
        raise


def _closed(conn: Conn) -> bool:
    try:
        return conn.is_closed()
    except asyncpg.InterfaceError:
        # the pool took the connection back as it died
        return True


def _after_loss(exc: BaseException) -> bool:
    """Whether `exc` was raised while handling the loss of the connection (closing a
    transaction whose connection just died)."""
    seen = exc.__context__
    while seen is not None:
        if isinstance(seen, UNAVAILABLE):
            return True
        seen = seen.__context__
    return False


async def _keep_session(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """Skip asyncpg's reset round trip on every release: Corral leaves no session state
    behind (its advisory locks end with their transaction, it never LISTENs or SETs on a
    pooled connection)."""
