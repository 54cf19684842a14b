"""Building the snapshots that hooks see from database rows."""

from collections.abc import Mapping

import asyncpg
import msgspec

from core.hookspecs import JobView


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
