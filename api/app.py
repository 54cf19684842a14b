"""The Litestar application factory."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from api.coalition import coalition_routers
from api.errors import EXCEPTION_HANDLERS
from core import migrate
from core.config import Config
from core.db import Database
from core.service import Core

VERSION = "0.1.0"
log = logging.getLogger("corral")


def create_app(config: Config, database_url: str) -> Litestar:
    """An app serving every face over the database at `database_url`; it applies pending
    migrations as it starts."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        db = await Database.connect(database_url)
        try:
            for name in await db.read(migrate.apply):
                log.info("applied migration %s", name)
            app.state.core = Core(db, config)
            yield
        finally:
            await db.close()

    return Litestar(
        route_handlers=coalition_routers(),
        dependencies={"core": Provide(_core, sync_to_thread=False)},
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=config.limits.max_body_bytes,
        openapi_config=OpenAPIConfig(title="Corral", version=VERSION, path="/schema"),
        debug=False,
    )


def _core(state: State) -> Core:
    core: Core = state.core
    return core
