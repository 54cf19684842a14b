"""Client groups: the groups AWE's clients register in, made by an admin through AWE's
`/cgroup`, each with a token that admits clients into it (docs/awe.md, "Client groups and
tokens").

A group that clients join without a token is only a name in their profiles; a group made
here admits only clients that send its token. A token is shown when it is made (with the
group, or anew once the old one was deleted) and never again: the database keeps its
SHA-256, as for API tokens (core/tokens.py). A lost token is replaced, not recovered:
delete it, make a new one.

Client-group tokens are not API tokens: making a group never takes the server out of
open mode (`Tokens.required` counts API tokens only).
"""

import hashlib
import re
import secrets
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Final

import asyncpg
import msgspec

from core.db import Conn, Database
from core.errors import Invalid, NotFound
from core.sql import Queries

Q = Queries("client_groups.sql")

NAME: Final = re.compile(r"[A-Za-z0-9_.-]+")
MAX_NAME: Final = 255
# what a group's token starts with, so that a leaked one is easy to recognize
PREFIX: Final = "corral_cg_"
# the columns a page may be ordered by; AWE's default is the last change first
ORDERS: Final = ("name", "created_on", "expiration", "last_modified")
# seconds a token lookup is trusted in this process before asking again, as for API tokens
FRESH: Final = 5.0
_CACHE_LIMIT = 10_000
# what PostgreSQL's OFFSET takes comfortably; far past any number of groups
_MAX_OFFSET: Final = 2**31 - 1


