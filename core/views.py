"""Building the snapshots that hooks see from database rows."""

from collections.abc import Mapping

import asyncpg

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
    )
