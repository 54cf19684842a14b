"""API tokens: who is calling, and in which role.

A token is shown once, when it is created; the database keeps its SHA-256 only. Lookups
are cached for a few seconds in each server process, so a request costs no query while
its token is fresh, and a revoked token stops working everywhere within `FRESH` seconds.
"""

import hashlib
import secrets
import time
from typing import Final, Literal

import msgspec

from core.db import Conn, Database
from core.errors import Invalid, NotFound
from core.sql import Queries

Q = Queries("tokens.sql")

# an API token's role
Role = Literal["admin", "user", "worker"]
ROLES: Final[tuple[Role, ...]] = ("admin", "user", "worker")
# a caller's: an API token's role, or "cgroup" for a client sending its client group's
# token (core/client_groups.py), which is no API token
CallerRole = Role | Literal["cgroup"]
# seconds a lookup (or the absence of any token) is trusted before asking again
FRESH: Final = 5.0
# tokens start with this, so a leaked one is easy to recognize and search for
PREFIX: Final = "corral_"
# cached lookups at most; random guesses must not grow the cache without bound
_CACHE_LIMIT = 10_000


class Identity(msgspec.Struct, frozen=True):
    """Who a request comes from. With no token created yet (a first try on loopback),
    every caller is an anonymous admin.

    `group` is the client group whose token the caller sent, in open mode too (an AWE
    client's registration depends on it); None without one. A client group's caller has
    the role "cgroup" and the group as its name once API tokens exist."""

    name: str
    role: CallerRole
    group: str | None = None


OPEN: Final = Identity(name="", role="admin")


class TokenInfo(msgspec.Struct, frozen=True):
    id: int
    name: str
    role: Role
    created: float
    revoked: float | None


class Tokens:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._seen: dict[bytes, tuple[Identity | None, float]] = {}
        self._required: tuple[bool, float] = (False, 0.0)

    async def create(self, name: str, role: Role) -> tuple[int, str]:
        """A new token for `name` in `role`: its id and the token itself, which is not
        kept anywhere and cannot be shown again."""
        if not name or len(name) > 255:
            raise Invalid("a token's name must be 1 to 255 characters")
        if role not in ROLES:
            raise Invalid(f"role must be one of {', '.join(ROLES)}")
        secret = PREFIX + secrets.token_urlsafe(32)

        async def work(conn: Conn) -> int:
            token_id: int = await conn.fetchval(Q["create"], name, role, _hash(secret))
            return token_id

        return await self._db.statement(work), secret

    async def list(self) -> list[TokenInfo]:
        async def work(conn: Conn) -> list[TokenInfo]:
            return [TokenInfo(**dict(r.items())) for r in await conn.fetch(Q["list"])]

        return await self._db.read(work)

    async def revoke(self, token_id: int) -> None:
        """Revoke a token; revoking one already revoked changes nothing."""

        async def work(conn: Conn) -> None:
            revoked = await conn.fetchval(Q["revoke"], token_id)
            if revoked is None and await conn.fetchval(Q["known"], token_id) is None:
                raise NotFound(f"no token with id {token_id}")

        await self._db.transact(work)
        self._seen.clear()

    async def required(self) -> bool:
        """Whether requests need a token: true once any token was ever created."""
        required, until = self._required
        if required or time.monotonic() < until:
            return required

        async def work(conn: Conn) -> bool:
            exists: bool = await conn.fetchval(Q["required"])
            return exists

        required = await self._db.read(work)
        self._required = (required, time.monotonic() + FRESH)
        return required

    async def identify(self, secret: str) -> Identity | None:
        """The holder of `secret`, or None for a token unknown or revoked."""
        key = _hash(secret)
        now = time.monotonic()
        cached = self._seen.get(key)
        if cached is not None and now < cached[1]:
            return cached[0]

        async def work(conn: Conn) -> Identity | None:
            row = await conn.fetchrow(Q["identify"], key)
            return None if row is None else Identity(name=row["name"], role=row["role"])

        identity = await self._db.read(work)
        if len(self._seen) >= _CACHE_LIMIT:
            self._seen.clear()
        self._seen[key] = (identity, now + FRESH)
        return identity


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", errors="surrogatepass")).digest()
