"""`job-types/status/`, `pending/`, `running/`, `system-failures/`: what the jobs of each
job type are doing, as Scale counts it (docs/scale.md)."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.params import QueryParameter

from api.params import CoreDep
from api.scale import fields
from api.scale.paging import Page, Paging, paging
from api.scale.times import parse_time
from api.scale.wire import STATUS, ErrorOut, JobTypeBase, Status, base, error_out
from core.job_types import Waiting

Moment = Annotated[
    str | None,
    QueryParameter(
        description="an ISO-8601 datetime with its offset, or a duration back from now (PT3H0M0S)"
    ),
]
Flag = Annotated[str | None, QueryParameter(description="true, t, 1, false, f or 0")]


class StatusCount(msgspec.Struct, kw_only=True):
    status: Status
    count: int
    most_recent: datetime
    # the error category of FAILED jobs with an error, else null
    category: str | None


class TypeStatus(msgspec.Struct, kw_only=True):
    job_type: JobTypeBase
    job_counts: list[StatusCount]


class TypePending(msgspec.Struct, kw_only=True):
    job_type: JobTypeBase
    count: int
    longest_pending: datetime | None


class TypeRunning(msgspec.Struct, kw_only=True):
    job_type: JobTypeBase
    count: int
    longest_running: datetime | None


class TypeFailures(msgspec.Struct, kw_only=True):
    job_type: JobTypeBase
    error: ErrorOut
    count: int
    first_error: datetime
    last_error: datetime


PagingDep = NamedDependency[Paging]


class StatisticsController(Controller):
    path = "/job-types"
    dependencies = {"paging": Provide(paging, sync_to_thread=False)}  # noqa: RUF012

    @get("/status", summary="Each job type's jobs by status, over a time range")
    async def status(
        self,
        core: CoreDep,
        paging: PagingDep,
        started: Moment = None,
        ended: Moment = None,
        is_active: Flag = None,
    ) -> Page[TypeStatus]:
        now = datetime.now(UTC)
        since = parse_time(started, "started", now) if started else now - timedelta(hours=3)
        until = parse_time(ended, "ended", now) if ended else None
        active = fields.query_boolean([is_active] if is_active else [], "is_active")
        counts: dict[int, list[StatusCount]] = {}
        for c in await core.job_types.state_counts(since, until):
            failed_with = c.error_category if c.state == "ERROR" else None
            counts.setdefault(c.type_id, []).append(
                StatusCount(
                    status=STATUS[c.state],
                    count=c.count,
                    most_recent=c.most_recent,
                    category=failed_with,
                )
            )
        for listed in counts.values():
            listed.sort(key=lambda c: (c.status, c.category or ""))
        rows = [r for r in await core.job_types.rows() if active is None or r.is_active == active]
        rows.sort(key=lambda r: (r.last_modified, r.id))
        return paging.page(
            [TypeStatus(job_type=base(r), job_counts=counts.get(r.id, [])) for r in rows]
        )

    @get("/pending", summary="Job types with jobs waiting on dependencies, oldest first")
    async def pending(self, core: CoreDep, paging: PagingDep) -> Page[TypePending]:
        types = await core.job_types.by_id()
        found = sorted(await core.job_types.waiting("PENDING"), key=_oldest)
        return paging.page(
            [
                TypePending(job_type=base(types[w.type_id]), count=w.count, longest_pending=w.since)
                for w in found
            ]
        )

    @get("/running", summary="Job types with running jobs, oldest first")
    async def running(self, core: CoreDep, paging: PagingDep) -> Page[TypeRunning]:
        types = await core.job_types.by_id()
        found = sorted(await core.job_types.waiting("WORKING"), key=_oldest)
        return paging.page(
            [
                TypeRunning(job_type=base(types[w.type_id]), count=w.count, longest_running=w.since)
                for w in found
            ]
        )

    @get("/system-failures", summary="Jobs failed with a system error, per type and error")
    async def system_failures(self, core: CoreDep, paging: PagingDep) -> Page[TypeFailures]:
        types = await core.job_types.by_id()
        failures = sorted(
            await core.job_types.system_failures(), key=lambda f: f.last_error, reverse=True
        )
        answer = []
        for f in failures:
            answer.append(
                TypeFailures(
                    job_type=base(types[f.type_id]),
                    error=error_out(f.error),
                    count=f.count,
                    first_error=f.first_error,
                    last_error=f.last_error,
                )
            )
        return paging.page(answer)


def _oldest(waiting: Waiting) -> tuple[bool, datetime]:
    return (waiting.since is None, waiting.since or datetime.min.replace(tzinfo=UTC))
