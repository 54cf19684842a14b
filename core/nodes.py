"""The AWE node store: Shock's nodes, kept in PostgreSQL (docs/awe.md, "The node store").

A node is made empty (for a job's output, or by a client), then gets its file in one
upload, or becomes a parts node of N parts whose file is parts 1..N concatenated once all
are in. Bytes go in and out in chunks of `CHUNK` bytes: an upload is written as it
arrives, within one transaction (a refused or broken upload stores nothing and leaves the
previous file in place), and a download is read through a cursor in one snapshot, so
neither ever holds a whole file in memory.
"""

import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Final

import asyncpg
import msgspec

from core.config import Config
from core.db import Conn, Database
from core.errors import CorralError, Invalid, NotFound
from core.sql import Queries

Q = Queries("nodes.sql")

# the size of a stored chunk: big enough that a row's overhead is nothing, small enough
# that an upload buffers one chunk at a time
CHUNK: Final = 1024 * 1024
# the chunks a download reads ahead from its cursor
_PREFETCH: Final = 4
# a part count far above any totalwork (a workunit per part), so a typo is refused
MAX_PARTS: Final = 100_000


class TooLarge(CorralError):
    """An upload past `[awe] max_node_bytes`; nothing of it was stored."""

    status = 413


class NodeFile(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    size: int
    md5: str
    created: datetime


class Part(msgspec.Struct, frozen=True, kw_only=True):
    part: int
    size: int
    md5: str


class Node(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    job_id: int | None
    type: str
    # the parts a parts node waits for, and those in so far (in order); None for basic
    parts_count: int | None
    parts: list[Part]
    # None until uploaded, or until every part is in
    file: NodeFile | None
    # the node's attributes as the client gave them (any JSON), None when unset
    attributes: object
    created_on: datetime
    last_modified: datetime


class _Unset:
    """No change to the attributes (they may be set to JSON null)."""


UNSET: Final = _Unset()
Attributes = object | _Unset


class Nodes:
    def __init__(self, db: Database, config: Config) -> None:
        self._db = db
        self.max_bytes = config.awe.max_node_bytes

    async def create(
        self, job_id: int | None = None, *, parts: int | None = None, file_name: str = ""
    ) -> Node:
        """A new empty node (a parts node of `parts` parts when given), owned by `job_id`
        when given, so that deleting the job deletes it."""
        if parts is not None:
            _check_count(parts)
        node_id = uuid.uuid4()

        async def work(conn: Conn) -> Node:
            row = await conn.fetchrow(Q["create"], node_id, job_id, parts, file_name)
            return _node(row, [])

        return await self._db.transact(work)

    async def get(self, node_id: str) -> Node:
        key = _key(node_id)

        async def work(conn: Conn) -> Node:
            row = await conn.fetchrow(Q["get"], key)
            if row is None:
                raise NotFound("Node not found")
            return _node(row, await conn.fetch(Q["parts"], key))

        return await self._db.read(work)

    async def of_job(self, job_id: int) -> list[str]:
        """The ids of the job's nodes, oldest first."""

        async def work(conn: Conn) -> list[str]:
            return [str(r["id"]) for r in await conn.fetch(Q["of_job"], job_id)]

        return await self._db.read(work)

    async def delete(self, node_id: str) -> None:
        key = _key(node_id)

        async def work(conn: Conn) -> None:
            if await conn.execute(Q["delete"], key) == "DELETE 0":
                raise NotFound("Node not found")

        await self._db.transact(work)

    async def set_attributes(self, node_id: str, attributes: object) -> Node:
        key = _key(node_id)
        text = msgspec.json.encode(attributes).decode()

        async def work(conn: Conn) -> Node:
            row = await conn.fetchrow(Q["set_attributes"], key, text)
            if row is None:
                raise NotFound("Node not found")
            return _node(row, await conn.fetch(Q["parts"], key))

        return await self._db.transact(work)

    async def set_parts(self, node_id: str, count: int, file_name: str = "") -> Node:
        """Make the node a parts node of `count` parts. Saying the same count again
        changes nothing (a retried request); a node with a file, or with another count,
        is refused."""
        _check_count(count)
        key = _key(node_id)

        async def work(conn: Conn) -> Node:
            row: asyncpg.Record | None = await _locked(conn, key)
            assert row is not None
            if row["type"] == "parts" and row["parts_count"] == count:
                return _node(row, await conn.fetch(Q["parts"], key))
            if row["type"] == "parts":
                raise Invalid(f"node is already a parts node of {row['parts_count']} parts")
            if row["file_created"] is not None:
                raise Invalid("node already has a file")
            row = await conn.fetchrow(Q["set_parts"], key, count, file_name)
            return _node(row, [])

        return await self._db.transact(work)

    async def put_file(
        self,
        node_id: str,
        name: str,
        chunks: AsyncIterator[bytes],
        attributes: Attributes = UNSET,
    ) -> Node:
        """The node's file, read from `chunks` to their end, replacing any earlier one
        (and the attributes, when given, in the same transaction)."""
        key = _key(node_id)

        async def work(conn: Conn) -> Node:
            row = await conn.fetchrow(Q["get"], key)
            if row is None:
                raise NotFound("Node not found")
            if row["type"] == "parts":
                raise Invalid("node is a parts node: upload its parts (fields 1..N)")
            size, md5 = await self._write(conn, key, 0, chunks, self.max_bytes)
            set_attrs, text = _attributes(attributes)
            row = await conn.fetchrow(Q["set_file"], key, name, size, md5, set_attrs, text)
            return _node(row, [])

        return await self._db.transact(work)

    async def put_part(
        self,
        node_id: str,
        part: int,
        chunks: AsyncIterator[bytes],
        attributes: Attributes = UNSET,
    ) -> Node:
        """Part `part` (1..count) of a parts node, read from `chunks`, replacing an earlier
        upload of it. The upload that brings in the last missing part makes the file:
        parts 1..count in order, its md5 read back over the stored chunks."""
        key = _key(node_id)

        async def work(conn: Conn) -> Node:
            row = await conn.fetchrow(Q["get"], key)
            if row is None:
                raise NotFound("Node not found")
            if row["type"] != "parts":
                raise Invalid("node is not a parts node: send parts=N first")
            count: int = row["parts_count"]
            if not 1 <= part <= count:
                raise Invalid(f"part {part} is outside 1..{count}")
            # parts of one node stream in side by side; the limit counts those already in
            others = sum(p["size"] for p in await conn.fetch(Q["parts"], key) if p["part"] != part)
            size, md5 = await self._write(conn, key, part, chunks, self.max_bytes - others)
            await conn.execute(Q["put_part"], key, part, size, md5)
            # the node's row lock, taken after the bytes are in, orders the last uploads:
            # whichever commits second sees every part (READ COMMITTED: each statement
            # after the lock reads what committed before it)
            locked = await _locked(conn, key)
            parts = await conn.fetch(Q["parts"], key)
            set_attrs, text = _attributes(attributes)
            if len(parts) == count:
                whole, digest = sum(p["size"] for p in parts), await _md5_of(conn, key)
                row = await conn.fetchrow(
                    Q["set_file"], key, locked["file_name"], whole, digest, set_attrs, text
                )
            else:
                row = await conn.fetchrow(Q["touch"], key, set_attrs, text)
            return _node(row, parts)

        return await self._db.transact(work)

    async def stream(self, node_id: str) -> AsyncIterator[bytes]:
        """The bytes of the node's file, in order, from one snapshot (a file replaced
        meanwhile is read as it was when the download began). Raises before the first
        chunk when the node is unknown or has no file yet."""
        key = _key(node_id)
        async with (
            self._db.pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            row = await conn.fetchrow(Q["get"], key)
            if row is None:
                raise NotFound("Node not found")
            if row["file_created"] is None:
                raise Invalid("Node has no file")
            async for chunk in conn.cursor(Q["chunks"], key, prefetch=_PREFETCH):
                yield chunk["data"]

    async def _write(
        self, conn: Conn, key: uuid.UUID, part: int, chunks: AsyncIterator[bytes], limit: int
    ) -> tuple[int, str]:
        """Store `chunks` as part `part` in CHUNK-sized rows; their size and md5. Past
        `limit` bytes, TooLarge (the transaction, rolled back, keeps nothing)."""
        await conn.execute(Q["part_lock"], key, part)
        await conn.execute(Q["clear_part"], key, part)
        digest = hashlib.md5(usedforsecurity=False)
        buffer = bytearray()
        size = seq = 0
        async for data in chunks:
            size += len(data)
            if size > limit:
                raise TooLarge(f"the node would exceed {self.max_bytes} bytes")
            digest.update(data)
            buffer += data
            while len(buffer) >= CHUNK:
                await conn.execute(Q["put_chunk"], key, part, seq, bytes(buffer[:CHUNK]))
                del buffer[:CHUNK]
                seq += 1
        if buffer:
            await conn.execute(Q["put_chunk"], key, part, seq, bytes(buffer))
        return size, digest.hexdigest()


async def _md5_of(conn: Conn, key: uuid.UUID) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    async for chunk in conn.cursor(Q["chunks"], key, prefetch=_PREFETCH):
        digest.update(chunk["data"])
    return digest.hexdigest()


async def _locked(conn: Conn, key: uuid.UUID) -> asyncpg.Record:
    row = await conn.fetchrow(Q["lock"], key)
    if row is None:
        raise NotFound("Node not found")
    return row


def _key(node_id: str) -> uuid.UUID:
    """A node id as the database keeps it; anything that is not a UUID names no node."""
    try:
        return uuid.UUID(node_id)
    except ValueError:
        raise NotFound("Node not found") from None


def _check_count(count: int) -> None:
    if not 1 <= count <= MAX_PARTS:
        raise Invalid(f"parts must be between 1 and {MAX_PARTS}")


def _attributes(attributes: Attributes) -> tuple[bool, str | None]:
    if isinstance(attributes, _Unset):
        return False, None
    return True, msgspec.json.encode(attributes).decode()


def _node(row: asyncpg.Record | None, parts: list[asyncpg.Record]) -> Node:
    if row is None:
        # the node went between two statements of one transaction: deleted with its job
        raise NotFound("Node not found")
    file = None
    if row["file_created"] is not None:
        file = NodeFile(
            name=row["file_name"], size=row["size"], md5=row["md5"], created=row["file_created"]
        )
    attributes = row["attributes"]
    return Node(
        id=str(row["id"]),
        job_id=row["job_id"],
        type=row["type"],
        parts_count=row["parts_count"],
        parts=[Part(part=p["part"], size=p["size"], md5=p["md5"]) for p in parts],
        file=file,
        attributes=None if attributes is None else msgspec.json.decode(attributes),
        created_on=row["created_on"],
        last_modified=row["last_modified"],
    )
