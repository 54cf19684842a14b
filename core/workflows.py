"""Workflows: jobs of tasks, each task a group of workunits (AWE's jobs, docs/awe.md).

A workflow is a root group, each task a child group and each workunit a leaf: `totalwork`
1 gives one leaf of rank 0, N > 1 gives N leaves of ranks 1..N. A task's `dependsOn` and
its inputs' `origin` are dependencies between task groups, which hold back every leaf
below. States are read from the tree; only `deleted` and `failed-permanent` are kept
beside it.
"""

import base64
import binascii
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

import msgspec

from core.config import Config
from core.db import Conn, Database
from core.errors import Invalid, NotFound
from core.jobs import Jobs
from core.models import JobEdit, JobSpec
from core.placement import RETRY_ELSEWHERE, app_tag, pool_tag
from core.sql import Queries

if TYPE_CHECKING:
    from _typeshed import SupportsRichComparison

Q = Queries("workflows.sql")
NODES = Queries("nodes.sql")

# leaves of workflows go to the clients of the workflow face only
AFFINITY = "AWE client"
USER = "awe"


class IO(msgspec.Struct, kw_only=True, omit_defaults=False):
    filename: str = ""
    name: str = ""
    directory: str = ""
    host: str = ""
    node: str = "-"
    url: str = ""
    size: int = 0
    cache: bool = False
    origin: str = ""
    nonzero: bool = False
    temporary: bool = False
    shockfilename: str = ""
    shockindex: str = ""
    attrfile: str = ""
    nofile: bool = False
    delete: bool = False
    type: str = ""
    nodeattr: dict[str, object] = msgspec.field(default_factory=dict)
    formoptions: dict[str, str] = msgspec.field(default_factory=dict)
    uncompress: str = ""


class Environ(msgspec.Struct, kw_only=True):
    public: dict[str, str] = msgspec.field(default_factory=dict)
    private: dict[str, str] = msgspec.field(default_factory=dict)


class Command(msgspec.Struct, kw_only=True):
    name: str = ""
    args: str = ""
    args_array: list[str] = msgspec.field(default_factory=list)
    description: str = ""
    environ: Environ = msgspec.field(default_factory=Environ)


class Info(msgspec.Struct, kw_only=True):
    name: str = ""
    xref: str = ""
    service: str = ""
    project: str = ""
    user: str = ""
    pipeline: str = ""
    clientgroups: str = ""
    priority: int = 1
    noretry: bool = False
    userattr: dict[str, str] = msgspec.field(default_factory=dict)
    description: str = ""
    tracking: bool = False


class TaskDocument(msgspec.Struct, kw_only=True):
    taskid: str
    cmd: Command
    dependsOn: list[str] = msgspec.field(default_factory=list)
    totalwork: int = 1
    maxworksize: int = 0
    inputs: list[IO] | dict[str, IO] = msgspec.field(default_factory=list)
    outputs: list[IO] | dict[str, IO] = msgspec.field(default_factory=list)
    predata: list[IO] | dict[str, IO] = msgspec.field(default_factory=list)
    userattr: dict[str, str] = msgspec.field(default_factory=dict)
    clientgroups: str = ""


class Document(msgspec.Struct, kw_only=True):
    """A workflow as submitted: its info and its tasks."""

    info: Info = msgspec.field(default_factory=Info)
    tasks: list[TaskDocument] = msgspec.field(default_factory=list)


class Task(msgspec.Struct, kw_only=True):
    """A task as stored: its IO as lists."""

    name: str
    cmd: Command
    depends_on: list[str]
    totalwork: int
    maxworksize: int
    inputs: list[IO]
    outputs: list[IO]
    predata: list[IO]
    userattr: dict[str, str]
    clientgroups: str


class Stored(msgspec.Struct, kw_only=True):
    info: Info
    tasks: list[Task]


