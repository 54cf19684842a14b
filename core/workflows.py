"""Workflows: jobs of tasks, each task a group of workunits (AWE's jobs, docs/awe.md).

A workflow is a root group, each task a child group and each workunit a leaf: `totalwork`
1 gives one leaf of rank 0, N > 1 gives N leaves of ranks 1..N. A task's `dependsOn` and
its inputs' `origin` are dependencies between task groups, which hold back every leaf
below. States are read from the tree; only `deleted` and `failed-permanent` are kept
beside it. The rules that read them are SQL (migration 0015: `workflow_view`,
`workflow_task_state`, `workflow_unit_state`), so that a listing filters, orders and counts
by state in PostgreSQL, with the same answer as a single read.
"""

import base64
import binascii
import datetime
import functools
import json
import re
import time
import uuid
from collections.abc import Sequence
from typing import Annotated, Final, Literal

import asyncpg
import msgspec

from core.config import Config
from core.db import Conn, Database
from core.errors import Invalid, NotFound
from core.jobs import Jobs
from core.models import JobEdit, JobSpec
from core.placement import POOL_TAG, RETRY_ELSEWHERE, app_tag, pool_tag
from core.secrets import Secrets
from core.sql import Queries

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
    # the priority of the job's group, a 32-bit integer there
    priority: Annotated[int, msgspec.Meta(le=2**31 - 1)] = 1
    noretry: bool = False
    userattr: dict[str, str] = msgspec.field(default_factory=dict)
    description: str = ""
    tracking: bool = False


class _TaskFields(msgspec.Struct, kw_only=True):
    """What a task is in a submitted document and in an imported job alike."""

    dependsOn: list[str] = msgspec.field(default_factory=list)
    totalwork: int = 1
    maxworksize: int = 0
    inputs: list[IO] | dict[str, IO] = msgspec.field(default_factory=list)
    outputs: list[IO] | dict[str, IO] = msgspec.field(default_factory=list)
    predata: list[IO] | dict[str, IO] = msgspec.field(default_factory=list)
    userattr: dict[str, str] = msgspec.field(default_factory=dict)
    clientgroups: str = ""


class TaskDocument(_TaskFields, kw_only=True):
    taskid: str
    cmd: Command


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
    # a data token is set (never shown: `Workflows.datatoken`)
    auth: bool = False


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
    return _checked(submitted)


def _checked(submitted: Document) -> Stored:
    """A document's tasks checked as AWE checks them, their IO as lists."""
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


# -- listings ----------------------------------------------------------------------------

# `order` field paths, and the order_* fragments of workflows.sql that sort by them
ORDERS: Final = {
    "info.submittime": "submitted",
    "info.completedtime": "completed",
    "updatetime": "updated",
    "info.priority": "priority",
    "info.name": "name",
    "state": "state",
    "id": "id",
}
FieldKind = Literal["text", "integer", "boolean"]
# the info fields a listing filters on (`info.userattr.<name>` too, as text)
INFO_FIELDS: Final[dict[str, FieldKind]] = {
    "name": "text",
    "xref": "text",
    "service": "text",
    "project": "text",
    "user": "text",
    "pipeline": "text",
    "clientgroups": "text",
    "description": "text",
    "priority": "integer",
    "noretry": "boolean",
    "tracking": "boolean",
}
# what `distinct=` takes: AWE's info_indexes (`GET /`)
INFO_INDEXES: Final = (
    "name", "submittime", "completedtime", "pipeline", "clientgroups", "project", "service",
    "user", "priority", "userattr.submission",
)  # fmt: skip
JOB_STATES: Final = ("queued", "in-progress", "completed", "suspend", "failed-permanent", "deleted")
# the states a workflow has while it is neither done nor deleted: workflows_live holds them
LIVE_STATES: Final = frozenset({"queued", "in-progress", "suspend"})


