"""Lifecycle notifications: the `corral_*_state_changed` hooks, called after the change
is committed, in a thread so a slow plugin (a webhook, a mail) never stalls the server."""

import asyncio
import logging

from core.hookspecs import JobState, JobView, WorkerState
from core.plugins import Plugins

log = logging.getLogger("corral.notify")


class Notifier:
    def __init__(self, plugins: Plugins) -> None:
        self._plugins = plugins

    async def jobs_changed(self, changes: list[tuple[JobView, JobState, JobState]]) -> None:
        if changes and self._plugins.implements("corral_job_state_changed"):
            await asyncio.to_thread(self._jobs, changes)

    async def worker_changed(self, worker: str, old: WorkerState, new: WorkerState) -> None:
        if old != new and self._plugins.implements("corral_worker_state_changed"):
            await asyncio.to_thread(self._worker, worker, old, new)

    def _jobs(self, changes: list[tuple[JobView, JobState, JobState]]) -> None:
        for job, old, new in changes:
            try:
                self._plugins.hook.corral_job_state_changed(job=job, old=old, new=new)
            except Exception:
                log.exception("a corral_job_state_changed hook failed for job %d", job.id)

    def _worker(self, worker: str, old: WorkerState, new: WorkerState) -> None:
        try:
            self._plugins.hook.corral_worker_state_changed(worker=worker, old=old, new=new)
        except Exception:
            log.exception("a corral_worker_state_changed hook failed for %s", worker)
