"""`corral jobs` and the commands on jobs: pause, start, reset, reset-errors, delete, move,
priority (through the Coalition API's actions), and show, log, events (through the native
reads)."""

import argparse
import sys
import time
from collections.abc import Iterator
from typing import TextIO

import msgspec

from worker import output
from worker.client import Client, Params
from worker.errors import CommandError
from worker.wire import Ancestor, Job, JobPage, JobRow, LogWindow, Run

_HEADER = ["ID", "TITLE", "STATE", "PROGRESS", "DONE", "ERRORS", "USER", "WORKER", "LAST RUN"]
_FIELDS = list(JobRow.__struct_fields__)
# a page of filtered ids read for an action: the server's largest
_ACTION_PAGE = 10_000
# the bytes of a log one read asks for (the server's largest window)
_LOG_WINDOW = 1 << 20
_LOG_POLL = 1.0


def _filters(args: argparse.Namespace) -> dict[str, str | list[str]]:
    params: dict[str, str | list[str]] = {}
    if args.state:
        params["state"] = args.state
    for name in ("user", "title", "affinity"):
        value = getattr(args, name)
        if value is not None:
            params[name] = value
    return params


def _filtered(args: argparse.Namespace) -> bool:
    return args.parent is not None or bool(_filters(args))


# -- corral jobs --------------------------------------------------------------------------


def jobs(args: argparse.Namespace) -> int:
    if args.output:
        unknown = [name for name in args.output if name not in _FIELDS]
        if unknown:
            raise CommandError(
                f"no such field {', '.join(unknown)}: a job has {', '.join(_FIELDS)}", status=2
            )
    out = sys.stdout
    with Client(args.server, args.token) as client:
        if args.watch is None:
            _list_once(client, args, out)
            return 0
        redraw = output.terminal(out) and not args.json and not args.output
        while True:
            if redraw:
                # the screen cleared and the cursor home, so each reading replaces the last
                out.write("\x1b[H\x1b[2J")
                out.write(f"every {args.watch:g}s, Ctrl-C to stop: {time.strftime('%X')}\n")
            _list_once(client, args, out)
            if not redraw and not args.json:
                out.write("\n")
            out.flush()
            time.sleep(args.watch)


def _list_once(client: Client, args: argparse.Namespace, out: TextIO) -> None:
    params: dict[str, str | int | list[str]] = {
        "parent": args.parent or 0,
        "after": args.after,
        "limit": args.limit,
        **_filters(args),
    }
    page = client.get("/api/v2/jobs", JobPage, params)
    listed: list[tuple[JobRow, int]] = []
    notes: list[str] = []

    def add(rows: list[JobRow], depth: int) -> None:
        for job in rows:
            listed.append((job, depth))
            if args.tree and not job.command and job.total:
                below = client.get("/api/v2/jobs", JobPage, {"parent": job.id, "limit": args.limit})
                add(below.jobs, depth + 1)
                if below.next is not None:
                    notes.append(
                        f"group {job.id} has more jobs: corral jobs --parent {job.id} "
                        f"--after {below.next}"
                    )

    add(page.jobs, 0)
    if args.json:
        out.write(msgspec.json.encode([job for job, _ in listed]).decode() + "\n")
    elif args.output:
        for job, _ in listed:
            values = msgspec.structs.asdict(job)
            out.write("\t".join(_cell(values[name]) for name in args.output) + "\n")
    else:
        rows = [_HEADER, *(_row(job, depth) for job, depth in listed)]
        output.table(rows, out, fit="TITLE")
    out.flush()
    for note in notes:
        sys.stderr.write(note + "\n")
    if page.next is not None:
        sys.stderr.write(f"more after job {page.next}: add --after {page.next}\n")


def _cell(value: object) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return text.replace("\t", " ").replace("\n", " ")


def _row(job: JobRow, depth: int) -> list[str]:
    group = not job.command
    return [
        str(job.id),
        "  " * depth + job.title,
        job.state,
        f"{job.progress:.0%}",
        f"{job.total_finished}/{job.total}" if group else "",
        str(job.total_errors) if group else "",
        job.user,
        job.worker,
        _last_run(job),
    ]