class ClientGroup(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    # the token itself only in the answer that made it; "" otherwise
    token: str
    has_token: bool
    created_on: datetime
    expiration: datetime
    last_modified: datetime


class Page(msgspec.Struct, frozen=True):
    groups: list[ClientGroup]
    total: int


class ClientGroups:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._seen: dict[bytes, tuple[str | None, float]] = {}

    async def create(self, name: str) -> ClientGroup:
        """A new group and its token, shown in this answer only."""
        check_name(name)
        secret = _new_secret()

        async def work(conn: Conn) -> asyncpg.Record | None:
            row: asyncpg.Record | None = await conn.fetchrow(
                Q["create"], uuid.uuid4(), name, _hash(secret)
            )
            return row

        row = await self._db.statement(work)
        if row is None:
            raise Invalid("A clientgroup already exists with this name.")
        return _group(row, secret)

    async def get(self, group_id: str) -> ClientGroup:
        key = _id(group_id)

        async def work(conn: Conn) -> asyncpg.Record | None:
            row: asyncpg.Record | None = await conn.fetchrow(Q["get"], key)
            return row

        return _found(await self._db.read(work), group_id)

    async def named(self, name: str) -> ClientGroup | None:
        """The group of this name, if one was made."""

        async def work(conn: Conn) -> asyncpg.Record | None:
            row: asyncpg.Record | None = await conn.fetchrow(Q["named"], name)
            return row

        row = await self._db.read(work)
        return None if row is None else _group(row, "")

    async def page(
        self,
        limit: int,
        offset: int,
        order: str = "last_modified",
        descending: bool = True,
        names: Sequence[str] | None = None,
        ids: Sequence[str] | None = None,
    ) -> Page:
        """Groups in `order` (one of ORDERS), those named in `names` and with an id in `ids`
        when given."""
        if limit < 1:
            raise Invalid(f"limit must be 1 or more, not {limit}")
        if not 0 <= offset <= _MAX_OFFSET:
            raise Invalid(f"offset must be 0 to {_MAX_OFFSET}, not {offset}")
        if order not in ORDERS:
            raise Invalid(f"clientgroups are ordered by {', '.join(ORDERS)}, not {order!r}")
        keys = None if ids is None else [_id(i) for i in ids]
        wanted = None if names is None else list(names)

        async def work(conn: Conn) -> Page:
            rows = await conn.fetch(Q["page"], limit, offset, wanted, keys, order, descending)
            total: int = await conn.fetchval(Q["count"], wanted, keys)
            return Page(groups=[_group(r, "") for r in rows], total=total)

        return await self._db.read(work)

    async def delete(self, group_id: str) -> None:
        """Remove the group: its token admits nobody from now on."""
        key = _id(group_id)

        async def work(conn: Conn) -> object:
            return await conn.fetchval(Q["delete"], key)

        if await self._db.statement(work) is None:
            raise NotFound(_not_found(group_id))
        self._seen.clear()

    async def delete_token(self, group_id: str) -> ClientGroup:
        """Take the group's token away: it admits nobody, and the group admits no new
        client until it has a new token. Deleting it again changes nothing."""
        key = _id(group_id)

        async def work(conn: Conn) -> asyncpg.Record | None:
            row: asyncpg.Record | None = await conn.fetchrow(Q["delete_token"], key)
            return row

        found = _found(await self._db.statement(work), group_id)
        self._seen.clear()
        return found

    async def new_token(self, group_id: str) -> ClientGroup:
        """A new token for a group whose token was deleted, shown in this answer only."""
        key = _id(group_id)
        secret = _new_secret()

        async def work(conn: Conn) -> asyncpg.Record | None:
            row: asyncpg.Record | None = await conn.fetchrow(Q["new_token"], key, _hash(secret))
            if row is None and await conn.fetchrow(Q["get"], key) is not None:
                # AWE's words: one token at a time, so a token in use is never replaced
                # behind its clients' backs by a second call
                raise Invalid(
                    "Clientgroup has existing token.  This must be deleted before a new "
                    "token can be generated."
                )
            return row

        return _found(await self._db.transact(work), group_id, secret)

    async def identify(self, secret: str) -> str | None:
        """The name of the group whose token `secret` is; None for a token unknown,
        deleted or expired."""
        key = _hash(secret)
        now = time.monotonic()
        cached = self._seen.get(key)
        if cached is not None and now < cached[1]:
            return cached[0]

        async def work(conn: Conn) -> str | None:
            name: str | None = await conn.fetchval(Q["identify"], key)
            return name

        name = await self._db.read(work)
        if len(self._seen) >= _CACHE_LIMIT:
            self._seen.clear()
        self._seen[key] = (name, now + FRESH)
        return name

    async def admit(self, profile_group: str, token_group: str | None) -> None:
        """May a client whose profile names `profile_group` register, having sent the token
        of `token_group` (None: no token)? AWE's rules and words: a token admits only into
        its own group; without one a client joins any group not made here."""
        if token_group is not None:
            if token_group != profile_group:
                raise Invalid("Clientgroup name in token does not match that in the client.")
            return
        if await self.named(profile_group) is not None:
            raise Invalid(
                "Clientgroup with the group specified by your client exists, but you cannot "
                "register with it, without clientgroup token."
            )


def check_name(name: str) -> None:
    if len(name) > MAX_NAME:
        raise Invalid(f"Clientgroup name must be at most {MAX_NAME} characters.")
    if not NAME.fullmatch(name):
        raise Invalid(
            f"Clientgroup name ({name}) must contain only alphanumeric characters, "
            "underscore, dash or dot."
        )


def _id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise Invalid(f"clientgroup id must be a UUID, not {text[:64]!r}") from None


def _not_found(group_id: str) -> str:
    return f"clientgroup id not found:{group_id}"


def _found(row: asyncpg.Record | None, group_id: str, secret: str = "") -> ClientGroup:
    if row is None:
        raise NotFound(_not_found(group_id))
    return _group(row, secret)


def _group(row: asyncpg.Record, secret: str) -> ClientGroup:
    return ClientGroup(
        id=str(row["id"]),
        name=row["name"],
        token=secret,
        has_token=row["has_token"],
        created_on=row["created_on"],
        expiration=row["expiration"],
        last_modified=row["last_modified"],
    )


def _new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", errors="surrogatepass")).digest()
