"""AWE's JSON shapes, with the Go names AWE 0.9.68 emits (docs/awe.md)."""

import datetime
import time
from typing import Final

import msgspec

from core.workflows import IO, Server, TaskView, Unit, Workflow

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
        auth=False,
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
