"""The core as one object: what a face holds to serve its requests."""

from core.affinities import Affinities
from core.client_groups import ClientGroups
from core.clients import Clients
from core.config import Config
from core.dashboard import Dashboard
from core.db import Database
from core.dispatch import Picks, Planner
from core.documents import Documents, ResultsFeed
from core.events import Events
from core.job_types import JobTypes
from core.jobs import Jobs
from core.loggers import Loggers
from core.logs import Logs
from core.nodes import Nodes
from core.plugins import Plugins
from core.runs import Runs
from core.secrets import Secrets
from core.services import Services
from core.tokens import Tokens
from core.vault import Vault
from core.waiting import Waits
from core.workers import Workers
from core.workflows import Workflows


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
        self.client_groups = ClientGroups(db)
        self.job_types = JobTypes(db, config, self.jobs, Secrets(config.server.secret_key_path()))
        self.runs = Runs(db, config, plugins)
        self.waits = Waits(db, plugins)
        self.picks = Picks(db, config)
        self.logs = Logs(db)
        self.dashboard = Dashboard(db, self.logs)
        self.documents = Documents(db)
        self.vault = Vault(db, config)
        # the events results feed of this process (the Genvid face's)
        self.event_results = ResultsFeed()
        self.services = Services(db, config, self.jobs)
        self.loggers = Loggers(db)
        self.picks.preparers = [
            self.job_types.prepare,
            self.services.preparer(self.vault.environment),
        ]
        self.workflows = Workflows(db, self.jobs, config)
        self.nodes = Nodes(db, config)
        self.clients = Clients(
            db, config, self.jobs, self.workers, self.picks, self.runs, self.workflows
        )
        self.planner = Planner(planning or db, config, plugins, self.picks)
