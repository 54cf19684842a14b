"""The Litestar application factory."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide

from api.access import authorizing, identity_of
from api.awe import AweError, awe_routers
from api.coalition import coalition_routers, legacy_hot_routes, legacy_worker_router
from api.dashboard import dashboard_routers
from api.errors import EXCEPTION_HANDLERS, document_errors
from api.genvid import genvid_routers
from api.hot import HotRoutes
from api.metrics import counting, scrape
from api.native import native_hot_routes, native_router
from api.openapi import openapi_config
from api.scale import ScaleError, scale_routers
from core import migrate
from core.changes import ChangeFeed
from core.config import Config
from core.db import Database
from core.dispatch import PLANNING
from core.plugins import Plugins
from core.scheduler import Scheduler
from core.service import Core
from core.services import definitions

VERSION = "0.1.0"
log = logging.getLogger("corral")


def create_app(config: Config, database_url: str, plugins: Plugins | None = None) -> Litestar:
    """An app serving every face over the database at `database_url`. As it starts it
    applies pending migrations and starts the dispatch and the periodic passes.

    Plugins are loaded here unless given, so a bad plugin setting fails before anything
    listens (`core.config.ConfigError`).
    """
    loaded = plugins if plugins is not None else Plugins(config.plugins)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        db = await Database.connect(database_url)
        planning: Database | None = None
        scheduler: Scheduler | None = None
        changes = ChangeFeed(database_url)
        try:
            for name in await db.read(migrate.apply):
                log.info("applied migration %s", name)
            planning = await Database.connect(
                database_url, min_size=1, max_size=1, settings=PLANNING
            )
            core = Core(db, config, loaded, planning)
            await core.vault.check()
            app.state.core = core
            await core.services.sync(definitions(config.genvid))
            scheduler = Scheduler(
                database_url,
                config,
                core.planner,
                core.picks,
                core.runs,
                core.services,
                workflows=core.workflows,
                dashboard=core.dashboard,
            )
            await scheduler.start()
            app.state.changes = changes
            yield
        finally:
            await changes.stop()
            if scheduler is not None:
                await scheduler.stop()
            if planning is not None:
                await planning.close()
            await db.close()

    routers: list[Router] = [
        *coalition_routers(config.coalition),
        native_router(),
        Router("/", route_handlers=[scrape]),
        *dashboard_routers(),
    ]
    if loaded.enabled("coalition_workers"):
        routers.append(legacy_worker_router())
    document_errors(routers)
    # reads the settings files: a bad one stops the start-up here
    genvid = genvid_routers(config)
    document_errors(genvid)
    routers += genvid
    awe = awe_routers()
    document_errors(awe, AweError)
    routers += awe
    scale = scale_routers()
    document_errors(scale, ScaleError)
    routers += scale
    return Litestar(
        route_handlers=routers,
        dependencies={
            "core": Provide(_core, sync_to_thread=False),
            "identity": Provide(identity_of, sync_to_thread=False),
        },
        # outermost first: requests refused by the authorization are counted too
        middleware=[counting, authorizing],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=config.limits.max_body_bytes,
        openapi_config=openapi_config("Corral", VERSION),
        debug=False,
    )


def create_server(config: Config, database_url: str, plugins: Plugins | None = None) -> HotRoutes:
    """What `corral serve` serves: the app of `create_app`, with the worker protocols'
    hot routes answered in front of it (api/hot.py)."""
    loaded = plugins if plugins is not None else Plugins(config.plugins)
    app = create_app(config, database_url, loaded)
    routes = native_hot_routes()
    if loaded.enabled("coalition_workers"):
        routes += legacy_hot_routes()
    return HotRoutes(app, routes, config.limits.max_body_bytes)


def _core(state: State) -> Core:
    core: Core = state.core
    return core
