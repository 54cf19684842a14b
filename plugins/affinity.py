"""Coalition's affinity rules: a worker takes a job when one of its ordered rules
contains every affinity of the job, preferring jobs that fit its earlier rules."""

import msgspec

from core.hookspecs import WorkerView, hookimpl


class AffinitySettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # jobs without affinities come after those fitting any rule (Coalition), or first
    unaffiliated_last: bool = True


class AffinityPlugin:
    name = "affinity"
    Settings = AffinitySettings
    enabled_by_default = True

    def __init__(self, settings: AffinitySettings) -> None:
        self.settings = settings

    @hookimpl
    def corral_affinity_rank(self, affinities: frozenset[str], worker: WorkerView) -> int | None:
        if not affinities:
            return len(worker.rules) if self.settings.unaffiliated_last else 0
        for rank, rule in enumerate(worker.rules):
            if affinities <= rule:
                return rank
        return None
