"""The core model as msgspec Structs.

The job and worker shapes are Coalition's: it is the core's native shape, so the Coalition
face encodes these Structs as they are. Other faces translate from them.
"""

from typing import Annotated, Literal, TypeAlias

import msgspec
from msgspec import UNSET, UnsetType

Int32 = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]
# a resource a job needs and a worker offers (cpus, mem in MB, gpus, a licence), and how much
ResourceName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern="^[A-Za-z0-9_-]+$")]
Amount = Annotated[float, msgspec.Meta(ge=0, le=1e15)]
# the pool a worker belongs to ("" for none), and an application it runs ("*": any), as the
# jobs' `pool:` and `app:` tags name them (core.placement); no ',' in an application, which
# `corral worker --apps` separates with it
PoolName = Annotated[str, msgspec.Meta(max_length=255)]
AppName = Annotated[str, msgspec.Meta(min_length=1, max_length=255, pattern="^[^,]+$")]
Count = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
JobId = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]

JobState = Literal["WAITING", "PENDING", "WORKING", "FINISHED", "ERROR", "PAUSED"]
WorkerState = Literal["WAITING", "WORKING", "TIMEOUT"]
EventState = Literal["WORKING", "FINISHED", "ERROR", "TIMEOUT", "CANCELED"]

# Fields a client may echo back from a job it read (the legacy client sends every field);
# they are accepted and ignored, since the server owns them.
Echoed: TypeAlias = int | float | str | None

# A job's environment: `K=V` lines, or a JSON object of names to values.
Environment: TypeAlias = str | dict[str, str]


class Job(msgspec.Struct, gc=False):
    """A job as every listing shows it. A job with an empty `command` is a group.

    The fields are in the order of the `job_list` view's columns: a listing builds each job
    from its row by position. Untracked by the garbage collector (`gc=False`: it holds no
    cycles), so that 50,000 of them do not set off collections while a listing is built.
    """

    id: int
    parent: int
    title: str
    command: str
    dir: str
    environment: str
    state: JobState
    worker: str
    start_time: int
    duration: int
    ping_time: int
    run_done: int
    retry: int
    timeout: int
    priority: int
    affinity: str
    user: str
    finished: int
    errors: int
    working: int
    total: int
    total_finished: int
    total_errors: int
    total_working: int
    url: str
    progress: float
    progress_pattern: str
    # the last run's exit code (None while it runs, before any run, after a reset, and
    # when it ended without exiting: paused, lost, timed out) and why it ended other than
    # by its own exit
    exit_code: int | None
    reason: str
    # only on a single job: the ids it depends on
    dependencies: list[int] | UnsetType = UNSET


class _JobEchoes(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The fields a client may echo back from a job it read: accepted, ignored."""

    id: Echoed = None
    worker: Echoed = None
    start_time: Echoed = None
    duration: Echoed = None
    ping_time: Echoed = None
    run_done: Echoed = None
    finished: Echoed = None
    errors: Echoed = None
    working: Echoed = None
    total: Echoed = None
    total_finished: Echoed = None
    total_errors: Echoed = None
    total_working: Echoed = None
    progress: Echoed = None
    exit_code: Echoed = None
    reason: Echoed = None


class JobFields(_JobEchoes, forbid_unknown_fields=True, kw_only=True):
    """A job to create, but for its dependencies: what a face's own body for a new job
    shares with the core's (Coalition's web page sends its dependencies as text)."""

    parent: JobId = 0
    title: str = ""
    command: str = ""
    dir: str = ""
    environment: Environment = ""
    # PAUSED creates the job paused; any other state name is accepted and ignored (a client
    # may send back a job it read), since the server decides whether a job waits or runs
    state: JobState = "WAITING"
    paused: bool | int = False
    retry: Count = 0
    timeout: Count = 0
    priority: Int32 = 1000
    affinity: str = ""
    user: str = ""
    url: str = ""
    progress_pattern: str = ""
    tags: list[str] = msgspec.field(default_factory=list)
    # what a run needs of its worker; workers offering resources take it only where it fits
    resources: dict[ResourceName, Amount] = msgspec.field(default_factory=dict)


class JobSpec(JobFields, forbid_unknown_fields=True, kw_only=True):
    """A job to create."""

    dependencies: list[JobId] = msgspec.field(default_factory=list)


class JobEditFields(_JobEchoes, forbid_unknown_fields=True, kw_only=True):
    """Changes to one job but for its dependencies (see JobFields)."""

    parent: JobId | UnsetType = UNSET
    title: str | UnsetType = UNSET
    command: str | UnsetType = UNSET
    dir: str | UnsetType = UNSET
    environment: Environment | UnsetType = UNSET
    # PAUSED pauses the job's subtree, WAITING starts it; other states are the server's
    state: JobState | UnsetType = UNSET
    paused: bool | int | UnsetType = UNSET
    retry: Count | UnsetType = UNSET
    timeout: Count | UnsetType = UNSET
    priority: Int32 | UnsetType = UNSET
    affinity: str | UnsetType = UNSET
    user: str | UnsetType = UNSET
    url: str | UnsetType = UNSET
    progress_pattern: str | UnsetType = UNSET
    tags: list[str] | UnsetType = UNSET


class JobEdit(JobEditFields, forbid_unknown_fields=True, kw_only=True):
    """Changes to one job; a field left out stays as it is."""

    dependencies: list[JobId] | UnsetType = UNSET


class JobPage(msgspec.Struct, kw_only=True):
    """One keyset page of jobs, in id order."""

    jobs: list[Job]
    # the id to ask for the page after this one with, None when this is the last page
    next: int | None


class ChildDependency(msgspec.Struct):
    """One dependency of one child of a group."""

    id: int
    dependency: int


class Worker(msgspec.Struct, kw_only=True):
    """A render node as listings show it."""

    name: str
    ip: str
    # the ordered rules, one per line, each a comma-separated set of affinity names
    affinity: str
    state: WorkerState
    ping_time: int
    finished: int
    error: int
    last_job: int
    current_event: int
    # per-core loads, as the text of a list: Coalition's web page parses it
    cpu: str
    free_memory: int
    total_memory: int
    active: int
    # jobs it runs at once
    slots: int


class WorkerEdit(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Changes to one worker; a field left out stays as it is."""

    affinity: str | UnsetType = UNSET
    active: bool | int | UnsetType = UNSET
    name: Echoed = None
    ip: Echoed = None
    state: Echoed = None
    ping_time: Echoed = None
    finished: Echoed = None
    error: Echoed = None
    last_job: Echoed = None
    current_event: Echoed = None
    cpu: Echoed = None
    free_memory: Echoed = None
    total_memory: Echoed = None
    slots: Echoed = None


class Event(msgspec.Struct, kw_only=True):
    """One run of one job on one worker."""

    id: int
    worker: str
    job_id: int
    job_title: str
    state: EventState
    start: int
    duration: int
    # None while it runs and when it ended without exiting (paused, reset, lost, timed out)
    exit_code: int | None
    # why it ended other than by its own exit: "paused", "worker restarted", ...
    reason: str