TaskState = Literal["pending", "queued", "in-progress", "completed", "suspend", "failed-permanent"]
JobState = Literal[
    "init", "queued", "in-progress", "completed", "suspend", "failed-permanent", "deleted"
]


class TaskView(msgspec.Struct, kw_only=True):
    task: Task
    state: TaskState
    remainwork: int
    started: float | None
    completed: float | None


class Workflow(msgspec.Struct, kw_only=True):
    id: str
    job: int
    info: Info
    tasks: list[TaskView]
    state: JobState
    error: dict[str, object] | None
    resumed: int
    submitted: float
    updated: float
    started: float | None
    completed: float | None
    expiration: float | None


class Page(msgspec.Struct, kw_only=True):
    workflows: list[Workflow]
    total: int


def parse(document: bytes) -> Stored:
    """A submitted workflow document, checked as AWE checks it."""
    try:
        submitted = msgspec.json.decode(document, type=Document)
    except msgspec.ValidationError as exc:
        raise Invalid(f"invalid job script: {exc}") from None
    except msgspec.DecodeError as exc:
        raise Invalid(f"invalid job script: not JSON ({exc})") from None
    if not submitted.tasks:
        raise Invalid("(job.Init) invalid job script: task list empty")
    names = [t.taskid for t in submitted.tasks]
    tasks: list[Task] = []
    for task in submitted.tasks:
        if not task.taskid or "/" in task.taskid or "." in task.taskid:
            raise Invalid(f"invalid task id {task.taskid!r}: give a name without '/' or '.'")
        if names.count(task.taskid) > 1:
            raise Invalid(f"invalid job script: task id {task.taskid} is used twice")
        if not task.cmd.name:
            raise Invalid(f"invalid job script: task {task.taskid} has no cmd.name")
        if task.totalwork < 1:
            raise Invalid(f"invalid job script: task {task.taskid} has totalwork < 1")
        inputs = _listed(task.inputs)
        files = [i.filename for i in inputs if i.filename]
        for filename in files:
            if files.count(filename) > 1:
                raise Invalid(
                    f"invalid inputs: task {task.taskid} contains multiple inputs with "
                    f"filename={filename}"
                )
        tasks.append(
            Task(
                name=task.taskid,
                cmd=task.cmd,
                depends_on=list(task.dependsOn),
                totalwork=task.totalwork,
                maxworksize=task.maxworksize,
                inputs=inputs,
                outputs=_listed(task.outputs),
                predata=_listed(task.predata),
                userattr=task.userattr,
                clientgroups=task.clientgroups,
            )
        )
    for made in tasks:
        for upstream in _upstream(made):
            if upstream not in names:
                raise Invalid(
                    f"invalid job script: task {made.name} depends on {upstream}, which is not "
                    "a task of the job"
                )
            if upstream == made.name:
                raise Invalid(f"invalid job script: task {made.name} depends on itself")
    info = submitted.info
    if info.priority < 1:
        info = msgspec.structs.replace(info, priority=1)
    return Stored(info=info, tasks=tasks)


def _listed(io: list[IO] | dict[str, IO]) -> list[IO]:
    if isinstance(io, list):
        return io
    return [msgspec.structs.replace(v, filename=v.filename or k) for k, v in io.items()]


def _bare(task_id: str) -> str:
    """A task id as its task is named: `<jobid>_` prefixes dropped."""
    return task_id.rsplit("_", 1)[-1] if "_" in task_id else task_id


def _upstream(task: Task) -> list[str]:
    """The tasks that must complete first: `dependsOn` and the inputs' origins."""
    found = [_bare(d) for d in task.depends_on if d]
    found += [_bare(i.origin) for i in task.inputs if i.origin]
    return list(dict.fromkeys(found))


class Unit(msgspec.Struct, kw_only=True):
    """A workunit: a rank of a task of a workflow, run as one leaf."""

    workflow: Workflow
    task: TaskView
    rank: int
    job: int

    @property
    def id(self) -> str:
        return f"{self.workflow.id}_{self.task.task.name}_{self.rank}"


