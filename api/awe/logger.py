"""`/logger`: AWE's event codes, and the debug level (docs/awe.md)."""

import re
from typing import Annotated, Final

from litestar import Controller, Request, Response, get, put
from litestar.datastructures import State
from litestar.params import Parameter

from api.access import access
from api.awe.envelope import Envelope, ok
from api.params import CoreDep
from core.errors import Invalid

Query = Annotated[str | None, Parameter(required=False)]
UNSUPPORTED = "requested logger operation not supported"

# AWE's event table, verbatim from lib/logger/event/event.go (0.9.68), `W!` and the
# doubled space in `SR` included
EVENTS: Final = {
    "general": {
        "CR": "client registered (for the first time)",
        "CA": "client automatically re-registered",
        "CU": "client unregistered",
        "WC": "workunit checkout",
        "WF": "workunit fails running",
        "W!": "workunit failed running (not recoverable)",
    },
    "server": {
        "SS": "awe-server start",
        "SR": "awe-server start with recover option  (-recover)",
        "DL": "debug level changed",
        "QR": "awe-server queue resumed if suspended",
        "QS": "awe-server queue suspended, not handing out work",
        "JQ": "job submitted",
        "JI": "job imported",
        "TQ": "task parsed and enqueue",
        "WD": "workunit received successful feedback from client",
        "WR": "workunit requeue after receive failed feedback from client",
        "WP": "workunit suspend after failing for conf.Max_Failure times",
        "TD": "task done (all the workunits in the task have finished)",
        "TS": "task skipped (skip option > 0)",
        "JD": "job done (all the tasks in the job have finished)",
        "JP": "job suspended",
        "JL": "job deleted",
        "JE": "job expired",
        "JR": "job removed form mongodb (deleted fully)",
        "JF": "job failed permanently",
    },
    "client": {
        "WS": "workunit command start running",
        "WE": "workunit command finish running",
        "WR": "send back failed workunit to server",
        "WI": "workunit discarded after receiving discard signal from server",
        "PS": "workunit command start running",
        "PE": "workunit command finish running",
        "PI": "start fetching predata file from url",
        "PR": "predata file is available",
        "FI": "start fetching input file from shock",
        "FR": "finish fetching input file from shock",
        "FO": "start pushing output file to shock",
        "FD": "finish pushing output file to shock",
        "AI": "start fetching input attributes from shock",
        "AR": "finish fetching input attributes from shock",
    },
    "proxy": {
        "WQ": "workunit queued at proxy",
    },
}
# Go's encoding/json writes a map's keys sorted
SORTED_EVENTS: Final = {
    section: dict(sorted(EVENTS[section].items())) for section in sorted(EVENTS)
}
_LEVEL = re.compile(r"[+-]?[0-9]{1,4}")


class LoggerController(Controller):
    path = "/logger"

    @get("/", opt=access("read"))
    async def read(
        self,
        core: CoreDep,
        request: Request[object, object, State],
        debug: Query = None,
    ) -> Response[Envelope]:
        """`event`: the event codes AWE's logs use; `debug`: the debug level."""
        query = request.query_params
        if "event" in query:
            return ok(SORTED_EVENTS)
        if debug is not None:
            return ok({"debuglevel": (await core.workflows.server()).debug_level})
        raise Invalid(UNSUPPORTED)

    @put("/", status_code=200, opt=access("admin"))
    async def change(
        self, core: CoreDep, request: Request[object, object, State], debug: Query = None
    ) -> Response[Envelope]:
        """`debug=N`: the debug level, 0 to 3."""
        if debug is None:
            raise Invalid(UNSUPPORTED)
        level = int(debug) if _LEVEL.fullmatch(debug) else None
        if level is None or not 0 <= level <= 3:
            raise Invalid(f"invalid debug level: {debug} (an integer from 0 to 3)")
        await core.workflows.set_debug_level(level)
        return ok({"debuglevel": level})
