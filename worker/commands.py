"""The commands for people at a terminal: `corral submit`, `corral jobs`, `corral workers`.
Like the agent, they talk to the server over HTTP only."""

import os
import sys
import time
from pathlib import Path
from typing import TextIO

import httpx
import msgspec

DEFAULT_SERVER = "http://127.0.0.1:19211"


class JobNode(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One job of a JSON tree file. `name` labels it so other jobs of the file can wait for
    it (`after`); `dependencies` are ids of jobs already on the server."""

    title: str = ""
    command: str = ""
    dir: str = ""
    environment: str | dict[str, str] = ""
    priority: int = 1000
    retry: int = 0
    timeout: int = 0
    affinity: str = ""
    user: str = ""
    url: str = ""
    progress_pattern: str = ""
    tags: list[str] = msgspec.field(default_factory=list)
    paused: bool = False
    name: str = ""
    after: list[str] = msgspec.field(default_factory=list)
    dependencies: list[int] = msgspec.field(default_factory=list)
    children: list["JobNode"] = msgspec.field(default_factory=list)


class JobRow(msgspec.Struct):
    id: int
    parent: int
    title: str
    command: str
    state: str
    worker: str
    user: str
    progress: float
    total: int
    total_finished: int
    total_errors: int
    total_working: int


class WorkerRow(msgspec.Struct):
    name: str
    ip: str
    affinity: str
    state: str
    ping_time: int
    finished: int
    error: int
    last_job: int
    cpu: str
    free_memory: int
    total_memory: int
    active: int


class CommandError(Exception):
    """A command failed in a way the user can act on; the message says how."""


def _client(server: str) -> httpx.Client:
    token = os.environ.get("CORRAL_TOKEN", "")
    return httpx.Client(
        base_url=server.rstrip("/"),
        timeout=30.0,
        transport=_Reachable(server),
        headers={"Authorization": f"Bearer {token}"} if token else None,
    )


class _Reachable(httpx.HTTPTransport):
    """Say plainly that the server cannot be reached, instead of a traceback."""

    def __init__(self, server: str) -> None:
        super().__init__()
        self._server = server

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return super().handle_request(request)
        except httpx.TransportError as exc:
            raise CommandError(f"cannot reach the server at {self._server}: {exc}") from None


def _check(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        try:
            detail = msgspec.json.decode(response.content, type=dict[str, object]).get("detail")
        except msgspec.DecodeError:
            detail = response.text
        raise CommandError(f"the server answered {response.status_code}: {detail}")
    return response


def submit_tree(server: str, root: JobNode, parent: int = 0) -> int:
    """Create a job tree: parents before children, then the `after` dependencies between
    them. The root is created paused and let go once the whole tree is in place, so no job
    starts before the jobs it waits for are known; if anything fails half-way, what was
    created is deleted. The id of the root."""
    ids: dict[str, int] = {}
    created: list[tuple[JobNode, int]] = []
    with _client(server) as http:

        def create(node: JobNode, parent_id: int, *, hold: bool) -> int:
            body = msgspec.structs.asdict(node)
            for local in ("name", "after", "children"):
                body.pop(local)
            body["parent"] = parent_id
            body["paused"] = node.paused or hold
            job_id = msgspec.json.decode(_check(http.put("/api/jobs", json=body)).content, type=int)
            created.append((node, job_id))
            if node.name:
                if node.name in ids:
                    raise CommandError(f"two jobs of the file are named {node.name!r}")
                ids[node.name] = job_id
            for child in node.children:
                create(child, job_id, hold=False)
            return job_id

        try:
            root_id = create(root, parent, hold=True)
            for node, job_id in created:
                if not node.after:
                    continue
                unknown = [n for n in node.after if n not in ids]
                if unknown:
                    raise CommandError(f"job {node.title!r} waits for unknown name(s) {unknown}")
                deps = sorted({*node.dependencies, *(ids[n] for n in node.after)})
                _check(http.post(f"/api/jobs/{job_id}/dependencies", json=deps))
        except CommandError:
            if created:
                http.request("DELETE", "/api/jobs", json=[created[0][1]])
            raise
        if not root.paused:
            # pausing the root paused the tree below it; let it go, but for the jobs the
            # file itself pauses
            _check(http.post("/api/jobs", json={str(root_id): {"paused": False}}))
            held = [job_id for node, job_id in created[1:] if node.paused]
            if held:
                _check(http.post("/api/pausejobs", json=held))
    return root_id


def load_tree(path: Path) -> JobNode:
    try:
        return msgspec.json.decode(path.read_bytes(), type=JobNode)
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise CommandError(f"{path}: {exc}") from exc


def wait(server: str, job_id: int, out: TextIO = sys.stdout, interval: float = 0.5) -> str:
    """Show a live progress bar until the job is FINISHED or ERROR; its final state."""
    with _client(server) as http:
        while True:
            job = msgspec.json.decode(_check(http.get(f"/api/jobs/{job_id}")).content, type=JobRow)
            out.write("\r" + _bar(job))
            out.flush()
            if job.state in ("FINISHED", "ERROR"):
                out.write("\n")
                return job.state
            time.sleep(interval)


def _bar(job: JobRow, width: int = 30) -> str:
    filled = round(job.progress * width)
    counts = (
        f"{job.total_finished}/{job.total} finished, {job.total_working} working, "
        f"{job.total_errors} errors"
        if not job.command
        else job.worker or "waiting for a worker"
    )
    return f"[{'#' * filled}{'.' * (width - filled)}] {job.progress:4.0%} {job.state:<8} {counts}"


class JobPage(msgspec.Struct):
    jobs: list[JobRow]
    next: int | None


class JobFilter(msgspec.Struct, kw_only=True):
    """Which jobs `corral jobs` lists: one page of the children of `parent`."""

    parent: int = 0
    after: int = 0
    limit: int = 100
    states: list[str] = msgspec.field(default_factory=list)
    user: str | None = None
    title: str | None = None
    # each group with the jobs below it, indented (at most `limit` children per group)
    tree: bool = False


def list_jobs(
    server: str, which: JobFilter, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> None:
    """One page of jobs, and on `err` how to ask for the next one if there is one."""
    params: dict[str, str | int | list[str]] = {
        "parent": which.parent,
        "after": which.after,
        "limit": which.limit,
        "state": which.states,
    }
    if which.user is not None:
        params["user"] = which.user
    if which.title is not None:
        params["title"] = which.title
    table = [["ID", "TITLE", "STATE", "PROGRESS", "DONE", "ERRORS", "USER", "WORKER"]]
    with _client(server) as http:
        page = msgspec.json.decode(
            _check(http.get("/api/v2/jobs", params=params)).content, type=JobPage
        )

        def add(jobs: list[JobRow], depth: int) -> None:
            for j in jobs:
                done = f"{j.total_finished}/{j.total}" if not j.command else ""
                errors = str(j.total_errors) if not j.command else ""
                title = "  " * depth + j.title
                table.append(
                    [str(j.id), title, j.state, f"{j.progress:.0%}", done, errors, j.user, j.worker]
                )
                if which.tree and not j.command and j.total:
                    below = {"parent": j.id, "limit": which.limit}
                    children = msgspec.json.decode(
                        _check(http.get("/api/v2/jobs", params=below)).content, type=JobPage
                    )
                    add(children.jobs, depth + 1)
                    if children.next is not None:
                        err.write(
                            f"group {j.id} has more jobs: corral jobs --parent {j.id} "
                            f"--after {children.next}\n"
                        )

        add(page.jobs, 0)
    print_table(table, out)
    if page.next is not None:
        err.write(f"more after job {page.next}: add --after {page.next}\n")


def list_workers(server: str, out: TextIO = sys.stdout) -> None:
    with _client(server) as http:
        rows = msgspec.json.decode(_check(http.get("/api/workers")).content, type=list[WorkerRow])
    now = time.time()
    table = [["NAME", "STATE", "ACTIVE", "AFFINITY", "CPU", "MEMORY FREE", "LAST JOB", "SEEN"]]
    for w in rows:
        table.append(
            [
                w.name,
                w.state,
                "yes" if w.active else "no",
                w.affinity.replace("\n", " | "),
                w.cpu,
                f"{w.free_memory}/{w.total_memory} MB",
                str(w.last_job or ""),
                f"{max(now - w.ping_time, 0):.0f}s ago",
            ]
        )
    print_table(table, out)


def print_table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n"
        )
