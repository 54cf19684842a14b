"""The Coalition face: the REST API of the Coalition render-farm manager, served by the
core as it is (Coalition's job model is the core's native shape)."""

from litestar import Router
from litestar.static_files import create_static_files_router

from api.access import access
from api.coalition.affinities import AffinitiesController
from api.coalition.body import CoalitionRequest
from api.coalition.events import EventsController
from api.coalition.jobs import JobsController
from api.coalition.legacy_workers import legacy_hot_routes, legacy_worker_router
from api.coalition.workers import WorkersController
from api.coalition.xmlrpc import add_job
from core.config import CoalitionConfig

__all__ = ["coalition_routers", "legacy_hot_routes", "legacy_worker_router"]


def coalition_routers(config: CoalitionConfig) -> list[Router]:
    """`/api/...`, the same under `/api/webfrontend/...` (the web page's prefix), the
    legacy `/xmlrpc/addjob`, and Coalition's own web page at `/coalition/` when the config
    names its folder."""
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
        *_frontend(config),
    ]


def _frontend(config: CoalitionConfig) -> list[Router]:
    if config.web_frontend is None:
        return []
    # the page's API calls are absolute (`/api/...`): same origin, no prefix to rewrite
    return [
        create_static_files_router(
            path="/coalition",
            directories=[config.web_frontend],
            html_mode=True,
            name="coalition-web",
            opt=access("read"),
        )
    ]