def _last_run(job: JobRow) -> str:
    """How the last run ended, when that says something: a failing exit, or why it was
    stopped (an exit with 0 is what FINISHED already says)."""
    if job.exit_code:
        return f"exit {job.exit_code}"
    return job.reason


# -- the actions --------------------------------------------------------------------------

# the action's verb in the question and the report, its route and the body's shape
_ACTIONS = {
    "pause": ("pause", "paused", "POST", "/api/pausejobs"),
    "start": ("start", "started", "POST", "/api/startjobs"),
    "reset": ("reset", "reset", "POST", "/api/resetjobs"),
    "reset-errors": ("reset the errors of", "reset the errors of", "POST", "/api/reseterrorjobs"),
    "delete": ("delete", "deleted", "DELETE", "/api/jobs"),
    "move": ("move", "moved", "POST", "/api/jobs"),
    "priority": ("set the priority of", "set the priority of", "POST", "/api/jobs"),
}


def act(args: argparse.Namespace) -> int:
    verb, done, method, path = _ACTIONS[args.action]
    if not args.ids and not _filtered(args):
        raise CommandError(
            f"which jobs? give their ids, or a filter (--parent, --state, --user, --title, "
            f"--affinity): corral {args.action} --help",
            status=2,
        )
    with Client(args.server, args.token) as client:
        # the named jobs, read first: an unknown id stops here, before anything changes
        targets = {job_id: client.get(f"/api/jobs/{job_id}", JobRow) for job_id in args.ids}
        if _filtered(args):
            for job in _matching(client, args):
                targets.setdefault(job.id, job)
        if not targets:
            print(f"no job matches: nothing to {verb}", file=sys.stderr)
            return 0
        groups = [job for job in targets.values() if not job.command]
        below = sum(job.total for job in groups)
        what = _count(len(targets), "job") + f" ({_some(list(targets))})"
        if len(groups) == 1 and len(targets) == 1:
            what += f", a group of {_count(below, 'job')}"
        elif groups:
            what += f", {_count(len(groups), 'group')} of {_count(below, 'job')} in all among them"
        suffix = f" to group {args.to}" if args.action == "move" else ""
        suffix += f" to {args.value}" if args.action == "priority" else ""
        if _filtered(args) or groups or args.action == "delete":
            output.confirm(f"{verb[0].upper()}{verb[1:]} {what}{suffix}?", args.yes)
        ids = list(targets)
        body: object = ids
        if args.action == "move":
            body = {str(job_id): {"parent": args.to} for job_id in ids}
        elif args.action == "priority":
            body = {str(job_id): {"priority": args.value} for job_id in ids}
        client.send(method, path, body, int)
    print(f"{done} {_count(len(ids), 'job')}{suffix}: {_some(ids)}")
    return 0


def _matching(client: Client, args: argparse.Namespace) -> Iterator[JobRow]:
    """Every job the filters pick, page after page."""
    after = 0
    while True:
        params: Params = {
            "parent": args.parent or 0,
            "after": after,
            "limit": _ACTION_PAGE,
            **_filters(args),
        }
        page = client.get("/api/v2/jobs", JobPage, params)
        yield from page.jobs
        if page.next is None:
            return
        after = page.next


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"


def _some(ids: list[int], shown: int = 10) -> str:
    listed = " ".join(str(i) for i in ids[:shown])
    return listed + (f" and {len(ids) - shown} more" if len(ids) > shown else "")


# -- show, log, events --------------------------------------------------------------------


class Shown(msgspec.Struct, kw_only=True):
    """`corral show --json`: the job, where it is, what waits for it, its last runs."""

    job: Job
    path: list[Ancestor]
    dependants: list[int]
    runs: list[Run]


# runs `corral show` lists
_SHOWN_RUNS = 5


