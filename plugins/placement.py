"""Placement: a job's tags say which workers may run it, for every face (AWE's client
groups, apps and skip lists are built on it).

- `pool:<name>`: only a worker of that pool (`corral worker --pool`) takes the job; with
  several `pool:` tags, a worker of any of them. A job without one goes to any worker.
- `app:<name>`: only a worker that runs the application (`corral worker --apps`), or runs
  any (`*`), takes the job; with several `app:` tags, the worker must run every one.
- `retry-elsewhere`: a run of the job that failed on a worker (a non-zero exit, or its
  timeout) keeps it off that worker for good; a run lost with its worker does not count.
  With no worker left that it has not failed on, the job stays queued.

The tag names are core.placement's, so other core code and the faces build them too. On
by default, with no settings; switch it off to ignore the tags:

    [plugins.placement]
    enabled = false
"""

import msgspec

from core.hookspecs import FarmView, JobView, WorkerView, hookimpl
from core.placement import ANY_APP, APP_TAG, POOL_TAG, RETRY_ELSEWHERE, app_tag, pool_tag, tagged

# the tags, for code that may import plugins (tests, a studio's plugin); the core and the
# faces take them from core.placement
__all__ = [
    "ANY_APP",
    "APP_TAG",
    "POOL_TAG",
    "RETRY_ELSEWHERE",
    "PlacementPlugin",
    "app_tag",
    "pool_tag",
]


class PlacementSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class PlacementPlugin:
    name = "placement"
    Settings = PlacementSettings
    enabled_by_default = True

    def __init__(self, settings: PlacementSettings) -> None:
        self.settings = settings

    @hookimpl
    def corral_admit(self, job: JobView, worker: WorkerView, farm: FarmView) -> str | None:
        if not job.tags:
            # most jobs carry no tag at all: nothing to read
            return None
        pools = tagged(job.tags, POOL_TAG)
        if pools and worker.pool not in pools:
            wanted = " or ".join(repr(p) for p in sorted(pools))
            where = repr(worker.pool) if worker.pool else "no pool"
            return f"runs in pool {wanted}; {worker.name} is in {where}"
        if ANY_APP not in worker.apps:
            missing = tagged(job.tags, APP_TAG) - worker.apps
            if missing:
                return f"needs app {min(missing)!r}; {worker.name} does not run it"
        if RETRY_ELSEWHERE in job.tags and worker.name in job.failed_on:
            return f"failed on {worker.name} before"
        return None
