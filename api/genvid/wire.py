"""The Genvid Cluster API's JSON shapes, with Genvid's field names (camel case, as its
clients read them)."""

import msgspec

from core.services import Allocation, ServiceStatus


class SummaryOut(msgspec.Struct, kw_only=True):
    queued: int
    starting: int
    running: int
    complete: int
    failed: int
    lost: int


class TaskGroupOut(msgspec.Struct, kw_only=True, rename="camel"):
    name: str
    count: int
    count_init: int
    count_max: int
    summary: SummaryOut


class JobOut(msgspec.Struct, kw_only=True, rename="camel"):
    name: str
    # Nomad's: running, pending or dead
    status: str
    autostart: bool
    by_cluster: bool
    task_groups: list[TaskGroupOut]


class CountChange(msgspec.Struct, kw_only=True, rename={"job": "jobID", "group": "taskGroup"}):
    """`updatecounts` (a delta; 0 sets 0) and `settaskgroupcount` (a count)."""

    job: str
    group: str
    count: int


def job_out(service: ServiceStatus) -> JobOut:
    return JobOut(
        name=service.name,
        status=service.status,
        autostart=service.autostart,
        by_cluster=False,
        task_groups=[
            TaskGroupOut(
                name=g.name,
                count=g.count,
                count_init=g.count_init,
                count_max=g.count_max,
                summary=SummaryOut(
                    queued=g.summary.queued,
                    starting=g.summary.starting,
                    running=g.summary.running,
                    complete=g.summary.complete,
                    failed=g.summary.failed,
                    lost=g.summary.lost,
                ),
            )
            for g in service.groups
        ],
    )


def task_status(allocation: Allocation) -> str:
    """Nomad's task state of an allocation: pending, running or dead."""
    if allocation.status in ("queued", "starting"):
        return "pending"
    return "running" if allocation.status == "running" else "dead"