class Listing(msgspec.Struct, frozen=True, kw_only=True):
    """What a listing of workflows selects and how it orders them."""

    limit: int = 25
    offset: int = 0
    # a key of ORDERS
    order: str = "info.submittime"
    descending: bool = True
    # the states a workflow must be in (None: any)
    states: frozenset[str] | None = None
    # (field path, accepted values): `id`, `state`, `info.<field>` or
    # `info.userattr.<name>`; a workflow matches every field with any of its values
    fields: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # a time range [start, end) its submission or its completion falls in
    start: float | None = None
    end: float | None = None


class _Where(msgspec.Struct, frozen=True):
    """A listing as the bound parameters of `listing_where`."""

    live: bool
    params: tuple[object, ...]


def _where(listing: Listing) -> _Where | None:
    """The parameters of the listing's filters; None when no workflow can match."""
    states = listing.states
    ids: list[uuid.UUID] | None = None
    predicates: list[str] = []
    for path, values in listing.fields:
        if path == "state":
            asked = frozenset(values) & frozenset(JOB_STATES)
            states = asked if states is None else states & asked
        elif path == "id":
            found = [u for u in map(_maybe_uuid, values) if u is not None]
            ids = found if ids is None else [u for u in ids if u in found]
        else:
            predicate = _predicate(path, values)
            if predicate is None:
                return None
            predicates.append(predicate)
    if states is not None:
        # AWE's transient `queuing` is accepted and never shown: it matches nothing here
        states = states & frozenset(JOB_STATES)
    if (states is not None and not states) or (ids is not None and not ids):
        return None
    dates = listing.start is not None or listing.end is not None
    return _Where(
        live=states is not None and states <= LIVE_STATES,
        params=(
            sorted(states) if states is not None else None,
            " && ".join(predicates) or None,
            ids,
            (listing.start if listing.start is not None else float("-inf")) if dates else None,
            (listing.end if listing.end is not None else float("inf")) if dates else None,
        ),
    )


def check_field(path: str) -> None:
    """`path` is a field a listing filters on, or `Invalid` says which it is not."""
    if path in ("id", "state"):
        return
    parts = path.split(".")
    if parts[0] == "info" and len(parts) == 2 and parts[1] in INFO_FIELDS:
        return
    if parts[:2] == ["info", "userattr"] and len(parts) == 3 and parts[2]:
        return
    raise Invalid(
        f"cannot query jobs by {path!r}: use id, state, info.<field> (one of "
        f"{', '.join(INFO_FIELDS)}) or info.userattr.<name>"
    )


def _predicate(path: str, values: Sequence[str]) -> str | None:
    """A jsonpath predicate over the info that holds when the field has one of `values`
    (None when none of them can be its value). Keys and values are JSON literals, which
    jsonpath reads as they are: nothing from the request is jsonpath syntax."""
    check_field(path)
    keys = path.split(".")[1:]
    kind = INFO_FIELDS.get(keys[0], "text") if len(keys) == 1 else "text"
    literals: list[str] = []
    for value in dict.fromkeys(values):
        if "\x00" in value:
            # PostgreSQL keeps no NUL in text: no info holds it
            continue
        if kind == "text":
            literals.append(json.dumps(value))
        elif kind == "integer" and re.fullmatch(r"[+-]?[0-9]{1,18}", value):
            literals.append(str(int(value)))
        elif kind == "boolean" and value in ("true", "false"):
            literals.append(value)
    if not literals:
        return None
    field = "$" + "".join(f".{json.dumps(k)}" for k in keys)
    return "(" + " || ".join(f"{field} == {literal}" for literal in literals) + ")"


def _maybe_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


@functools.cache
def _composed(query: str, live: bool, order: str = "") -> str:
    """A listing query with its fragments in place (see workflows.sql)."""
    where = Q["listing_where"].replace("/*scope*/", Q["listing_live"] if live else "true")
    sql = Q[query].replace("/*where*/", where)
    return sql.replace("/*order*/", Q[order]) if order else sql


