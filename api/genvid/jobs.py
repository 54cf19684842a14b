"""`/v1/jobs`: the service jobs, their counts and summaries, with Nomad's blocking
queries on the jobs index (docs/genvid.md)."""

import random
import re
from typing import Annotated, Final

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import JSONBody, PathParameter, QueryParameter

from api.access import access
from api.genvid.wire import CountChange, JobOut, job_out
from api.params import CoreDep, natural
from core.errors import Invalid

JobName = Annotated[str, PathParameter(description="the job's name, from its definition")]

# Nomad's blocking queries: 5 minutes unless asked, 10 at most
DEFAULT_WAIT: Final = 300.0
MAX_WAIT: Final = 600.0
_UNITS: Final = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_BARE = re.compile(r"\d+(?:\.\d*)?")


def duration(text: str) -> float:
    """Seconds in Go's duration syntax (`500ms`, `1m30s`); a bare number is seconds."""
    if _BARE.fullmatch(text):
        return float(text)
    parts = list(_PART.finditer(text))
    if not parts or "".join(p.group(0) for p in parts) != text:
        raise Invalid(f"wait {text!r} is not a duration such as 500ms, 5s or 1m30s")
    return sum(float(p.group(1)) * _UNITS[p.group(2)] for p in parts)


def asked_index(header: str | None, query: str | None) -> int:
    """The jobs index the client last saw (0: none)."""
    for name, value in (("waitIndex", header), ("index", query)):
        if value is None:
            continue
        index = natural(value.strip())
        if index is None:
            raise Invalid(f"{name} {value!r} is not a non-negative integer")
        return index
    return 0


def _answer(jobs: list[JobOut], index: int) -> Response[list[JobOut]]:
    return Response(jobs, headers={"waitIndex": str(index), "X-Nomad-Index": str(index)})


class JobsController(Controller):
    path = "/"

    @get("/jobs", opt=access("read"))
    async def jobs(
        self,
        core: CoreDep,
        request: Request[object, object, State],
        index: Annotated[str | None, QueryParameter(description="the index last seen")] = None,
        wait: Annotated[str | None, QueryParameter(description="a Go duration: 5s")] = None,
    ) -> Response[list[JobOut]]:
        """Every job, sorted by name. With `waitIndex` (header) or `index` at or above the
        current jobs index, the answer waits until the index moves or `wait` runs out."""
        asked = asked_index(request.headers.get("waitindex"), index)
        hold = min(duration(wait), MAX_WAIT) if wait is not None else DEFAULT_WAIT
        listing = await core.services.listing()
        if asked and asked >= listing.index:
            # Nomad's jitter, so that many clients do not all come back at once
            await core.services.wait(listing.index, hold + random.uniform(0, hold / 16))
            listing = await core.services.listing()
        return _answer([job_out(s) for s in listing.services], listing.index)

    @get("/job/{name:str}/summary", opt=access("read"))
    async def summary(self, core: CoreDep, name: JobName) -> JobOut:
        return job_out(await core.services.status(name))

    @post("/jobs/start/{name:str}", status_code=200, opt=access("submit"))
    async def start(
        self, core: CoreDep, name: JobName, force: Annotated[str | None, QueryParameter()] = None
    ) -> JobOut:
        """Start a dead job (every count at countInit); a live one is left as it is."""
        return job_out(await core.services.start(name))

    @post("/jobs/stop/{name:str}", status_code=200, opt=access("submit"))
    async def stop(self, core: CoreDep, name: JobName) -> JobOut:
        return job_out(await core.services.stop(name))

    @post("/jobs/updatecounts", status_code=200, opt=access("submit"))
    async def update_counts(self, core: CoreDep, data: JSONBody[CountChange]) -> JobOut:
        """Add `count` to a group's count (0 sets it to 0)."""
        return job_out(await core.services.scale(data.job, data.group, delta=data.count))

    @post("/jobs/settaskgroupcount", status_code=200, opt=access("submit"))
    async def set_count(self, core: CoreDep, data: JSONBody[CountChange]) -> JobOut:
        return job_out(await core.services.scale(data.job, data.group, count=data.count))

    @post("/jobs/startall", status_code=200, opt=access("submit"))
    async def start_all(self, core: CoreDep) -> list[JobOut]:
        """Start the jobs defined with `autostart`; the list."""
        for name in await core.services.autostart():
            await core.services.start(name)
        return [job_out(s) for s in (await core.services.listing()).services]

    @post("/jobs/stopall", status_code=200, opt=access("submit"))
    async def stop_all(self, core: CoreDep) -> list[JobOut]:
        for name in await core.services.names():
            await core.services.stop(name)
        return [job_out(s) for s in (await core.services.listing()).services]
