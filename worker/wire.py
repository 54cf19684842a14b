"""The server's answers as the terminal commands read them (the Coalition job and worker
shapes, the native pages, runs and log windows). Unknown fields are ignored, so a newer
server's additions do not break an older client."""

import msgspec


class JobRow(msgspec.Struct, kw_only=True):
    id: int
    parent: int
    title: str
    command: str
    dir: str = ""
    environment: str = ""
    state: str
    worker: str = ""
    start_time: int = 0
    duration: int = 0
    ping_time: int = 0
    run_done: int = 0
    retry: int = 0
    timeout: int = 0
    priority: int = 0
    affinity: str = ""
    user: str = ""
    finished: int = 0
    errors: int = 0
    working: int = 0
    total: int = 0
    total_finished: int = 0
    total_errors: int = 0
    total_working: int = 0
    url: str = ""
    progress: float = 0.0
    progress_pattern: str = ""
    # how the last run ended: its exit code (None while running, before any run, when it
    # was stopped) and why it was stopped
    exit_code: int | None = None
    reason: str = ""


class Job(JobRow, kw_only=True):
    """One job as GET /api/jobs/{id} answers it, with the ids it depends on."""

    dependencies: list[int] = msgspec.field(default_factory=list)


class JobPage(msgspec.Struct):
    jobs: list[JobRow]
    next: int | None


class Ancestor(msgspec.Struct):
    id: int
    title: str


class Run(msgspec.Struct, kw_only=True):
    id: int
    worker: str
    state: str
    start: float
    duration: float
    exit_code: int | None
    reason: str


class LogWindow(msgspec.Struct, kw_only=True):
    start: int
    end: int
    size: int
    text: str
    running: bool


class Waiting(msgspec.Struct, kw_only=True):
    """GET /api/v2/jobs/{id}/wait: where a job stands in the queue, and why it waits."""

    state: str
    position: int | None = None
    reason: str = ""


class WorkerRow(msgspec.Struct, kw_only=True):
    name: str
    ip: str = ""
    affinity: str = ""
    state: str
    ping_time: int = 0
    finished: int = 0
    error: int = 0
    last_job: int = 0
    current_event: int = 0
    cpu: str = ""
    free_memory: int = 0
    total_memory: int = 0
    active: int = 1
    slots: int = 1
