"""Concurrency limits: at most N running jobs carrying a tag (a licence, say `nuke`), or
belonging to one user. Off by default; switch it on in the config file:

    [plugins.limits]
    enabled = true
    per_tag = { nuke = 4, houdini = 10 }
    per_user = { intern = 2 }
    default_per_user = 50
"""

from typing import Annotated

import msgspec

from core.hookspecs import FarmView, JobView, WorkerView, hookimpl

Limit = Annotated[int, msgspec.Meta(ge=0)]


class LimitsSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    per_tag: dict[str, Limit] = msgspec.field(default_factory=dict)
    per_user: dict[str, Limit] = msgspec.field(default_factory=dict)
    # for users not named in per_user; 0 means no limit
    default_per_user: Limit = 0


class LimitsPlugin:
    name = "limits"
    Settings = LimitsSettings
    enabled_by_default = False

    def __init__(self, settings: LimitsSettings) -> None:
        self.settings = settings

    @hookimpl
    def corral_admit(self, job: JobView, worker: WorkerView, farm: FarmView) -> str | None:
        for tag in sorted(job.tags):
            limit = self.settings.per_tag.get(tag)
            if limit is not None and farm.running_by_tag.get(tag, 0) >= limit:
                return f"{limit} jobs tagged {tag!r} already run"
        limit = self.settings.per_user.get(job.user, self.settings.default_per_user)
        if (job.user in self.settings.per_user or limit) and farm.running_by_user.get(
            job.user, 0
        ) >= limit:
            return f"{limit} jobs of user {job.user!r} already run"
        return None
