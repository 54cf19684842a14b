"""AWE's JSON shapes, with the Go names AWE 0.9.68 emits (docs/awe.md)."""

import datetime
import time
from typing import Final

import msgspec

from core.workflows import IO, QueueCounts, Reports, Server, TaskView, Unit, Workflow, ranks

VERSION: Final = "0.9.68"
# Go's zero time, which AWE shows for a time not set
UNSET_TIME: Final = "0001-01-01T00:00:00Z"
_STARTED = time.time()


def rfc3339(seconds: float | None) -> str:
    if not seconds:
        return UNSET_TIME
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


class PublicEnviron(msgspec.Struct, kw_only=True):
    public: dict[str, str]


class CommandOut(msgspec.Struct, kw_only=True, rename={"dockerimage": "Dockerimage",
                                                       "docker_pull": "dockerPull",
                                                       "local": "Local"}):  # fmt: skip
    name: str
    args: str
    args_array: list[str]
    dockerimage: str = ""
    docker_pull: str = ""
    cmd_script: list[str] = msgspec.field(default_factory=list)
    environ: PublicEnviron
    has_private_env: bool
    description: str
    local: bool = False


class InfoOut(msgspec.Struct, kw_only=True):
    name: str
    xref: str
    service: str
    project: str
    user: str
    pipeline: str
    clientgroups: str
    submittime: str
    startedtime: str
    completedtime: str
    priority: int
    auth: bool
    noretry: bool
    userattr: dict[str, str]
    description: str
    tracking: bool
    start_at: str = UNSET_TIME


class TaskOut(msgspec.Struct, kw_only=True, rename={"depends_on": "dependsOn"}):
    task_name: str
    parent: str
    jobid: str
    taskid: str
    task_type: str
    cmd: CommandOut
    depends_on: list[str]
    totalwork: int
    maxworksize: int
    remainwork: int
    state: str
    createddate: str
    starteddate: str
    completeddate: str
    computetime: int
    userattr: dict[str, str]
    clientgroups: str
    inputs: list[IO]
    outputs: list[IO]
    predata: list[IO]


class JobOut(msgspec.Struct, kw_only=True, rename={"is_cwl": "IsCWL"}):
    id: str
    info: InfoOut
    tasks: list[TaskOut]
    state: str
    registered: bool
    remaintasks: int
    expiration: str
    updatetime: str
    error: dict[str, object] | None
    resumed: int
    shockhost: str
    is_cwl: bool = False


def info_out(workflow: Workflow) -> InfoOut:
    info = workflow.info
    return InfoOut(
        name=info.name,
        xref=info.xref,
        service=info.service,
        project=info.project,
        user=info.user,
        pipeline=info.pipeline,
        clientgroups=info.clientgroups,
        submittime=rfc3339(workflow.submitted),
        startedtime=rfc3339(workflow.started),
        completedtime=rfc3339(workflow.completed),
        priority=info.priority,
        auth=workflow.auth,
        noretry=info.noretry,
        userattr=info.userattr,
        description=info.description,
        tracking=info.tracking,
    )


def task_out(workflow: Workflow, view: TaskView) -> TaskOut:
    task = view.task
    cmd = task.cmd
    return TaskOut(
        task_name=task.name,
        parent="",
        jobid=workflow.id,
        taskid=f"{workflow.id}_{task.name}",
        task_type="",
        cmd=CommandOut(
            name=cmd.name,
            args=cmd.args,
            args_array=cmd.args_array,
            environ=PublicEnviron(public=cmd.environ.public),
            has_private_env=bool(cmd.environ.private),
            description=cmd.description,
        ),
        depends_on=task.depends_on,
        totalwork=task.totalwork,
        maxworksize=task.maxworksize,
        remainwork=view.remainwork,
        state=view.state,
        createddate=rfc3339(workflow.submitted),
        starteddate=rfc3339(view.started),
        completeddate=rfc3339(view.completed),
        computetime=0,
        userattr=task.userattr,
        clientgroups=task.clientgroups,
        inputs=task.inputs,
        outputs=task.outputs,
        predata=task.predata,
    )


