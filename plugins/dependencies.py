"""A job runs once every job it depends on has FINISHED."""

from collections.abc import Sequence

import msgspec

from core.hookspecs import DependencyView, JobView, hookimpl


class DependenciesSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class DependenciesPlugin:
    name = "dependencies"
    Settings = DependenciesSettings
    enabled_by_default = True

    def __init__(self, settings: DependenciesSettings) -> None:
        self.settings = settings

    @hookimpl
    def corral_dependencies_met(
        self, job: JobView, dependencies: Sequence[DependencyView]
    ) -> bool | None:
        return all(d.state == "FINISHED" for d in dependencies)
