"""A run longer than its job's `timeout` (seconds) is stopped."""

from typing import Annotated

import msgspec

from core.hookspecs import RunView, TimeoutDecision, hookimpl


class TimeoutSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # seconds, for jobs whose own timeout is 0; 0 here too means no limit
    default_timeout: Annotated[int, msgspec.Meta(ge=0)] = 0


class TimeoutPlugin:
    name = "timeout"
    Settings = TimeoutSettings
    enabled_by_default = True

    def __init__(self, settings: TimeoutSettings) -> None:
        self.settings = settings

    @hookimpl
    def corral_timeout(self, run: RunView, now: float) -> TimeoutDecision | None:
        limit = run.job.timeout or self.settings.default_timeout
        if limit and run.elapsed > limit:
            return TimeoutDecision(reason=f"ran longer than its timeout of {limit} s")
        return None
