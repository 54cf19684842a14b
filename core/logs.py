"""Job logs by stream: what a run wrote to stdout and to stderr, each readable on its own
from any byte, and both merged in the order they arrived (the log the Coalition face
shows). Reads are ranged in PostgreSQL: only the chunks overlapping the range are read,
and they are cut to it there.
"""

from collections.abc import Iterable, Sequence
from typing import Final, Literal, get_args

import msgspec

from core.db import Conn, Database
from core.errors import Invalid, NotFound
from core.sql import Queries

Q = Queries("logs.sql")

Stream = Literal["stdout", "stderr"]
STREAMS: Final[tuple[Stream, ...]] = get_args(Stream)
# bigint offsets: a start or limit past this is as good as "to the end"
_MAX_OFFSET: Final = 2**62


class LogChunk(msgspec.Struct, frozen=True):
    """Output of one stream, as it arrived."""

    stream: Stream
    data: bytes


class StreamRead(msgspec.Struct, frozen=True):
    """Part of a log: `data` begins at byte `start` (the start asked for, cut to the
    size), and `size` is the whole stream's (or merged log's) size when it was read."""

    start: int
    data: bytes
    size: int


def joined(chunks: Iterable[LogChunk]) -> list[LogChunk]:
    """The chunks in the same order, empty ones left out and neighbours of one stream
    joined: fewer rows, and the same bytes at the same offsets."""
    out: list[LogChunk] = []
    for chunk in chunks:
        if not chunk.data:
            continue
        if out and out[-1].stream == chunk.stream:
            out[-1] = LogChunk(chunk.stream, out[-1].data + chunk.data)
        else:
            out.append(chunk)
    return out


async def append(
    conn: Conn, job: int, chunks: Sequence[LogChunk], run: int, progress: float | None
) -> bool:
    """Append `chunks` to the job's log, in their order, and record the heartbeat of its
    `run` that brought them (with its `progress`, when the log told it), in one
    statement; whether there was anything to append (nothing is recorded otherwise)."""
    status: str = await conn.execute(
        Q["append_chunks"],
        job,
        [c.stream for c in chunks],
        [c.data for c in chunks],
        run,
        progress,
    )
    return status != "INSERT 0 0"


class Logs:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def read_stream(self, job: int, stream: Stream, start: int, limit: int) -> StreamRead:
        """At most `limit` bytes of `stream` of `job` from byte `start`, and the stream's
        size. A start past the end reads nothing from the end."""
        _check_stream(stream)
        _check_range(start, limit)

        async def work(conn: Conn) -> StreamRead:
            row = await conn.fetchrow(
                Q["read_stream"], job, stream, min(start, _MAX_OFFSET), min(limit, _MAX_OFFSET)
            )
            if row is None:
                raise NotFound(f"no such job: {job}")
            return StreamRead(row["start"], bytes(row["data"]), row["size"])

        return await self._db.read(work)

    async def read_merged(self, job: int, start: int, limit: int) -> StreamRead:
        """As `read_stream`, of the merged log: both streams in the order they arrived."""
        _check_range(start, limit)

        async def work(conn: Conn) -> StreamRead:
            row = await conn.fetchrow(
                Q["read_merged"], job, min(start, _MAX_OFFSET), min(limit, _MAX_OFFSET)
            )
            if row is None:
                raise NotFound(f"no such job: {job}")
            return StreamRead(row["start"], bytes(row["data"]), row["size"])

        return await self._db.read(work)

    async def size(self, job: int, stream: Stream) -> int:
        """How many bytes `job` has written to `stream`."""
        _check_stream(stream)

        async def work(conn: Conn) -> int:
            row = await conn.fetchrow(Q["stream_size"], job, stream)
            if row is None:
                raise NotFound(f"no such job: {job}")
            size: int = row["size"]
            return size

        return await self._db.read(work)


def _check_stream(stream: str) -> None:
    # callers outside the type checker's sight (a query argument) may pass anything
    if stream not in STREAMS:
        raise Invalid(f"a log stream is one of {', '.join(STREAMS)}, not {stream!r}")


def _check_range(start: int, limit: int) -> None:
    if start < 0 or limit < 0:
        raise Invalid(f"a log range needs a start and a limit of 0 or more, not {start}, {limit}")
