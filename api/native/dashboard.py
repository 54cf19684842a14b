"""What Corral's own page reads (api/dashboard) beyond the job and worker listings, and the
change feed that tells it when to read again (`GET /api/v2/changes`, Server-Sent Events)."""

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Final

import msgspec
from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.params import QueryParameter
from litestar.response import Stream

from api.access import IdentityDep, access
from api.coalition.params import JobIdPath
from api.params import CoreDep
from core.changes import INTERVAL, TABLES, ChangeFeed
from core.dashboard import Ancestor, Glance, LogWindow, Run
from core.tokens import CallerRole

# an idle stream sends a comment this often, so that a proxy does not cut it and a peer
# gone without a word is noticed
KEEPALIVE: Final = 15.0
# what EventSource waits before it connects again after losing the stream (a server
# restart): milliseconds, sent first on every stream
RETRY_MS: Final = 1000
# the most of a log one read answers
LOG_WINDOW_MAX: Final = 1 << 20


class Me(msgspec.Struct, kw_only=True):
    """Who the page acts as, so it offers only what the caller may do."""

    name: str
    role: CallerRole
    # no token was ever created: everyone is an admin (loopback only)
    open: bool
    # no token came with the request (public reads): reads only
    anonymous: bool
    # a user token may change other users' jobs too
    users_change_any: bool


class Changed(msgspec.Struct):
    """One message of the change feed: the tables to read again."""

    tables: list[str]


class DashboardReads(Controller):
    path = "/"

    @get("/me", summary="Who the caller is: name, role, and whether the server runs open")
    async def me(
        self, core: CoreDep, identity: IdentityDep, request: Request[object, object, State]
    ) -> Me:
        return Me(
            name=identity.name,
            role=identity.role,
            open=not await core.tokens.required(),
            anonymous=getattr(request.state, "identity", None) is None,
            users_change_any=core.config.auth.users_change_any,
        )

    @get(
        "/farm",
        summary="The farm at a glance: jobs and workers by state, slots, runs ended per minute",
    )
    async def farm(self, core: CoreDep) -> Glance:
        return await core.dashboard.glance()

    @get("/jobs/{job_id:int}/path", summary="The ancestors of a job, root first")
    async def job_path(self, core: CoreDep, job_id: JobIdPath) -> list[Ancestor]:
        return await core.dashboard.path(job_id)

    @get("/jobs/{job_id:int}/runs", summary="The runs of a job, newest first (200 at most)")
    async def runs(self, core: CoreDep, job_id: JobIdPath) -> list[Run]:
        return await core.dashboard.runs(job_id)

    @get(
        "/jobs/{job_id:int}/dependants",
        summary="The ids of the jobs that depend on a job (1000 at most)",
    )
    async def dependants(self, core: CoreDep, job_id: JobIdPath) -> list[int]:
        return await core.dashboard.dependants(job_id)

    @get(
        "/jobs/{job_id:int}/log",
        summary="A window of a job's log, as text",
        description=(
            "At most `limit` bytes: from byte `start` on when it is given (a reader following "
            "a running job asks from the last answer's `end`), else ending at byte `end` "
            "(left out: the end of the log), so a reader tails a log and pages back through "
            "it (ask again with `end` set to the answer's `start`) without ever reading a "
            "large log whole."
        ),
    )
    async def log(
        self,
        core: CoreDep,
        job_id: JobIdPath,
        start: Annotated[
            int | None, QueryParameter(ge=0, le=2**62, description="the byte to start at")
        ] = None,
        end: Annotated[
            int | None, QueryParameter(ge=0, le=2**62, description="the byte to end before")
        ] = None,
        limit: Annotated[
            int, QueryParameter(ge=1, le=LOG_WINDOW_MAX, description="bytes at most")
        ] = 64 * 1024,
    ) -> LogWindow:
        return await core.dashboard.log(job_id, start, end, limit)

    # Not in the OpenAPI schema: a stream that never ends is no operation a schema client
    # (or the fuzzer) can call and read the answer of; tests/test_change_feed.py tests it.
    @get("/changes", include_in_schema=False, opt=access("read"))
    async def changes(self, request: Request[object, object, State]) -> Stream:
        """Server-Sent Events: `data: {"tables": [...]}` each time jobs or workers changed,
        at most one message per `INTERVAL` seconds; the first one, sent at once, names
        every table (read everything: the page may have missed changes while away)."""
        feed: ChangeFeed = request.app.state.changes
        return Stream(
            _stream(feed),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )


async def _stream(feed: ChangeFeed) -> AsyncIterator[bytes]:
    encode = msgspec.json.Encoder().encode
    async with feed.subscribe() as subscriber:
        yield f"retry: {RETRY_MS}\n\n".encode()
        subscriber.add(set(TABLES))
        while True:
            try:
                tables = await asyncio.wait_for(subscriber.next(), KEEPALIVE)
            except TimeoutError:
                yield b": keepalive\n\n"
                continue
            yield b"data: " + encode(Changed(tables)) + b"\n\n"
            # what changes meanwhile waits for the next message: a burst of changes is a
            # few messages, not one per change
            await asyncio.sleep(INTERVAL)
