"""`corral submit`: one command or a JSON tree of jobs, and `--wait` to follow it to its
end. Like every terminal command it talks to the server over HTTP only."""

import argparse
import getpass
import os
import shlex
import sys
import time
from pathlib import Path
from typing import TextIO

import msgspec

from worker import output
from worker.client import Client, Refused
from worker.errors import CommandError
from worker.wire import Job, Run, Waiting

# a default title takes the command's words up to this length
_TITLE_WORDS = 40
_ENDED = ("FINISHED", "ERROR")
# seconds between two readings of why a waiting job waits
_WHY_EVERY = 5.0
# what `--frames` replaces in the command with each frame's number
FRAME = "{frame}"


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


def submit(args: argparse.Namespace) -> int:
    # the command is what follows the `--` separator
    cmd: list[str] = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if args.file is not None:
        if cmd:
            raise CommandError("give a command or --file, not both", status=2)
        root = load_tree(args.file)
    elif args.group:
        if cmd:
            raise CommandError("a --group has no command: submit its jobs with --parent", status=2)
        root = _job(args, command="", title=args.title or "group")
    elif cmd:
        command = command_line(cmd)
        title = args.title or short_title(command)
        if args.frames is None:
            root = _job(args, command=command, title=title)
        else:
            root = _frames(args, command, title)
    else:
        raise CommandError(
            "nothing to submit: give a command after --, --group or --file", status=2
        )
    with Client(args.server, args.token) as client:
        job_id = submit_tree(client, root, args.parent)
        print(job_id, flush=True)
        if args.wait:
            return wait(client, job_id)
    return 0


def _job(args: argparse.Namespace, *, command: str, title: str) -> JobNode:
    """The job the command line describes."""
    token = args.token or os.environ.get("CORRAL_TOKEN", "")
    return JobNode(
        title=title,
        command=command,
        dir=args.dir,
        environment=dict(args.env) or "",
        priority=args.priority,
        retry=args.retry,
        timeout=args.timeout,
        affinity=args.affinity,
        progress_pattern=args.progress_pattern,
        tags=args.tag,
        paused=args.paused,
        dependencies=sorted({job for ids in args.after for job in ids}),
        # a user token submits as its own name, which the server fills in
        user=args.user if args.user is not None else ("" if token else login_name()),
    )


def _frames(args: argparse.Namespace, command: str, title: str) -> JobNode:
    """A group titled `title` holding one job per frame of `--frames`, each running the
    command with `{frame}` replaced by its number. The group carries what concerns the
    whole (its place, its user, `--after`, `--paused`); each frame carries how it runs."""
    if FRAME not in command:
        raise CommandError(f"--frames needs {FRAME} in the command: render -f {FRAME}", status=2)
    frame = _job(args, command="", title="")
    group = JobNode(
        title=title,
        priority=frame.priority,
        user=frame.user,
        paused=frame.paused,
        dependencies=frame.dependencies,
    )
    group.children = [
        msgspec.structs.replace(
            frame,
            title=f"frame {number}",
            command=command.replace(FRAME, str(number)),
            paused=False,
            dependencies=[],
        )
        for number in args.frames
    ]
    return group


def command_line(words: list[str]) -> str:
    """The job's command from what follows `--`: one word is a command line as written
    (`'exit 3'`, `'render -f 1 && comp'`), several are each one argument, quoted so that
    the worker's shell splits them back the same (`printf %s 'a b'`)."""
    return words[0] if len(words) == 1 else shlex.join(words)


def short_title(command: str) -> str:
    """The command's first words, as many as fit in a short title."""
    title = ""
    for word in command.split():
        if title and len(title) + 1 + len(word) > _TITLE_WORDS:
            break
        title = f"{title} {word}" if title else word
    return title[:80]


def login_name() -> str:
    """$USER, else the login name (getpass looks at LOGNAME, USER, ... then the password
    database), else nothing."""
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):
        return ""


def submit_tree(client: Client, root: JobNode, parent: int = 0) -> int:
    """Create a job tree: parents before children, then the `after` dependencies between
    them. The root is created paused and let go once the whole tree is in place, so no job
    starts before the jobs it waits for are known; if anything fails half-way, what was
    created is deleted. The id of the root."""
    ids: dict[str, int] = {}
    created: list[tuple[JobNode, int]] = []

    def create(node: JobNode, parent_id: int, *, hold: bool) -> int:
        body = msgspec.structs.asdict(node)
        for local in ("name", "after", "children"):
            body.pop(local)
        body["parent"] = parent_id
        body["paused"] = node.paused or hold
        job_id = client.send("PUT", "/api/jobs", body, int)
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
            client.send("POST", f"/api/jobs/{job_id}/dependencies", deps, int)
    except CommandError:
        if created:
            client.send("DELETE", "/api/jobs", [created[0][1]], int)
        raise
    if not root.paused:
        # pausing the root paused the tree below it; let it go, but for the jobs the
        # file itself pauses
        client.send("POST", "/api/jobs", {str(root_id): {"paused": False}}, int)
        held = [job_id for node, job_id in created[1:] if node.paused]
        if held:
            client.send("POST", "/api/pausejobs", held, int)
    return root_id