def show(args: argparse.Namespace) -> int:
    out = sys.stdout
    with Client(args.server, args.token) as client:
        job = client.get(f"/api/jobs/{args.id}", Job)
        shown = Shown(
            job=job,
            path=client.get(f"/api/v2/jobs/{args.id}/path", list[Ancestor]),
            dependants=client.get(f"/api/v2/jobs/{args.id}/dependants", list[int]),
            runs=client.get(f"/api/v2/jobs/{args.id}/runs", list[Run])[:_SHOWN_RUNS],
        )
        if args.json:
            out.write(msgspec.json.encode(shown).decode() + "\n")
            return 0
        waits_for = [client.get(f"/api/jobs/{d}", JobRow) for d in job.dependencies]
    fields: list[tuple[str, str]] = [
        ("job", f"{job.id} {job.title}"),
        ("state", f"{output.state(job.state, out)} {job.progress:.0%}"),
        ("last run", _last_run(job) or ("exit 0" if job.exit_code == 0 else "-")),
        ("path", " > ".join(f"{a.title} ({a.id})" for a in shown.path)),
    ]
    if job.command:
        fields += [("command", job.command), ("dir", job.dir), ("worker", job.worker)]
    else:
        fields.append(
            (
                "jobs",
                f"{job.total} in all: {job.total_finished} finished, "
                f"{job.total_working} working, {job.total_errors} failed",
            )
        )
    fields += [
        ("user", job.user),
        ("priority", str(job.priority)),
        ("affinity", job.affinity),
        ("retry", str(job.retry)),
        ("timeout", f"{job.timeout}s" if job.timeout else ""),
        ("progress pattern", job.progress_pattern),
        ("environment", job.environment.replace("\n", " ")),
        ("url", job.url),
        ("waits for", ", ".join(f"{d.id} {d.title} ({d.state})" for d in waits_for) or "-"),
        ("waited for by", " ".join(str(i) for i in shown.dependants) or "-"),
    ]
    label = max(len(name) for name, _ in fields)
    for name, value in fields:
        if value:
            out.write(f"{name.ljust(label)}  {value}\n")
    if shown.runs:
        out.write(f"\nlast runs (corral events {job.id} for all):\n")
        output.table(_run_rows(shown.runs), out, fit="REASON")
    return 0


def events(args: argparse.Namespace) -> int:
    with Client(args.server, args.token) as client:
        runs = client.get(f"/api/v2/jobs/{args.id}/runs", list[Run])
    if args.json:
        sys.stdout.write(msgspec.json.encode(runs).decode() + "\n")
    elif runs:
        output.table(_run_rows(runs), sys.stdout, fit="REASON")
    else:
        print(f"job {args.id} has not run yet", file=sys.stderr)
    return 0


def _run_rows(runs: list[Run]) -> list[list[str]]:
    rows = [["RUN", "WORKER", "STATE", "START", "DURATION", "EXIT", "REASON"]]
    for run in runs:
        rows.append(
            [
                str(run.id),
                run.worker,
                run.state,
                output.when(run.start),
                output.duration(run.duration),
                "" if run.exit_code is None else str(run.exit_code),
                run.reason,
            ]
        )
    return rows


def log(args: argparse.Namespace) -> int:
    out = sys.stdout
    with Client(args.server, args.token) as client:
        path = f"/api/v2/jobs/{args.id}/log"
        if args.tail is not None:
            window = client.get(path, LogWindow, {"limit": _LOG_WINDOW})
            text, first, position = window.text, window.start, window.end
            # page back until the window holds the lines asked for
            while text.count("\n") <= args.tail and first > 0:
                earlier = client.get(path, LogWindow, {"end": first, "limit": _LOG_WINDOW})
                text, first = earlier.text + text, earlier.start
            lines = text.splitlines(keepends=True)
            out.write("".join(lines[-args.tail :]))
        else:
            position = 0
            while True:
                window = client.get(path, LogWindow, {"start": position, "limit": _LOG_WINDOW})
                out.write(window.text)
                moved, position = window.end > position, window.end
                # no further: the end, or a character whose last bytes have not come yet
                if window.end >= window.size or not moved:
                    break
        out.flush()
        if not args.follow:
            return 0
        # from the last end on, until the job has ended and its log is read to the end
        while True:
            window = client.get(path, LogWindow, {"start": position, "limit": _LOG_WINDOW})
            out.write(window.text)
            out.flush()
            moved, position = window.end > position, window.end
            if window.end < window.size and moved:
                continue
            if not window.running:
                job = client.get(f"/api/jobs/{args.id}", JobRow)
                if job.state in ("FINISHED", "ERROR", "PAUSED"):
                    # what came between the last read and the end
                    rest = client.get(path, LogWindow, {"start": position, "limit": _LOG_WINDOW})
                    out.write(rest.text)
                    return 0
            time.sleep(_LOG_POLL)