def job_out(workflow: Workflow, state: str | None = None) -> JobOut:
    return JobOut(
        id=workflow.id,
        info=info_out(workflow),
        tasks=[task_out(workflow, t) for t in workflow.tasks],
        state=state or workflow.state,
        registered=workflow.state not in ("deleted",),
        remaintasks=sum(t.state != "completed" for t in workflow.tasks),
        expiration=rfc3339(workflow.expiration),
        updatetime=rfc3339(workflow.updated),
        error=workflow.error,
        resumed=workflow.resumed,
        shockhost="",
    )


class WorkLogOut(msgspec.Struct, kw_only=True):
    wuid: str
    rank: int
    logs: dict[str, str]


class TaskLogOut(msgspec.Struct, kw_only=True):
    taskid: str
    state: str
    totalwork: int
    completeddate: str
    workunits: list[WorkLogOut]


class JobLogOut(msgspec.Struct, kw_only=True):
    """`GET /job/<id>?report`: AWE's JobLog, each workunit with its last reports."""

    id: str
    state: str
    updatetime: str
    error: dict[str, object] | None
    resumed: int
    tasks: list[TaskLogOut]


REPORT_KINDS: Final = ("stdout", "stderr", "worknotes")


def job_log_out(workflow: Workflow, reports: Reports) -> JobLogOut:
    tasks = []
    for view in workflow.tasks:
        name = view.task.name
        units = [
            WorkLogOut(
                wuid=f"{workflow.id}_{name}_{rank}",
                rank=rank,
                # AWE answers "" for a log no report carried
                logs={k: reports.get((name, rank), {}).get(k, "") for k in REPORT_KINDS},
            )
            for rank in ranks(view.task.totalwork)
        ]
        tasks.append(
            TaskLogOut(
                taskid=f"{workflow.id}_{name}",
                state=view.state,
                totalwork=view.task.totalwork,
                completeddate=rfc3339(view.completed),
                workunits=units,
            )
        )
    return JobLogOut(
        id=workflow.id,
        state=workflow.state,
        updatetime=rfc3339(workflow.updated),
        error=workflow.error,
        resumed=workflow.resumed,
        tasks=tasks,
    )


class JobMinOut(msgspec.Struct, kw_only=True):
    """A job in `GET /job?verbosity=minimal` (AWE's JobMin)."""

    id: str
    name: str
    size: int
    submittime: str
    completedtime: str
    computetime: int
    task: list[int]
    state: list[str]
    userattr: dict[str, str]


def job_min_out(workflow: Workflow) -> JobMinOut:
    return JobMinOut(
        id=workflow.id,
        name=workflow.info.name,
        # what its tasks read: the sizes its inputs were given
        size=sum(io.size for t in workflow.tasks for io in t.task.inputs),
        submittime=rfc3339(workflow.submitted),
        completedtime=rfc3339(workflow.completed),
        computetime=0,
        task=[t.remainwork for t in workflow.tasks],
        state=[t.state for t in workflow.tasks],
        userattr=workflow.info.userattr,
    )


class JobPerfOut(msgspec.Struct, kw_only=True):
    """A live job in `GET /queue?job` (AWE's JobPerf; Corral keeps no per-task perf)."""

    id: str
    queued: int
    start: int
    end: int
    resp: int
    task_stats: dict[str, object]
    work_stats: dict[str, object]


class JobQueueOut(msgspec.Struct, kw_only=True):
    active: dict[str, JobPerfOut]
    suspend: dict[str, bool]


def job_queue_out(live: list[Workflow]) -> JobQueueOut:
    active = {
        w.id: JobPerfOut(
            id=w.id,
            queued=int(w.submitted),
            start=int(w.started or 0),
            end=0,
            resp=0,
            task_stats={},
            work_stats={},
        )
        for w in live
        if w.state != "suspend"
    }
    return JobQueueOut(active=active, suspend={w.id: True for w in live if w.state == "suspend"})


def queue_json(counts: QueueCounts) -> dict[str, dict[str, int]]:
    """`GET /queue?json`: AWE's GetJsonStatus."""
    c = counts
    return {
        "jobs": {
            "total": c.jobs_active + c.jobs_suspended,
            "active": c.jobs_active,
            "suspended": c.jobs_suspended,
        },
        "tasks": {
            "total": c.tasks_total,
            "queuing": c.tasks_queuing,
            "in-progress": c.tasks_in_progress,
            "pending": c.tasks_pending,
            "completed": c.tasks_completed,
            "suspended": c.tasks_suspended,
            "failed": c.tasks_failed,
        },
        "workunits": {
            "total": c.units_queuing + c.units_checkout + c.units_suspended,
            "queuing": c.units_queuing,
            "checkout": c.units_checkout,
            "suspended": c.units_suspended,
        },
        "clients": {
            "total": c.clients_total,
            "busy": c.clients_busy,
            "idle": c.clients_total - c.clients_busy,
            "suspended": c.clients_suspended,
        },
    }


