"""Hierarchical priority, then first come first served.

Priorities compare from the root down: a job of a higher-priority group goes before any
job of a lower-priority one, whatever their own priorities; equal paths go by id."""

from collections.abc import Sequence
from typing import Literal

import msgspec

from core.hookspecs import JobView, WorkerView, hookimpl


class OrderingSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # among equal priorities: oldest first ("fifo") or newest first ("lifo")
    tie_break: Literal["fifo", "lifo"] = "fifo"


class OrderingPlugin:
    name = "ordering"
    Settings = OrderingSettings
    enabled_by_default = True

    def __init__(self, settings: OrderingSettings) -> None:
        self.settings = settings

    @hookimpl
    def corral_order(
        self, candidates: Sequence[JobView], worker: WorkerView
    ) -> Sequence[JobView] | None:
        fifo = self.settings.tie_break == "fifo"
        by_id = sorted(candidates, key=lambda j: j.id, reverse=not fifo)
        # stable sorts: priority path decides, id breaks ties
        return sorted(by_id, key=lambda j: j.prio_path, reverse=True)