def parse_unit_id(text: str) -> tuple[str, str, int]:
    """(workflow id, task, rank) of a workunit id, plain or `base64:`."""
    plain = text
    if text.startswith("base64:"):
        try:
            plain = base64.b64decode(text[len("base64:") :], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise Invalid(f"error parsing workunit identifier: {text} (bad base64)") from None
    workflow, _, rest = plain.partition("_")
    task, _, rank = rest.rpartition("_")
    if not workflow or not task or not rank.isdigit():
        raise Invalid(
            f"error parsing workunit identifier: {text} (expected <jobid>_<taskid>_<rank>)"
        )
    try:
        uuid.UUID(workflow)
    except ValueError:
        raise Invalid(f"error parsing workunit identifier: {text} (bad job id)") from None
    return workflow, task, int(rank)


def _with_nodes(
    stored: Stored, host: str
) -> tuple[Stored, list[tuple[uuid.UUID, int | None, str]]]:
    """The document with a node for each output (and its host), and each input with an
    origin pointing at its upstream output's node; the nodes to create."""
    nodes: list[tuple[uuid.UUID, int | None, str]] = []
    made: dict[tuple[str, str], IO] = {}
    tasks: list[Task] = []
    for task in stored.tasks:
        outputs = []
        for output in task.outputs:
            node = uuid.uuid4()
            nodes.append((node, task.totalwork if task.totalwork > 1 else None, output.filename))
            placed = msgspec.structs.replace(output, node=str(node), host=host)
            made[(task.name, output.filename)] = placed
            outputs.append(placed)
        tasks.append(msgspec.structs.replace(task, outputs=outputs))
    for i, task in enumerate(tasks):
        inputs = []
        for io in task.inputs:
            upstream = made.get((_bare(io.origin), io.filename)) if io.origin else None
            if upstream is not None:
                io = msgspec.structs.replace(
                    io, node=upstream.node, host=host, url=f"{host}/node/{upstream.node}?download"
                )
            inputs.append(io)
        tasks[i] = msgspec.structs.replace(task, inputs=inputs)
    return msgspec.structs.replace(stored, tasks=tasks), nodes


def _downstream(workflow: "Workflow", start: str) -> set[str]:
    """`start` and every task that needs it, directly or not."""
    chosen = {start}
    grew = True
    while grew:
        grew = False
        for view in workflow.tasks:
            if view.task.name not in chosen and chosen & set(_upstream(view.task)):
                chosen.add(view.task.name)
                grew = True
    return chosen


async def _stored(conn: Conn, root: int) -> Stored:
    text: str = await conn.fetchval(Q["document"], root)
    return msgspec.json.decode(text, type=Stored)


def ranks(totalwork: int) -> list[int]:
    """The workunit ranks of a task: 0 alone, or 1..N."""
    return [0] if totalwork == 1 else list(range(1, totalwork + 1))


class Server(msgspec.Struct, frozen=True):
    """The workflow server's identity and its queue's state."""

    uuid: str
    queue_suspended: bool


class Workflows:
    def __init__(self, db: Database, jobs: Jobs, config: Config) -> None:
        self._db = db
        self._jobs = jobs
        self._config = config

    async def server(self) -> Server:
        async def work(conn: Conn) -> Server:
            row = await conn.fetchrow(Q["server"])
            assert row is not None, "migration 0013 made the row"
            return Server(row["uuid"], row["queue_suspended"])

        return await self._db.read(work)

    async def submit(self, stored: Stored, host: str) -> Workflow:
        """Create a workflow's tree in one transaction; the workflow as it now is. Each
        output gets a node of the node store at `host` (the face's base URL), and each
        input with an origin the node of that task's output of the same file name."""
        workflow_id = uuid.uuid4()
        stored, nodes = _with_nodes(stored, host)

        async def work(conn: Conn) -> int:
            info = stored.info
            # a workunit runs [awe] max_work_failure times at most, once with noretry
            retry = 0 if info.noretry else self._config.awe.max_work_failure - 1
            [root] = await self._jobs.insert(
                conn,
                0,
                [JobSpec(title=info.name or str(workflow_id), user=info.user or USER,
                         priority=info.priority)],
                meta={"workflow": str(workflow_id)},
            )  # fmt: skip
            await conn.execute(
                Q["insert_workflow"], root, workflow_id, msgspec.json.encode(stored).decode()
            )
            for node, parts, filename in nodes:
                await conn.fetchrow(NODES["create"], node, root, parts, filename)
            groups: dict[str, int] = {}
            for position, task in enumerate(stored.tasks):
                [group] = await self._jobs.insert(conn, root, [JobSpec(title=task.name, user=USER)])
                groups[task.name] = group
                await conn.execute(
                    Q["insert_task"], group, root, task.name, position, task.totalwork
                )
                command = " ".join(part for part in (task.cmd.name, task.cmd.args) if part)
                units = ranks(task.totalwork)
                leaves = await self._jobs.insert(
                    conn,
                    group,
                    [
                        JobSpec(title=f"{task.name}_{rank}", command=command, affinity=AFFINITY,
                                user=info.user or USER, retry=retry,
                                tags=placement_tags(info.clientgroups, task.cmd.name))
                        for rank in units
                    ],
                )  # fmt: skip
                for leaf, rank in zip(leaves, units, strict=True):
                    await conn.execute(Q["insert_unit"], leaf, root, task.name, rank)
            pairs = [
                (groups[task.name], [groups[u] for u in _upstream(task)])
                for task in stored.tasks
                if _upstream(task)
            ]
            if pairs:
                await self._jobs.depend(conn, pairs)
            return root

        await self._db.transact(work)
        return await self.get(str(workflow_id))

    # -- operations on a workflow, each one transaction ----------------------------------

    async def suspend(self, workflow_id: str) -> None:
        """Pause the workflow's tree: its running workunits stop."""

        async def work(conn: Conn) -> None:
            root, _ = await self._locked(conn, workflow_id)
            await self._jobs.pause_in(conn, [root])
            error = {"servernotes": "manually suspended", "status": "suspend"}
            await conn.execute(Q["mark"], root, msgspec.json.encode(error).decode(), 0, None)

        await self._db.transact(work)

    async def resume(self, workflow_id: str) -> None:
        """A suspended workflow goes on: failed workunits run again, done ones stay done."""

        async def work(conn: Conn) -> None:
            root, workflow = await self._locked(conn, workflow_id)
            if workflow.state != "suspend":
                raise Invalid(
                    f"fail to resume job: {workflow_id} (ResumeSuspendedJobByUser) job "
                    f"{workflow_id} is not in 'suspend' status"
                )
            await self._jobs.unpause_in(conn, [root])
            await self._jobs.reset_in(conn, [root], only_errors=True)
            await conn.execute(Q["mark"], root, None, 1, None)

        await self._db.transact(work)

    async def recompute(self, workflow_id: str, task: str | None) -> None:
        """Run again task `task` and every task downstream of it (every task when None),
        from a completed or suspended workflow."""

        async def work(conn: Conn) -> None:
            root, workflow = await self._locked(conn, workflow_id)
            if workflow.state not in ("completed", "suspend"):
                raise Invalid(
                    f"fail to recompute job: {workflow_id} (job state {workflow.state}: "
                    "only a completed or suspended job recomputes)"
                )
            groups = {r["name"]: r["group_id"] for r in await conn.fetch(Q["task_groups"], root)}
            if task is not None and task not in groups:
                raise Invalid(f"fail to recompute job: {workflow_id} (no task {task})")
            chosen = set(groups) if task is None else _downstream(workflow, task)
            await self._jobs.unpause_in(conn, [root])
            await self._jobs.reset_in(conn, [groups[name] for name in chosen])
            await conn.execute(Q["mark"], root, None, 1, None)

        await self._db.transact(work)

    async def set_info(
        self,
        workflow_id: str,
        *,
        clientgroups: str | None = None,
        pipeline: str | None = None,
        priority: int | None = None,
    ) -> None:
        """Change the workflow's info; its priority is its group's."""

        async def work(conn: Conn) -> None:
            root, _ = await self._locked(conn, workflow_id)
            stored = await _stored(conn, root)
            info = stored.info
            if clientgroups is not None:
                info = msgspec.structs.replace(info, clientgroups=clientgroups)
            if pipeline is not None:
                info = msgspec.structs.replace(info, pipeline=pipeline)
            if priority is not None:
                info = msgspec.structs.replace(info, priority=max(priority, 1))
                await self._jobs.edit_in(conn, root, JobEdit(priority=info.priority))
            stored = msgspec.structs.replace(stored, info=info)
            await conn.execute(Q["set_document"], root, msgspec.json.encode(stored).decode())

        await self._db.transact(work)

    async def delete(self, workflow_id: str, *, full: bool = False) -> None:
        """Mark the workflow deleted (its runs stop, nothing is dispatched), or remove it
        with its tree and nodes (`full`)."""

        async def work(conn: Conn) -> None:
            root, _ = await self._locked(conn, workflow_id)
            if full:
                await self._jobs.delete_in(conn, [root])
                return
            await self._jobs.pause_in(conn, [root])
            await conn.execute(Q["mark"], root, None, 0, "deleted")

        await self._db.transact(work)

    async def suspended(self) -> list[str]:
        page = await self.page(2**31, 0, "id", False, ("suspend",))
        return [w.id for w in page.workflows]

    async def _locked(self, conn: Conn, workflow_id: str) -> tuple[int, "Workflow"]:
        root: int | None = await conn.fetchval(Q["lock_workflow"], _uuid(workflow_id))
        if root is None:
            raise NotFound(f"job not found:{workflow_id}")
        [workflow] = await _read(conn, [_uuid(workflow_id)])
        return root, workflow

    async def unit(self, job: int) -> "Unit":
        """The workunit a leaf is, with its workflow."""

        async def work(conn: Conn) -> Unit:
            row = await conn.fetchrow(Q["unit_of_job"], job)
            if row is None:
                raise NotFound(f"job {job} is not a workunit")
            [workflow] = await _read(conn, [uuid.UUID(row["workflow"])])
            task = next(t for t in workflow.tasks if t.task.name == row["task"])
            return Unit(workflow=workflow, task=task, rank=row["rank"], job=job)

        return await self._db.read(work)

    async def leaf(self, unit_id: str) -> int:
        """The leaf of a workunit id (`<job>_<task>_<rank>`, or `base64:` of that)."""
        workflow, task, rank = parse_unit_id(unit_id)

        async def work(conn: Conn) -> int:
            found: int | None = await conn.fetchval(Q["job_of_unit"], workflow, task, rank)
            if found is None:
                raise NotFound(f"workunit {unit_id} does not exist")
            return found

        return await self._db.read(work)

    async def put_reports(self, job: int, reports: dict[str, str]) -> None:
        async def work(conn: Conn) -> None:
            for kind, text in reports.items():
                await conn.execute(Q["put_report"], job, kind, text)

        await self._db.transact(work)

    async def report(self, job: int, kind: str) -> str | None:
        async def work(conn: Conn) -> str | None:
            text: str | None = await conn.fetchval(Q["report"], job, kind)
            return text

        return await self._db.read(work)

    async def get(self, workflow_id: str, *, job: int | None = None) -> Workflow:
        async def work(conn: Conn) -> Workflow:
            found = await _read(conn, [_uuid(workflow_id)])
            if not found:
                raise NotFound(f"job not found:{workflow_id}")
            return found[0]

        return await self._db.read(work)

    async def page(
        self, limit: int, offset: int, order: str, descending: bool, states: Sequence[str]
    ) -> Page:
        """A page of workflows, in `order` (a field path such as `info.submittime`)."""

        async def work(conn: Conn) -> Page:
            ids = [r["id"] for r in await conn.fetch(Q["all_ids"])]
            every = await _read(conn, ids)
            if states:
                every = [w for w in every if w.state in states]
            every.sort(key=lambda w: _sort_key(w, order), reverse=descending)
            return Page(workflows=every[offset : offset + limit], total=len(every))

        return await self._db.read(work)


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise NotFound(f"job not found:{text}") from None


_ORDERS: dict[str, Callable[[Workflow], "SupportsRichComparison"]] = {
    "info.submittime": lambda w: w.submitted,
    "updatetime": lambda w: w.updated,
    "info.priority": lambda w: w.info.priority,
    "info.name": lambda w: w.info.name,
    "state": lambda w: w.state,
    "id": lambda w: w.id,
}


def _sort_key(workflow: Workflow, order: str) -> "SupportsRichComparison":
    key = _ORDERS.get(order)
    if key is None:
        raise Invalid(f"cannot order jobs by {order!r}; use one of {', '.join(_ORDERS)}")
    return key(workflow)


class _TaskRow(msgspec.Struct):
    group_id: int
    name: str
    state: str
    paused: bool
    finished: int
    total: int
    started: float | None
    completed: float | None


async def _read(conn: Conn, ids: Sequence[uuid.UUID]) -> list[Workflow]:
    rows = await conn.fetch(Q["workflows"], list(ids))
    found: list[Workflow] = []
    for row in rows:
        stored = msgspec.json.decode(row["document"], type=Stored)
        tasks = {t.name: t for t in msgspec.json.decode(row["tasks"], type=list[_TaskRow])}
        views = [_task_view(task, tasks[task.name], row["paused"]) for task in stored.tasks]
        found.append(
            Workflow(
                id=str(row["id"]),
                job=row["job_id"],
                info=stored.info,
                tasks=views,
                state=_job_state(row["kept_state"], row["state"], row["paused"], views),
                error=msgspec.json.decode(row["error"]) if row["error"] else None,
                resumed=row["resumed"],
                submitted=row["submitted"],
                updated=row["updated"],
                started=min((v.started for v in views if v.started), default=None),
                completed=row["completed"],
                expiration=row["expiration"],
            )
        )
    return found


def _task_view(task: Task, row: _TaskRow, job_paused: bool) -> TaskView:
    state: TaskState
    if row.state == "FINISHED":
        state = "completed"
    elif row.state == "ERROR" or row.paused or job_paused:
        state = "suspend"
    elif row.state == "WORKING" or row.finished:
        state = "in-progress"
    elif row.state == "PENDING":
        state = "pending"
    else:
        state = "queued"
    return TaskView(
        task=task,
        state=state,
        remainwork=row.total - row.finished,
        started=row.started,
        completed=row.completed if state == "completed" else None,
    )


def _job_state(kept: str | None, tree: str, paused: bool, tasks: list[TaskView]) -> JobState:
    if kept == "deleted":
        return "deleted"
    if kept == "failed-permanent":
        return "failed-permanent"
    if tree == "FINISHED":
        return "completed"
    if paused or tree == "ERROR":
        return "suspend"
    if any(t.state in ("in-progress", "completed") for t in tasks):
        return "in-progress"
    return "queued"


def placement_tags(clientgroups: str, app: str) -> list[str]:
    """A workunit's placement (core.placement): the clients of one of `clientgroups`
    (comma-separated; any client when empty) that run `app`, and never again a client
    that failed it (AWE's skip list)."""
    groups = [g.strip() for g in clientgroups.split(",") if g.strip()]
    return [RETRY_ELSEWHERE, app_tag(app), *(pool_tag(g) for g in groups)]
