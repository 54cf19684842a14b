"""The Coalition face: the REST API of the Coalition render-farm manager, served by the
core as it is (Coalition's job model is the core's native shape)."""

from litestar import Router

from api.coalition.affinities import AffinitiesController
from api.coalition.body import CoalitionRequest
from api.coalition.events import EventsController
from api.coalition.jobs import JobsController
from api.coalition.legacy_workers import legacy_worker_router
from api.coalition.workers import WorkersController
from api.coalition.xmlrpc import add_job

__all__ = ["coalition_routers", "legacy_worker_router"]


def coalition_routers() -> list[Router]:
    """`/api/...`, the same under `/api/webfrontend/...` (the web page's prefix), and the
    legacy `/xmlrpc/addjob`."""
    controllers = [JobsController, WorkersController, EventsController, AffinitiesController]
    return [
        Router(
            path="/api",
            route_handlers=controllers,
            request_class=CoalitionRequest,
            tags=["coalition"],
        ),
        Router(
            path="/api/webfrontend",
            route_handlers=controllers,
            request_class=CoalitionRequest,
            tags=["coalition"],
            include_in_schema=False,
        ),
        Router(path="/xmlrpc", route_handlers=[add_job], tags=["coalition"]),
    ]