_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def moment(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 time, or of a day's UTC midnight
    (`YYYY-MM-DD`); ValueError for anything else."""
    if _DAY.fullmatch(text):
        day = datetime.date.fromisoformat(text)
        return datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC).timestamp()
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(text)
    fraction = match.group(1) or ""
    # Python reads six digits of a fraction at most, Go nine
    trimmed = text.replace(fraction, fraction[:7], 1) if fraction else text
    try:
        return datetime.datetime.fromisoformat(trimmed.replace("Z", "+00:00")).timestamp()
    except OverflowError:
        # year 1 with an offset east of UTC: before the first day Python counts
        raise ValueError(text) from None


# -- expiry, import ----------------------------------------------------------------------

_EXPIRATION = re.compile(r"([0-9]+)(M|H|D)")
_UNIT_SECONDS: Final = {"M": 60, "H": 3600, "D": 86400}
# the latest expiration the job's views can show (RFC 3339 has four-digit years)
_LAST_MOMENT: Final = datetime.datetime(9999, 12, 31, tzinfo=datetime.UTC).timestamp()


class ImportInfo(Info, kw_only=True):
    submittime: str = ""
    completedtime: str = ""


class ImportTask(_TaskFields, kw_only=True):
    """A task as a job document shows it (`GET /job/<id>`)."""

    task_name: str = ""
    taskid: str = ""
    cmd: Command = msgspec.field(default_factory=Command)


class ImportJob(msgspec.Struct, kw_only=True):
    id: str = ""
    info: ImportInfo | None = None
    tasks: list[ImportTask] = msgspec.field(default_factory=list)
    state: str = ""


class Imported(msgspec.Struct, frozen=True, kw_only=True):
    """A completed job from another server, to keep under its id."""

    id: uuid.UUID
    stored: Stored
    submitted: float | None
    completed: float | None


def parse_import(document: bytes) -> Imported:
    """A whole job document (as `GET /job/<id>` shows one) to import, checked as AWE
    checks it: completed, with an id, an info and tasks."""
    try:
        job = msgspec.json.decode(document, type=ImportJob)
    except msgspec.ValidationError as exc:
        raise Invalid(f"invalid job document: {exc}") from None
    except msgspec.DecodeError as exc:
        raise Invalid(f"invalid job document: not JSON ({exc})") from None
    if job.state != "completed":
        raise Invalid("invalid job import: must be completed")
    if not job.id:
        raise Invalid("missing job id")
    if job.info is None:
        raise Invalid("missing job info")
    if not job.tasks:
        raise Invalid("invalid job document: task list empty")
    workflow_id = _maybe_uuid(job.id)
    if workflow_id is None:
        raise Invalid(f"invalid job import: the job id {job.id!r} is not a UUID")
    prefix = f"{job.id}_"
    tasks = [
        TaskDocument(
            taskid=t.task_name or t.taskid.removeprefix(prefix),
            cmd=t.cmd,
            dependsOn=t.dependsOn,
            totalwork=t.totalwork,
            maxworksize=t.maxworksize,
            inputs=t.inputs,
            outputs=t.outputs,
            predata=t.predata,
            userattr=t.userattr,
            clientgroups=t.clientgroups,
        )
        for t in job.tasks
    ]
    info = msgspec.convert(msgspec.to_builtins(job.info), Info)
    stored = _checked(Document(info=info, tasks=tasks))
    return Imported(
        id=workflow_id,
        stored=stored,
        submitted=_time_or_none(job.info.submittime),
        completed=_time_or_none(job.info.completedtime),
    )


def _time_or_none(text: str) -> float | None:
    """A time of an imported document; None for Go's zero time or none readable."""
    try:
        seconds = moment(text)
    except ValueError:
        return None
    return seconds if seconds > 0 else None


# -- the queue ---------------------------------------------------------------------------


class QueueCounts(msgspec.Struct, frozen=True, kw_only=True):
    """AWE's queue status (`GET /queue`): its jobs, tasks, workunits and clients."""

    jobs_active: int
    jobs_suspended: int
    tasks_total: int
    tasks_queuing: int
    tasks_in_progress: int
    tasks_pending: int
    tasks_completed: int
    tasks_suspended: int
    tasks_failed: int
    units_queuing: int
    units_checkout: int
    units_suspended: int
    clients_total: int
    clients_busy: int
    clients_suspended: int


UnitState = Literal["queued", "checkout", "suspend"]


class QueuedUnit(msgspec.Struct, frozen=True, kw_only=True):
    """A workunit in the work queue: its state there and the client running it."""

    unit: Unit
    state: UnitState
    client: str


class ClientState(msgspec.Struct, frozen=True, kw_only=True):
    """A client not lost, as it registered, and what it does now."""

    name: str
    profile: dict[str, object]
    busy: bool
    suspended: bool


# what the last run of each workunit reported: (task, rank) -> kind -> text
Reports = dict[tuple[str, int], dict[str, str]]


class Server(msgspec.Struct, frozen=True):
    """The workflow server's identity and its queue's state."""

    uuid: str
    queue_suspended: bool
    # what `GET /logger?debug` reports (0 to 3)
    debug_level: int = 0


class Workflows:
    def __init__(self, db: Database, jobs: Jobs, config: Config) -> None:
        self._db = db
        self._jobs = jobs
        self._config = config
        # data tokens are kept encrypted, with the key of the job types' secret settings
        self._secrets = Secrets(config.server.secret_key_path())

    async def server(self) -> Server:
        async def work(conn: Conn) -> Server:
            row = await conn.fetchrow(Q["server"])
            assert row is not None, "migration 0013 made the row"
            return Server(row["uuid"], row["queue_suspended"], row["debug_level"])

        return await self._db.read(work)

    async def set_queue_suspended(self, suspended: bool) -> None:
        """Suspend the work queue (checkouts are refused) or resume it."""
        await self._db.transact(lambda conn: conn.execute(Q["set_queue_suspended"], suspended))

    async def set_debug_level(self, level: int) -> None:
        if not 0 <= level <= 3:
            raise Invalid(f"invalid debug level: {level} (an integer from 0 to 3)")
        await self._db.transact(lambda conn: conn.execute(Q["set_debug_level"], level))

    async def submit(self, stored: Stored, host: str, *, token: str | None = None) -> Workflow:
        """Create a workflow's tree in one transaction; the workflow as it now is. Each
        output gets a node of the node store at `host` (the face's base URL), and each
        input with an origin the node of that task's output of the same file name.
        `token` is the job's data token, if it has one."""
        workflow_id = uuid.uuid4()
        stored, nodes = _with_nodes(stored, host)

        async def work(conn: Conn) -> None:
            root = await self._create(conn, workflow_id, stored, token)
            for node, parts, filename in nodes:
                await conn.fetchrow(NODES["create"], node, root, parts, filename)

        await self._db.transact(work)
        return await self.get(str(workflow_id))

    async def import_job(self, imported: Imported) -> Workflow:
        """Keep a completed job of another server under its own id: its tree is made
        done, nothing of it is ever queued, and its outputs keep the nodes they name."""

        async def work(conn: Conn) -> None:
            if await conn.fetchval(Q["exists"], imported.id):
                raise Invalid(f"invalid job import: job {imported.id} already exists")
            root = await self._create(conn, imported.id, imported.stored, None)
            await conn.execute(Q["finish_leaves"], root)
            now = time.time()
            await conn.execute(
                Q["set_times"],
                root,
                imported.submitted or now,
                imported.completed or imported.submitted or now,
            )

        await self._db.transact(work)
        return await self.get(str(imported.id))

    async def _create(
        self, conn: Conn, workflow_id: uuid.UUID, stored: Stored, token: str | None
    ) -> int:
        """The tree of a workflow: a root group, a group per task, a leaf per workunit,
        the tasks' dependencies; the root."""
        info = stored.info
        limit = self._config.limits.max_children
        for task in stored.tasks:
            # refused before its leaves are made, not after
            if task.totalwork > limit:
                raise Invalid(
                    f"invalid job script: task {task.name} has totalwork {task.totalwork}; "
                    f"a task holds {limit} workunits at most"
                )
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
        if token:
            await conn.execute(Q["set_datatoken"], root, self._seal(token))
        groups: dict[str, int] = {}
        for position, task in enumerate(stored.tasks):
            [group] = await self._jobs.insert(
                conn, root, [JobSpec(title=task.name, user=info.user or USER)]
            )
            groups[task.name] = group
            await conn.execute(Q["insert_task"], group, root, task.name, position, task.totalwork)
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

    def _seal(self, token: str) -> bytes:
        sealed = self._secrets.seal({"datatoken": token})
        assert sealed is not None, "a token is not empty"
        return sealed

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
            # their outputs go back to no file, so that no downstream task and no reader
            # takes the bytes of the run before for those of the run again
            outputs = [
                io.node for view in workflow.tasks if view.task.name in chosen
                for io in view.task.outputs
            ]  # fmt: skip
            await conn.execute(NODES["empty"], _node_ids(outputs))
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
                pools = [t for t in placement_tags(clientgroups, "") if t.startswith(POOL_TAG)]
                await conn.execute(Q["set_pools"], root, pools)
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
        """The ids of the suspended workflows, oldest first."""

        async def work(conn: Conn) -> list[str]:
            return [str(r["id"]) for r in await conn.fetch(Q["suspended"])]

        return await self._db.read(work)

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
        return await self._db.read(lambda conn: self._read_one(conn, workflow_id))

    async def page(self, listing: Listing) -> Page:
        """A page of the workflows `listing` selects, in its order, and how many it
        selects in all. Filtered, ordered and counted by PostgreSQL (workflows.sql)."""
        sort = ORDERS.get(listing.order)
        if sort is None:
            raise Invalid(f"cannot order jobs by {listing.order!r}; use one of {', '.join(ORDERS)}")
        where = _where(listing)
        if where is None:
            return Page(workflows=[], total=0)
        order = f"order_{sort}_{'desc' if listing.descending else 'asc'}"
        page_sql = _composed("page", where.live, order)
        count_sql = _composed("count", where.live)

        async def work(conn: Conn) -> Page:
            rows = await conn.fetch(page_sql, *where.params, listing.limit, listing.offset)
            total: int = await conn.fetchval(count_sql, *where.params)
            ids = [r["id"] for r in rows]
            place = {str(i): n for n, i in enumerate(ids)}
            found = sorted(await _read(conn, ids), key=lambda w: place[w.id])
            return Page(workflows=found, total=total)

        return await self._db.read(work)

    async def distinct(self, listing: Listing, field: str) -> list[object]:
        """The values the workflows `listing` selects have in `info.<field>`, `field`
        one of INFO_INDEXES; times as seconds since the epoch."""
        if field not in INFO_INDEXES:
            raise Invalid(f"unable to run distinct query on non-indexed info field: {field}")
        where = _where(listing)
        if where is None:
            return []

        async def work(conn: Conn) -> list[object]:
            if field in ("submittime", "completedtime"):
                sql = _composed("distinct_time", where.live)
                rows = await conn.fetch(sql, *where.params, field == "submittime")
                return [r["value"] for r in rows]
            sql = _composed("distinct_info", where.live)
            rows = await conn.fetch(sql, *where.params, field.split("."))
            return [msgspec.json.decode(r["value"]) for r in rows]

        return await self._db.read(work)

    async def position(self, workflow_id: str) -> int:
        """The place of a queued or in-progress workflow in the dispatch order among the
        queued and in-progress ones (1: the next served)."""

        async def work(conn: Conn) -> int:
            workflow = await self._read_one(conn, workflow_id)
            if workflow.state not in ("queued", "in-progress"):
                raise Invalid(f"job is not queued or in-progress, job state:{workflow.state}")
            place: int = await conn.fetchval(Q["position"], workflow.job)
            return place

        return await self._db.read(work)

    async def reports(self, workflow_id: str) -> tuple[Workflow, Reports]:
        """The workflow and the reports its workunits' last runs carried, by (task,
        rank) and kind (stdout, stderr, worknotes)."""

        async def work(conn: Conn) -> tuple[Workflow, Reports]:
            workflow = await self._read_one(conn, workflow_id)
            found: Reports = {}
            for row in await conn.fetch(Q["unit_reports"], workflow.job):
                found.setdefault((row["task"], row["rank"]), {})[row["kind"]] = row["text"]
            return workflow, found

        return await self._db.read(work)

    async def set_expiration(self, workflow_id: str, text: str) -> None:
        """Expire the workflow `text` (`<N>M`, `<N>H` or `<N>D`) from now: the expiry
        pass removes it then if it is completed or deleted."""
        match = _EXPIRATION.fullmatch(text)
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)] if match else None
        if seconds is None or time.time() + seconds > _LAST_MOMENT:
            why = "is invalid" if seconds is None else "is too far ahead"
            raise Invalid(
                f"failed to set the expiration for job: {workflow_id} expiration format "
                f"'{text}' {why}"
            )

        async def work(conn: Conn) -> None:
            root, _ = await self._locked(conn, workflow_id)
            await conn.execute(Q["set_expiration"], root, time.time() + seconds)

        await self._db.transact(work)

    async def set_token(self, workflow_id: str, token: str) -> None:
        """A new data token for the workflow (kept encrypted; `info.auth` says so)."""
        if not token:
            raise Invalid(f"fail to set the data token for job: {workflow_id} (it is empty)")

        async def work(conn: Conn) -> None:
            root, _ = await self._locked(conn, workflow_id)
            await conn.execute(Q["set_datatoken"], root, self._seal(token))

        await self._db.transact(work)

    async def datatoken(self, job: int) -> str:
        """The data token of the workflow job `job` (any job of its tree: the root, a
        task's group, a workunit's leaf) belongs to; "" when it has none."""

        async def work(conn: Conn) -> asyncpg.Record | None:
            return await conn.fetchrow(Q["datatoken"], job)

        row = await self._db.read(work)
        if row is None:
            raise NotFound(f"job {job} is not part of a workflow")
        sealed: bytes | None = row["datatoken"]
        return self._secrets.open(sealed).get("datatoken", "")

    async def expire(self, batch: int = 100) -> int:
        """Remove the completed and deleted workflows whose expiration has passed, with
        their trees, reports and nodes (as `delete(full=True)`); how many. One server at
        a time: another's pass running, this one does nothing."""
        removed = 0
        while True:

            async def work(conn: Conn) -> tuple[int, int] | None:
                if not await conn.fetchval(Q["try_expiry_lock"]):
                    return None
                found = [str(r["id"]) for r in await conn.fetch(Q["expired"], batch)]
                roots: list[int] = []
                for workflow_id in found:
                    try:
                        root, workflow = await self._locked(conn, workflow_id)
                    except NotFound:
                        continue
                    # it may have changed since it was found (recomputed, given more time)
                    expiration = workflow.expiration
                    if (
                        workflow.state in ("completed", "deleted")
                        and expiration is not None
                        and expiration < time.time()
                    ):
                        roots.append(root)
                if roots:
                    await self._jobs.delete_in(conn, roots)
                return len(found), len(roots)

            done = await self._db.transact(work)
            if done is None:
                return removed
            removed += done[1]
            if done[0] < batch:
                return removed

    # -- the queue -----------------------------------------------------------------------

    async def queue_counts(self) -> QueueCounts:
        async def work(conn: Conn) -> QueueCounts:
            row = await conn.fetchrow(Q["queue_counts"])
            assert row is not None, "an aggregate answers one row"
            return msgspec.convert(dict(row), QueueCounts)

        return await self._db.read(work)

    async def live(self) -> list[Workflow]:
        """The queued, in-progress and suspended workflows, oldest first."""

        async def work(conn: Conn) -> list[Workflow]:
            ids = [r["id"] for r in await conn.fetch(Q["live_ids"])]
            return sorted(await _read(conn, ids), key=lambda w: (w.submitted, w.job))

        return await self._db.read(work)

    async def queued_units(self, states: Sequence[UnitState]) -> list[QueuedUnit]:
        """The workunits of the live workflows in the work queue's `states`."""

        async def work(conn: Conn) -> list[QueuedUnit]:
            rows = await conn.fetch(Q["queue_units"], list(states))
            ids = list(dict.fromkeys(uuid.UUID(r["workflow"]) for r in rows))
            flows = {w.id: w for w in await _read(conn, ids)}
            found: list[QueuedUnit] = []
            for row in rows:
                workflow = flows.get(row["workflow"])
                if workflow is None:
                    continue
                task = next(t for t in workflow.tasks if t.task.name == row["task"])
                unit = Unit(workflow=workflow, task=task, rank=row["rank"], job=row["job_id"])
                client = row["worker"] if row["state"] == "checkout" else ""
                found.append(QueuedUnit(unit=unit, state=row["state"], client=client))
            return found

        return await self._db.read(work)

    async def group_queue(self, group: str) -> list[Workflow]:
        """The queued and in-progress workflows a client of `group` may take work from,
        in dispatch order."""

        async def work(conn: Conn) -> list[Workflow]:
            ids = [r["id"] for r in await conn.fetch(Q["group_queue"], group)]
            place = {str(i): n for n, i in enumerate(ids)}
            return sorted(await _read(conn, ids), key=lambda w: place[w.id])

        return await self._db.read(work)

    async def client_states(self) -> list[ClientState]:
        async def work(conn: Conn) -> list[ClientState]:
            return [
                ClientState(
                    name=r["name"],
                    profile=msgspec.json.decode(r["profile"], type=dict[str, object]),
                    busy=r["state"] == "WORKING",
                    suspended=not r["active"],
                )
                for r in await conn.fetch(Q["client_states"])
            ]

        return await self._db.read(work)

    async def _read_one(self, conn: Conn, workflow_id: str) -> Workflow:
        found = await _read(conn, [_uuid(workflow_id)])
        if not found:
            raise NotFound(f"job not found:{workflow_id}")
        return found[0]


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise NotFound(f"job not found:{text}") from None


