"""The core as one object: what a face holds to serve its requests."""

from core.affinities import Affinities
from core.config import Config
from core.db import Database
from core.dispatch import Picks, Planner
from core.events import Events
from core.job_types import JobTypes
from core.jobs import Jobs
from core.plugins import Plugins
from core.runs import Runs
from core.secrets import Secrets
from core.tokens import Tokens
from core.workers import Workers


class Core:
    def __init__(
        self, db: Database, config: Config, plugins: Plugins, planning: Database | None = None
    ) -> None:
        """`planning` is the planner's own connection (see `core.dispatch.PLANNING`),
        when it has one."""
        self.db = db
        self.config = config
        self.plugins = plugins
        self.jobs = Jobs(db, config)
        self.workers = Workers(db, config)
        self.events = Events(db, config)
        self.affinities = Affinities(db)
        self.tokens = Tokens(db)
        self.job_types = JobTypes(db, config, self.jobs, Secrets(config.server.secret_key_path()))
        self.runs = Runs(db, config, plugins)
        self.picks = Picks(db, config)
        self.picks.secret_environment = self.job_types.secret_environment
        self.planner = Planner(planning or db, config, plugins, self.picks)
