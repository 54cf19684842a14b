"""`/api/events`: the runs of jobs on workers, newest first."""

from typing import Annotated

from litestar import Controller, get
from litestar.params import FromQuery, QueryParameter

from api.params import CoreDep
from core.models import Event


class EventsController(Controller):
    path = "/"

    @get("/events", summary="Runs, newest first, filtered by job, worker and age")
    async def events(
        self,
        core: CoreDep,
        job: Annotated[int | None, QueryParameter(ge=0, le=2**63 - 1)] = None,
        worker: FromQuery[str | None] = None,
        howlong: Annotated[
            # the web page's "All" is 100000000000
            float | None, QueryParameter(ge=0, le=1e15, description="only the last N seconds")
        ] = None,
        limit: Annotated[int | None, QueryParameter(ge=1, le=2**31 - 1)] = None,
    ) -> list[Event]:
        return await core.events.list(job=job, worker=worker, howlong=howlong, limit=limit)
