"""A failed job runs again up to its own `retry` count, optionally after a backoff."""

import msgspec

from core.hookspecs import JobView, RetryDecision, RunOutcome, hookimpl


class RetrySettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # seconds before the first re-run (0: at once); each further one waits `factor` times
    # longer, never more than `max_backoff`
    backoff: float = 0.0
    factor: float = 2.0
    max_backoff: float = 600.0


class RetryPlugin:
    name = "retry"
    Settings = RetrySettings
    enabled_by_default = True

    def __init__(self, settings: RetrySettings) -> None:
        self.settings = settings

    @hookimpl
    def corral_retry(self, job: JobView, outcome: RunOutcome) -> RetryDecision | None:
        # run_done counts the failed run: retry=2 allows runs 1, 2 and 3
        if job.run_done > job.retry:
            return RetryDecision(action="fail")
        s = self.settings
        delay = min(s.backoff * s.factor ** max(job.run_done - 1, 0), s.max_backoff)
        return RetryDecision(action="requeue", delay=delay)
