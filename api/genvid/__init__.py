"""The Genvid face: the Genvid Cluster API, under `/v1` (docs/genvid.md).

The secrets routes are served without the prefix too (`/secrets/...`), as the Cluster
API's document prints them: same handlers, same store.
"""

from litestar import Router
from litestar.di import Provide

from api.body import StrictRequest
from api.genvid.events import EVENTS_ROUTES
from api.genvid.jobs import JobsController
from api.genvid.loggers import LoggersController
from api.genvid.logs import LogsController
from api.genvid.secrets import SECRETS_ROUTES
from api.genvid.settings import SETTINGS_ROUTES, SettingsFiles, load_settings_files
from core.config import Config

__all__ = ["genvid_routers"]


def genvid_routers(config: Config) -> list[Router]:
    """The face's routers. The settings schema and defaults are read here, so a bad file
    stops the start-up (`core.config.ConfigError`) before anything listens."""
    files = load_settings_files(config.genvid.settings)

    def settings_files() -> SettingsFiles:
        return files

    return [
        Router(
            path="/v1",
            route_handlers=[
                *SETTINGS_ROUTES,
                *EVENTS_ROUTES,
                *SECRETS_ROUTES,
                JobsController,
                LogsController,
                LoggersController,
            ],
            dependencies={"settings_files": Provide(settings_files, sync_to_thread=False)},
            request_class=StrictRequest,
            tags=["genvid"],
        ),
        Router(
            path="/",
            route_handlers=[*SECRETS_ROUTES],
            request_class=StrictRequest,
            tags=["genvid"],
            include_in_schema=False,
        ),
    ]
