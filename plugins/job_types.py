"""The limits a job type puts on its jobs: at most its `max_scheduled` of them running
farm-wide, and none starting while the type is paused (its running jobs go on). On by
default; the figures come from the job types themselves, through the tags of their jobs
(`FarmView.tag_limits`, `FarmView.held_tags`), so this plugin has no settings.
"""

import msgspec

from core.hookspecs import FarmView, JobView, WorkerView, hookimpl


class JobTypesSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class JobTypesPlugin:
    name = "job_types"
    Settings = JobTypesSettings
    enabled_by_default = True

    def __init__(self, settings: JobTypesSettings) -> None:
        self.settings = settings

    @hookimpl
    def corral_admit(self, job: JobView, worker: WorkerView, farm: FarmView) -> str | None:
        for tag in sorted(job.tags):
            if tag in farm.held_tags:
                return "its job type is paused"
            limit = farm.tag_limits.get(tag)
            if limit is not None and farm.running_by_tag.get(tag, 0) >= limit:
                return f"{limit} jobs of its job type already run (max_scheduled)"
        return None
