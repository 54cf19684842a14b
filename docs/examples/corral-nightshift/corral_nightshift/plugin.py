"""The night shift: jobs carrying the heavy tag (simulations, say) run at night, when the
artists have gone home; by day, only a few of them may run at once, so the farm stays
free for the quick renders people are waiting for. Every job state change is also written
as a line to a file, a stand-in for a message to the studio's chat.

Switch it on in Corral's config file (it is off until then):

    [plugins.nightshift]
    enabled = true
    night_start = 20          # the night runs from 20:00 ...
    night_end = 7             # ... to 07:00, server local time
    max_heavy_by_day = 2      # by day, heavy jobs run while fewer than 2 of them do
    log_path = "/var/log/corral/jobs.log"
"""

import logging
from datetime import datetime
from typing import Annotated

import msgspec

from core.hookspecs import FarmView, JobState, JobView, WorkerView, hookimpl

log = logging.getLogger("corral.nightshift")

Hour = Annotated[int, msgspec.Meta(ge=0, le=23)]


class NightShiftSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The `[plugins.nightshift]` settings; the defaults are the plugin's defaults."""

    # jobs carrying this tag are the heavy ones
    tag: str = "heavy"
    # the night runs from night_start:00 up to night_end:00 (server local time) and may
    # span midnight; equal hours mean no night at all
    night_start: Hour = 20
    night_end: Hour = 7
    # by day, a heavy job still runs while fewer than this many heavy jobs run (0: none)
    max_heavy_by_day: Annotated[int, msgspec.Meta(ge=0)] = 2
    # append one line per job state change to this file; "" writes nothing
    log_path: str = ""
    # take this hour as the current one instead of the clock (for tests and rehearsals)
    pretend_hour: Hour | None = None


class NightShiftPlugin:
    name = "nightshift"
    Settings = NightShiftSettings
    enabled_by_default = False

    def __init__(self, settings: NightShiftSettings) -> None:
        self.settings = settings

    def hour(self) -> int:
        """The current hour, 0..23, or the one the settings pretend it is."""
        if self.settings.pretend_hour is not None:
            return self.settings.pretend_hour
        return datetime.now().hour

    def is_night(self, hour: int) -> bool:
        start, end = self.settings.night_start, self.settings.night_end
        if start <= end:
            return start <= hour < end
        return hour >= start or hour < end

    @hookimpl
    def corral_admit(self, job: JobView, worker: WorkerView, farm: FarmView) -> str | None:
        s = self.settings
        if s.tag not in job.tags or self.is_night(self.hour()):
            return None
        running = farm.running_by_tag.get(s.tag, 0)
        if running < s.max_heavy_by_day:
            return None
        return (
            f"{s.tag!r} jobs wait for the night ({s.night_start}:00): "
            f"{running} already run by day, at most {s.max_heavy_by_day}"
        )

    @hookimpl
    def corral_job_state_changed(self, job: JobView, old: JobState, new: JobState) -> None:
        if not self.settings.log_path:
            return
        when = datetime.now().isoformat(timespec="seconds")
        line = f"{when} job {job.id} {job.title!r} of {job.user or '-'}: {old} -> {new}\n"
        try:
            with open(self.settings.log_path, "a", encoding="utf-8") as out:
                out.write(line)
        except OSError as exc:
            # a notification must never stop the farm; say so once per failed line
            log.warning("cannot write to %s: %s", self.settings.log_path, exc)
