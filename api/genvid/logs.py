"""`/v1/log/...`: the declared log streams a UI offers, the allocations behind each, and
one stream of one allocation read by offset as a Nomad stream frame (docs/genvid.md)."""

import base64
import datetime
from typing import Annotated, Final

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import JSONBody, PathParameter, QueryParameter

from api.access import access
from api.genvid.wire import task_status
from api.params import CoreDep, natural
from core.errors import Invalid, NotFound
from core.logs import STREAMS, Stream

# the declared logs, as one stored document
DOCUMENT: Final = "genvid.logs"
# bytes of one frame at most, as Nomad sends
FRAME: Final = 64 * 1024

Path = Annotated[str, PathParameter()]


class LogEntry(
    msgspec.Struct, kw_only=True, rename={"file_name": "fileName", "log_level": "logLevel"}
):
    """One stream of one task that a UI offers; `group` defaults to the job and `task` to
    the group."""

    id: str
    job: str
    group: str = ""
    task: str = ""
    file_name: Stream = "stdout"
    log_level: bool = False


class LogMeta(msgspec.Struct, kw_only=True, rename="camel"):
    alloc_id: str = msgspec.field(name="allocID")
    status: str
    job_name: str
    task_name: str
    file_name: str
    create_time: str
    log_level: bool


class Frame(msgspec.Struct, kw_only=True, rename="pascal", omit_defaults=True):
    """Nomad's stream frame: `data` (base64) ends at byte `offset` of the stream."""

    file: str
    offset: int
    data: str


def checked(entries: list[LogEntry]) -> list[LogEntry]:
    """The entries as stored, defaults filled in; an unusable list is refused whole."""
    seen: set[str] = set()
    stored: list[LogEntry] = []
    for position, entry in enumerate(entries):
        if not entry.id:
            raise Invalid(f"$[{position}].id: a log needs a non-empty id")
        if entry.id in seen:
            raise Invalid(f"$[{position}].id: {entry.id!r} is declared twice")
        if not entry.job:
            raise Invalid(f"$[{position}].job: a log needs the job it belongs to")
        seen.add(entry.id)
        group = entry.group or entry.job
        stored.append(msgspec.structs.replace(entry, group=group, task=entry.task or group))
    return sorted(stored, key=lambda e: e.id)


def _time(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LogsController(Controller):
    path = "/log"

    @get("/logs", opt=access("read"))
    async def logs(self, core: CoreDep) -> list[LogEntry]:
        return await core.documents.get(DOCUMENT, list[LogEntry]) or []

    @post("/logs", status_code=200, opt=access("submit"))
    async def declare(self, core: CoreDep, data: JSONBody[list[LogEntry]]) -> list[LogEntry]:
        """Replace the whole list."""
        entries = checked(data)
        await core.documents.put(DOCUMENT, entries)
        return entries

    @get("/meta/{name:str}", opt=access("read"))
    async def meta(self, core: CoreDep, name: Path) -> list[LogMeta]:
        """The allocations of a log's job and group, newest first, dead ones included."""
        entries = await core.documents.get(DOCUMENT, list[LogEntry]) or []
        entry = next((e for e in entries if e.id == name), None)
        if entry is None:
            raise NotFound(f"log {name!r} is not declared")
        return [
            LogMeta(
                alloc_id=a.id,
                status=task_status(a),
                job_name=a.service,
                task_name=entry.task,
                file_name=entry.file_name,
                create_time=_time(a.created),
                log_level=entry.log_level,
            )
            for a in await core.services.allocations(entry.job, entry.group)
        ]

    @get("/fs/{alloc:str}/{task:str}/{fs:str}", opt=access("read"), response_model=None)
    async def read(
        self,
        core: CoreDep,
        alloc: Path,
        task: Path,
        fs: Path,
        origin: Annotated[str, QueryParameter(description="start or end")] = "start",
        offset: Annotated[str, QueryParameter(description="bytes from the origin")] = "0",
        plain: Annotated[str, QueryParameter(description="true: the bytes as text")] = "false",
    ) -> Frame | Response[bytes]:
        """Up to 64 KiB of one stream of an allocation, from `offset` after its start or
        before its end."""
        if origin not in ("start", "end"):
            raise Invalid(f"origin {origin!r} must be start or end")
        if natural(offset) is None:
            raise Invalid(f"offset {offset!r} is not a non-negative integer")
        if fs not in STREAMS:
            raise Invalid(f"{fs!r} is not a log stream; use stdout or stderr")
        stream: Stream = "stdout" if fs == "stdout" else "stderr"
        allocation = await core.services.allocation(alloc)
        if task != allocation.group:
            raise NotFound(f"allocation {alloc} has no task {task!r}")
        start = int(offset)
        if origin == "end":
            start = max(await core.logs.size(allocation.job, stream) - start, 0)
        read = await core.logs.read_stream(allocation.job, stream, start, FRAME)
        if plain.lower() in ("true", "1"):
            return Response(read.data, media_type="text/plain; charset=utf-8")
        return Frame(
            file=f"alloc/logs/{task}.{stream}.0",
            offset=read.start + len(read.data),
            data=base64.b64encode(read.data).decode(),
        )
