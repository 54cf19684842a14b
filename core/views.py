"""Building the snapshots that hooks see from database rows."""

from collections.abc import Mapping

import asyncpg
import msgspec

from core.hookspecs import FarmView, JobView, WorkerView


class WorkerRow(msgspec.Struct):
    """A worker as the dispatch and waiting queries read it."""

    name: str
    slots: int
    running: int
    # one text per rule: the affinity ids joined by commas
    rules: list[str]
    # what it offers, and what its running jobs take of it
    resources: dict[str, float]
    in_use: dict[str, float]
    pool: str
    apps: list[str]


class _Farm(msgspec.Struct):
    running_by_tag: dict[str, int]
    running_by_user: dict[str, int]
    tag_limits: dict[str, int]
    held_tags: list[str]


def worker_view(worker: WorkerRow, names: Mapping[int, str]) -> WorkerView:
    """The WorkerView of a worker's row, its rules' affinity ids named."""
    rules = tuple(
        frozenset(names.get(int(i), i) for i in text.split(",") if i) for text in worker.rules
    )
    return WorkerView(
        name=worker.name,
        rules=rules,
        slots=worker.slots,
        running=worker.running,
        resources=worker.resources,
        in_use=worker.in_use,
        pool=worker.pool,
        apps=frozenset(worker.apps),
    )


def farm_view(figures: str | None) -> FarmView:
    """The farm view from the figures the queries read as JSON (none when no policy
    admits)."""
    if figures is None:
        return FarmView(running_by_tag={}, running_by_user={}, running=0)
    farm = msgspec.json.decode(figures, type=_Farm)
    return FarmView(
        running_by_tag=farm.running_by_tag,
        running_by_user=farm.running_by_user,
        running=sum(farm.running_by_user.values()),
        tag_limits=farm.tag_limits,
        held_tags=frozenset(farm.held_tags),
    )


def job_view(row: asyncpg.Record, names: Mapping[int, str]) -> JobView:
    """A JobView from a row carrying the job columns the dispatch and run queries select."""
    return JobView(
        id=row["id"],
        parent=row["parent"],
        title=row["title"],
        user=row["user_name"],
        priority=row["priority"],
        prio_path=tuple(row["prio_path"]),
        affinities=frozenset(names.get(i, str(i)) for i in row["affinity_ids"]),
        tags=frozenset(row["tags"]),
        retry=row["retry"],
        run_done=row["run_done"],
        timeout=row["timeout"],
        resources=_resources(row.get("resources")),
        # NULL for a job that has not run, and absent from the rows outside dispatch
        failed_on=frozenset(row.get("failed_on") or ()),
    )


def _resources(text: str | None) -> dict[str, float]:
    """A job's resources as the queries read them (JSON), for the rows that carry them."""
    return {} if not text or text == "{}" else msgspec.json.decode(text, type=dict[str, float])
