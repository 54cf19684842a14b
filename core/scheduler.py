"""The periodic passes of one server process, driven by APScheduler, and the
`LISTEN/NOTIFY` wake-ups that run the planner at once instead of at its next tick.

Every pass is idempotent and takes a PostgreSQL advisory lock, so any number of server
processes may run them against one database.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from core.config import Config
from core.dashboard import Dashboard
from core.dispatch import Picks, Planner
from core.runs import Runs
from core.services import Services
from core.workflows import Workflows

log = logging.getLogger("corral.scheduler")
# a listener connection lost is opened again after this many seconds
_RECONNECT = 1.0


class Scheduler:
    def __init__(
        self,
        database_url: str,
        config: Config,
        planner: Planner,
        picks: Picks,
        runs: Runs,
        services: Services,
        workflows: Workflows | None = None,
        dashboard: Dashboard | None = None,
    ) -> None:
        self._url = database_url
        self._config = config
        self._planner = planner
        self._picks = picks
        self._runs = runs
        self._services = services
        self._workflows = workflows
        self._dashboard = dashboard
        self._reconciling = False
        self._reconcile_again = False
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._again = False
        self._planning = False
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._picks.on_demand = self.wake
        d = self._config.dispatch
        self._add("plan", self._plan, d.interval)
        self._add("timeouts", self._runs.expire_timeouts, d.timeout_interval)
        self._add("lost_workers", self._runs.lose_workers, d.dead_worker_interval)
        self._add("release", self._runs.release_held, d.retry_interval)
        self._services.on_change = self.wake_reconcile
        self._add("reconcile", self._reconcile, self._config.genvid.settings.reconcile_interval)
        if self._workflows is not None:
            self._add("awe_expiry", self._workflows.expire, self._config.awe.expiry_interval)
        if self._dashboard is not None:
            keep = self._config.dashboard.keep_samples
            dashboard = self._dashboard
            self._add(
                "farm_sample",
                lambda: dashboard.sample(keep),
                self._config.dashboard.sample_interval,
            )
        self._scheduler.start()
        self._listener = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        self._scheduler.shutdown(wait=False)
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener

    def wake(self) -> None:
        """Plan now: a worker waits or a job became ready."""
        if self._planning:
            # the running pass goes round once more rather than lose the wake-up
            self._again = True
            return
        job = self._scheduler.get_job("plan")
        if job is not None:
            job.modify(next_run_time=datetime.now(UTC))

    def wake_reconcile(self) -> None:
        """Reconcile the services now: a count, an allocation or a definition changed."""
        if self._reconciling:
            self._reconcile_again = True
            return
        job = self._scheduler.get_job("reconcile")
        if job is not None:
            job.modify(next_run_time=datetime.now(UTC))

    async def _reconcile(self) -> None:
        self._reconciling = True
        try:
            while True:
                self._reconcile_again = False
                await self._services.reconcile()
                if not self._reconcile_again:
                    return
        finally:
            self._reconciling = False

    def _add(self, name: str, func: Callable[[], Awaitable[object]], seconds: float) -> None:
        async def run() -> None:
            try:
                await func()
            except Exception:
                log.exception("the %s pass failed; it runs again at its next tick", name)

        self._scheduler.add_job(
            run,
            "interval",
            seconds=seconds,
            id=name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=datetime.now(UTC),
        )

    async def _plan(self) -> None:
        self._planning = True
        try:
            while True:
                self._again = False
                await self._planner.plan()
                if not self._again:
                    return
        finally:
            self._planning = False

    async def _listen(self) -> None:
        while True:
            try:
                conn = await asyncpg.connect(self._url)
            except (OSError, asyncpg.PostgresError):
                log.warning("cannot listen for wake-ups; trying again")
                await asyncio.sleep(_RECONNECT)
                continue
            lost = asyncio.Event()
            try:
                conn.add_termination_listener(lambda c, lost=lost: lost.set())
                await conn.add_listener("corral_dispatch", self._on_dispatch)
                await conn.add_listener("corral_assigned", self._on_assigned)
                await conn.add_listener("corral_services", self._on_services)
                # anything that happened while no one listened
                self.wake()
                await lost.wait()
            finally:
                await conn.close()

    def _on_dispatch(self, conn: object, pid: int, channel: str, payload: object) -> None:
        if payload != self._picks.mark:
            self.wake()

    def _on_services(self, conn: object, pid: int, channel: str, payload: object) -> None:
        if isinstance(payload, str) and payload.isdigit():
            self._services.heard(int(payload))
        self.wake_reconcile()

    def _on_assigned(self, conn: object, pid: int, channel: str, payload: object) -> None:
        if isinstance(payload, str):
            self._picks.assigned(payload.split("\n"))