def queue_text(counts: QueueCounts, now: float) -> str:
    """`GET /queue`: AWE's GetTextStatus, line for line."""
    s = queue_json(counts)
    jobs, tasks, units, clients = s["jobs"], s["tasks"], s["workunits"], s["clients"]
    # Go's time.Time.String(), without the monotonic clock reading
    moment = datetime.datetime.fromtimestamp(now, datetime.UTC)
    shown = moment.strftime("%Y-%m-%d %H:%M:%S.%f +0000 UTC")
    return (
        "++++++++AWE server queue status++++++++\n"
        f"total jobs ............... {jobs['total']}\n"
        f"    active:           ({jobs['active']})\n"
        f"    suspended:        ({jobs['suspended']})\n"
        f"total tasks .............. {tasks['total']}\n"
        f"    queuing:          ({tasks['queuing']})\n"
        f"    in-progress:      ({tasks['in-progress']})\n"
        f"    pending:          ({tasks['pending']})\n"
        f"    completed:        ({tasks['completed']})\n"
        f"    suspended:        ({tasks['suspended']})\n"
        f"    failed & skipped: ({tasks['failed']})\n"
        f"total workunits .......... {units['total']}\n"
        f"    queuing:          ({units['queuing']})\n"
        f"    checkout:         ({units['checkout']})\n"
        f"    suspended:        ({units['suspended']})\n"
        f"total clients ............ {clients['total']}\n"
        f"    busy:             ({clients['busy']})\n"
        f"    idle:             ({clients['idle']})\n"
        f"    suspend:          ({clients['suspended']})\n"
        f"---last update: {shown}\n\n"
    )


def describe(url: str, server: Server) -> dict[str, object]:
    """`GET /`: what AWE's tools read of a server."""
    return {
        "resources": ["job", "work", "client", "queue", "awf", "event"],
        "info_indexes": [
            "name",
            "submittime",
            "completedtime",
            "pipeline",
            "clientgroups",
            "project",
            "service",
            "user",
            "priority",
            "userattr.submission",
        ],
        "url": url,
        "title": "",
        "contact": "",
        "id": "AWE",
        "auth": [],
        "anonymous_permissions": {"read": True, "write": True, "delete": True},
        "type": "server",
        "queue_status": "suspended" if server.queue_suspended else "running",
        "version": VERSION,
        "server_time": rfc3339(time.time()),
        "uptime": f"{int(time.time() - _STARTED)}s",
        "uuid": server.uuid,
    }


class WorkunitOut(msgspec.Struct, kw_only=True):
    """A workunit as a checkout hands it over (never a WorkPath, Dockerimage or cwl)."""

    task_name: str
    parent: str
    jobid: str
    rank: int
    id: str
    wuid: str
    info: InfoOut
    inputs: list[IO]
    outputs: list[IO]
    predata: list[IO]
    cmd: CommandOut
    totalwork: int
    state: str
    failed: int
    checkout_time: str
    client: str
    computetime: int
    exitstatus: int
    notes: list[str]
    userattr: dict[str, str]
    shockhost: str


def workunit_out(unit: Unit, client: str, state: str) -> WorkunitOut:
    task = task_out(unit.workflow, unit.task)
    cmd = msgspec.structs.replace(task.cmd, dockerimage="", docker_pull="")
    return WorkunitOut(
        task_name=task.task_name,
        parent="",
        jobid=unit.workflow.id,
        rank=unit.rank,
        id=unit.id,
        wuid=unit.id,
        info=info_out(unit.workflow),
        inputs=task.inputs,
        outputs=task.outputs,
        predata=[],
        cmd=cmd,
        totalwork=task.totalwork,
        state=state,
        failed=0,
        checkout_time=rfc3339(time.time()),
        client=client,
        computetime=0,
        exitstatus=-1,
        notes=[],
        userattr=task.userattr,
        shockhost="",
    )