class _TaskRow(msgspec.Struct):
    name: str
    state: TaskState
    finished: int
    total: int
    started: float | None


async def _read(conn: Conn, ids: Sequence[uuid.UUID]) -> list[Workflow]:
    rows = await conn.fetch(Q["workflows"], list(ids))
    found: list[Workflow] = []
    for row in rows:
        stored = msgspec.json.decode(row["document"], type=Stored)
        tasks = {t.name: t for t in msgspec.json.decode(row["tasks"], type=list[_TaskRow])}
        views = [_task_view(task, tasks[task.name]) for task in stored.tasks]
        error = msgspec.json.decode(row["error"]) if row["error"] else None
        if row["job_state"] == "failed-permanent" and isinstance(error, dict):
            # the task whose workunit failed for good is failed-permanent too, as AWE
            # marks it; its group is merely in ERROR
            failed = str(error.get("taskfailed", "")).partition("_")[2]
            views = [
                msgspec.structs.replace(v, state="failed-permanent") if v.task.name == failed else v
                for v in views
            ]
        found.append(
            Workflow(
                id=str(row["id"]),
                job=row["job_id"],
                info=stored.info,
                tasks=views,
                state=row["job_state"],
                error=error,
                resumed=row["resumed"],
                submitted=row["submitted"],
                updated=row["updated"],
                started=min((v.started for v in views if v.started), default=None),
                completed=row["completed"],
                expiration=row["expiration"],
                auth=row["auth"],
            )
        )
    return found


def _task_view(task: Task, row: _TaskRow) -> TaskView:
    return TaskView(
        task=task,
        state=row.state,
        remainwork=row.total - row.finished,
        started=row.started,
        completed=None,
    )


def placement_tags(clientgroups: str, app: str) -> list[str]:
    """A workunit's placement (core.placement): the clients of one of `clientgroups`
    (comma-separated; any client when empty) that run `app`, and never again a client
    that failed it (AWE's skip list)."""
    groups = [g.strip() for g in clientgroups.split(",") if g.strip()]
    return [RETRY_ELSEWHERE, app_tag(app), *(pool_tag(g) for g in groups)]


def _node_ids(nodes: Sequence[str]) -> list[uuid.UUID]:
    """The ids of the node store among `nodes` (an imported job's outputs may name the
    nodes of another store, or none: `-`)."""
    found = []
    for node in nodes:
        try:
            found.append(uuid.UUID(node))
        except ValueError:
            continue
    return found
