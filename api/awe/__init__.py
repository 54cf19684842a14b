"""The AWE face: AWE's REST API under `/awe` (docs/awe.md), for AWE's own Go worker and
AWE's clients."""

from typing import Annotated

from litestar import Request, Response, Router, get, route
from litestar.datastructures import State
from litestar.params import PathParameter

from api.access import access
from api.awe.cgroups import ClientGroupsController
from api.awe.clients import ClientsController
from api.awe.envelope import HEADERS, AweError, Envelope, error_body
from api.awe.jobs import JobsController
from api.awe.logger import LoggerController
from api.awe.nodes import NodesController
from api.awe.queue import QueueController
from api.awe.wire import describe
from api.awe.work import WorkController
from api.errors import shape_errors
from api.params import CoreDep

__all__ = ["AweError", "awe_routers"]

PREFIX = "/awe"


def awe_routers() -> list[Router]:
    shape_errors((PREFIX,), error_body)
    return [
        Router(
            path=PREFIX,
            route_handlers=[
                JobsController,
                WorkController,
                ClientsController,
                ClientGroupsController,
                NodesController,
                QueueController,
                LoggerController,
                root,
                preflight,
            ],
            before_request=_options,
            after_request=_cors,
            tags=["awe"],
        )
    ]


@get("/", opt=access("read"))
async def root(core: CoreDep, request: Request[object, object, State]) -> dict[str, object]:
    """What the server is, as AWE answers it (not enveloped)."""
    server = await core.workflows.server()
    return describe(str(request.base_url).rstrip("/") + PREFIX + "/", server)


@route("/{path:path}", http_method=["OPTIONS"], opt=access("read"), include_in_schema=False)
async def preflight(path: Annotated[str, PathParameter()]) -> Envelope:
    return Envelope(status=200, data=None, error=None)


async def _options(request: Request[object, object, State]) -> Response[Envelope] | None:
    """Every route answers OPTIONS as AWE does: 200 and an empty envelope."""
    if request.method != "OPTIONS":
        return None
    return Response(Envelope(status=200, data=None, error=None), status_code=200)


async def _cors(response: Response[object]) -> Response[object]:
    response.headers.update(HEADERS)
    return response
