"""Resources: a job that declares what a run needs (`resources`: cpus, mem in MB, gpus, a
licence: any name and amount) starts only on a worker with that much free. A worker
offers what `corral worker` detects (its cores, memory and NVIDIA GPUs) or is told
(`--resources`); what its running jobs and this pass's choices take is not free. A worker
that offers nothing (a legacy Coalition worker) is not checked, nor is a job that needs
nothing. On by default, with no settings.
"""

import msgspec

from core.hookspecs import FarmView, JobView, WorkerView, hookimpl


class ResourcesSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class ResourcesPlugin:
    name = "resources"
    Settings = ResourcesSettings
    enabled_by_default = True

    def __init__(self, settings: ResourcesSettings) -> None:
        self.settings = settings

    @hookimpl
    def corral_admit(self, job: JobView, worker: WorkerView, farm: FarmView) -> str | None:
        if not job.resources or not worker.resources:
            return None
        assigned = farm.assigned.get(worker.name, {})
        for name, need in sorted(job.resources.items()):
            free = (
                worker.resources.get(name, 0.0)
                - worker.in_use.get(name, 0.0)
                - assigned.get(name, 0.0)
            )
            if need > free:
                return f"needs {need:g} {name}; {worker.name} has {max(free, 0.0):g} free"
        return None