def load_tree(path: Path) -> JobNode:
    try:
        return msgspec.json.decode(path.read_bytes(), type=JobNode)
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise CommandError(f"{path}: {exc}") from exc


def wait(client: Client, job_id: int, out: TextIO = sys.stdout, interval: float = 0.5) -> int:
    """Follow the job until it is FINISHED (0) or ERROR (1). On a terminal one line is
    redrawn in place; elsewhere (a CI log, a file) a plain line is printed each time what
    it says changes. Ctrl-C stops the waiting, not the job: 130."""
    follower = _Follower(client, job_id)
    bar = _Bar(out) if output.terminal(out) else None
    last = ""
    try:
        while True:
            job = follower.job()
            line = follower.status(job)
            if bar is not None:
                bar.draw(job, line)
            elif line != last:
                out.write(f"job {job_id} {line}\n")
                out.flush()
                last = line
            if job.state in _ENDED:
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        print(f"corral: stopped waiting; job {job_id} keeps running", file=sys.stderr)
        return 130
    if bar is not None:
        bar.close()
    out.write(f"job {job_id} {follower.outcome(job, out)}\n")
    return 0 if job.state == "FINISHED" else 1


class _Follower:
    """The job's state, and why it waits (GET /api/v2/jobs/{id}/wait, on servers that
    have it)."""

    def __init__(self, client: Client, job_id: int) -> None:
        self._client = client
        self._id = job_id
        self._asks_why = True
        # the last answer of /wait, and when and for which state it was read
        self._why_read: tuple[float, str, Waiting] | None = None

    def job(self) -> Job:
        return self._client.get(f"/api/jobs/{self._id}", Job)

    def status(self, job: Job) -> str:
        if job.state == "WORKING" or job.state in _ENDED:
            where = f" on {job.worker}" if job.worker else ""
            counts = (
                f" {job.total_finished}/{job.total} done, {job.total_errors} errors"
                if not job.command
                else ""
            )
            return f"{job.state} {job.progress:.0%}{where}{counts}"
        why = self._why(job.state)
        if why is None:
            return job.state
        position = f" ({why.position} ahead in the queue)" if why.position is not None else ""
        reason = f": {why.reason}" if why.reason else ""
        return f"{job.state}{reason}{position}"

    def _why(self, state: str) -> Waiting | None:
        """Why the job waits, read again when its state changes and otherwise every
        _WHY_EVERY seconds: the answer weighs every worker that is up (a third of a second
        of the server's time at 10,000 workers), the job's state is a single row."""
        if not self._asks_why:
            return None
        now = time.monotonic()
        if self._why_read is not None:
            at, seen, why = self._why_read
            if seen == state and now - at < _WHY_EVERY:
                return why
        try:
            why = self._client.get(f"/api/v2/jobs/{self._id}/wait", Waiting)
            self._why_read = (now, state, why)
            return why
        except Refused as exc:
            # an older server has no such route; a job deleted meanwhile is the next
            # read's error
            if exc.http_status in (404, 405) and "no such job" not in exc.detail:
                self._asks_why = False
                return None
            raise

    def outcome(self, job: Job, out: TextIO) -> str:
        state = output.state(job.state, out)
        if not job.command:
            return f"{state}: {job.total_finished}/{job.total} finished, {job.total_errors} failed"
        runs = self._client.get(f"/api/v2/jobs/{self._id}/runs", list[Run])
        if not runs:
            return state
        last = runs[0]
        took = f" in {output.duration(last.duration)}"
        where = f" on {last.worker}" if last.worker else ""
        if job.state == "FINISHED":
            return f"{state}{took}{where}"
        code = f"exit code {last.exit_code}" if last.exit_code is not None else "no exit code"
        reason = f" ({last.reason})" if last.reason else ""
        return f"{state}: {code}{reason}{took}{where}"


class _Bar:
    """One line redrawn in place (rich's progress bar), gone when closed."""

    def __init__(self, out: TextIO) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        console = Console(file=out, no_color=not output.colours(out), highlight=False)
        self._progress = Progress(
            BarColumn(bar_width=30),
            TaskProgressColumn(),
            TextColumn("{task.description}", markup=False),
            console=console,
            transient=True,
        )
        self._task = self._progress.add_task("", total=1.0)
        self._progress.start()

    def draw(self, job: Job, line: str) -> None:
        self._progress.update(self._task, completed=job.progress, description=line)

    def close(self) -> None:
        self._progress.stop()
