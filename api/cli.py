"""The `corral` command: its parser and the dispatch to each command, nothing more.

What a command needs is imported in its own branch: the server's commands (serve, token,
plugins) in api/server_commands.py bring Litestar, asyncpg and the core; the client
commands only worker/* with msgspec and the standard library's HTTP client. So
`corral --help` and `corral jobs` do not pay for the server (docs/architecture.md, Start-up)."""

import argparse
import importlib
import os
import re
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

DEFAULT_SERVER = "http://127.0.0.1:19211"
_STATES = ("WAITING", "PENDING", "WORKING", "FINISHED", "ERROR", "PAUSED")
_TOKEN_HELP = "the API token to send ($CORRAL_TOKEN)"


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        return _dispatch(args)
    except KeyboardInterrupt:
        # Ctrl-C: the user knows; a fresh line for the shell's prompt, and no traceback
        if sys.stderr.isatty():
            sys.stderr.write("\n")
        return 130
    except BrokenPipeError:
        # the reader went away (`corral jobs | head`): as the Python docs recommend, point
        # stdout at devnull so that the flush at exit does not fail a second time
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _dispatch(args: argparse.Namespace) -> int:
    if args.command in ("serve", "token", "plugins"):
        from api import server_commands

        return server_commands.run(args)
    if args.command == "worker":
        from api import server_commands

        return server_commands.worker(args)
    from worker.errors import CommandError

    module, name = args.run.split(":")
    run = getattr(importlib.import_module(f"worker.{module}"), name)
    try:
        status: int = run(args)
    except CommandError as exc:
        sys.stdout.flush()
        print(f"corral: {exc}", file=sys.stderr)
        return exc.status
    return status


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults after each option's help, and the examples of the epilog as written. An
    empty default (none, off, "", []) goes unsaid, and so does one the help already
    tells."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default in (None, False, "", [], {}, argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action)


class _Version(argparse.Action):
    """`--version`, read from the installed package only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(
            option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0,
            help="print Corral's version and exit",
        )  # fmt: skip

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("corral")
        except PackageNotFoundError:
            number = "(not installed)"
        print(f"corral {number}")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="corral",
        description="Corral, a render farm scheduler. `corral COMMAND --help` for each.",
        formatter_class=_Help,
        epilog="examples:\n  corral serve --local-worker\n  corral submit --wait -- echo hi\n"
        "  corral jobs --state ERROR\n\nsee docs/cli.md",
    )
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, help: str, example: str, parents: Sequence[argparse.ArgumentParser] = ()
    ) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, help=help, description=help, formatter_class=_Help, parents=list(parents),
            epilog="example:\n  " + example.replace("\n", "\n  "),
        )  # fmt: skip

    _server_commands(command)
    client = argparse.ArgumentParser(add_help=False)
    server_default = os.environ.get("CORRAL_SERVER", DEFAULT_SERVER)
    client.add_argument(
        "--server", default=server_default, help="the server's URL ($CORRAL_SERVER)"
    )
    client.add_argument("--token", default=None, help=_TOKEN_HELP)

    worker = command(
        "worker", "run the render-node agent",
        "corral worker --server http://corral:19211 --affinity 'LINUX,GPU;LINUX' --slots 4",
    )  # fmt: skip
    worker.add_argument("--server", default=server_default, help="the server's URL")
    worker.add_argument("--name", default=socket.gethostname(), help="the worker's name")
    worker.add_argument(
        "--affinity",
        default=None,
        help='ordered rules, ";" between rules, "," within one: "LINUX,GPU;LINUX"; left out, '
        "the worker keeps the rules it has on the server (none for a new worker)",
    )
    worker.add_argument("--slots", type=_positive, default=1, help="jobs run at once")
    worker.add_argument(
        "--resources",
        type=_resources,
        default={},
        help="what the node offers jobs that declare needs, over what is detected (its "
        'cores as cpus, memory in MB as mem, NVIDIA GPUs as gpus): "cpus=16,mem=64000,gpus=2"',
    )
    # left out, the server keeps what the worker had: only a given value replaces it
    worker.add_argument(
        "--pool",
        type=_pool,
        help='the pool it belongs to: it takes the jobs tagged "pool:NAME" ("" for none)',
    )
    worker.add_argument(
        "--apps",
        type=_apps,
        help='the applications it runs, for the jobs tagged "app:NAME": "nuke,houdini", '
        '"*" for any, "" for none',
    )
    worker.add_argument("--token", default=os.environ.get("CORRAL_TOKEN"), help=_TOKEN_HELP)

    _submit(command, client)
    _jobs(command, client)
    _job_actions(command, client)
    _job_reads(command, client)
    _workers(command, client)
    return parser


# _parser's `command(name, help, example, **add_parser options)`
_CommandMaker = Callable[..., argparse.ArgumentParser]


def _server_commands(command: _CommandMaker) -> None:
    serve = command(
        "serve", "run the server (embedded PostgreSQL by default)",
        "corral serve --local-worker --local-worker-affinity 'LINUX,GPU;LINUX'",
    )  # fmt: skip
    serve.add_argument("--host", help="address to listen on (the config's, else 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (the config's, else 19211)")
    _database_options(serve)
    serve.add_argument(
        "--processes",
        type=_positive,
        help="server processes sharing the port, each a whole server, to use more cores "
        "(the config's [server] processes, else 1)",
    )
    serve.add_argument(
        "--local-worker",
        action="store_true",
        help="also run one worker on this machine, with as many slots as cores",
    )
    serve.add_argument(
        "--local-worker-affinity",
        metavar="RULES",
        help="the local worker's affinity rules, as `corral worker --affinity` takes them "
        '("LINUX,GPU;LINUX"); left out, the config\'s [server] local_worker_affinity, and '
        "without that the rules the worker already has",
    )

    token = command(
        "token", "create, list or revoke API tokens", "corral token create --role admin --name ana"
    )
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = token_sub.add_parser(
        "create", help="a new token, printed on the last line", formatter_class=_Help
    )
    create.add_argument("--role", required=True, choices=["admin", "user", "worker"])
    create.add_argument(
        "--name", required=True, help="the user's name, the worker's name, or the admin's"
    )
    listing = token_sub.add_parser(
        "list", help="every token: id, name, role, revoked", formatter_class=_Help
    )
    revoke = token_sub.add_parser("revoke", help="revoke a token by its id", formatter_class=_Help)
    revoke.add_argument("id", type=_positive)
    for action in (create, listing, revoke):
        _database_options(action)

    plugins = command(
        "plugins", "list the scheduling plugins and their settings",
        "corral plugins --config corral.toml",
    )  # fmt: skip
    plugins.add_argument("--config", type=Path, help="a TOML configuration file")


def _submit(command: _CommandMaker, client: argparse.ArgumentParser) -> None:
    submit = command(
        "submit", "submit a command, or a JSON file of a job tree",
        "corral submit --title 'frame 1' --affinity LINUX --wait -- render -f 1 shot.scn\n"
        "corral submit --after 12,13 --env SHOT=010 --tag nuke -- comp.sh\n"
        "corral submit --title 'shot 020' --frames 1-200 -- render -f {frame} shot020.scn\n"
        "corral submit --group --title 'shot 030'\n"
        "corral submit --file shot020.json",
        parents=[client],
    )  # fmt: skip
    submit.set_defaults(run="submit_cmd:submit")
    # what is submitted: one of these, else the command alone
    what = submit.add_mutually_exclusive_group()
    what.add_argument("--file", type=Path, help="a JSON job tree (see docs/user-guide.md)")
    what.add_argument(
        "--group", action="store_true", help="submit a group, with no command, for --parent"
    )
    what.add_argument(
        "--frames",
        type=_frames,
        metavar="RANGE",
        help="a group of one job per frame, {frame} in the command: 1-200, 1-100x10, 1,5,7",
    )
    submit.add_argument("--title", default="", help="(default: the command's first words)")
    submit.add_argument("--parent", type=int, default=0, help="the group it goes in (0: a root)")
    submit.add_argument("--dir", default="", help="the directory the command runs in")
    submit.add_argument("--priority", type=int, default=1000, help="higher runs first")
    submit.add_argument("--retry", type=int, default=0, help="runs again after a failure")
    submit.add_argument(
        "--timeout", type=int, default=0, help="seconds a run may take (0: no limit)"
    )
    submit.add_argument("--affinity", default="", help='what the worker must offer: "LINUX,GPU"')
    submit.add_argument(
        "--env",
        action="append",
        default=[],
        type=_variable,
        metavar="NAME=VALUE",
        help="an environment variable of the command (repeatable)",
    )
    submit.add_argument(
        "--after",
        action="append",
        default=[],
        type=_ids,
        metavar="IDS",
        help="wait for these jobs to finish first: 12,13 (repeatable)",
    )
    submit.add_argument(
        "--paused", action="store_true", help="submit it paused (`corral start ID` lets it go)"
    )
    submit.add_argument(
        "--tag", action="append", default=[], help='a tag: "pool:gpu", "app:nuke" (repeatable)'
    )
    submit.add_argument(
        "--progress-pattern",
        default="",
        metavar="REGEX",
        help=r'how the output tells progress: "(\d+)%%" (docs/workers.md)',
    )
    submit.add_argument(
        "--user",
        help="who submits (default: with a token, the token's name; else $USER or the login)",
    )
    submit.add_argument(
        "--wait",
        action="store_true",
        help="follow it to its end: exit status 0 when it finished, 1 when it failed",
    )
    submit.add_argument("cmd", nargs=argparse.REMAINDER, help="the command, after --")


def _job_filters(parser: argparse.ArgumentParser, what: str) -> None:
    group = parser.add_argument_group(f"which jobs ({what})")
    group.add_argument("--parent", type=int, help="the children of this group (0: the roots)")
    group.add_argument(
        "--state",
        action="append",
        default=[],
        type=_state,
        help="only jobs in this state (repeatable)",
    )
    group.add_argument("--user", help="only the jobs of this user")
    group.add_argument("--title", help="only the jobs whose title holds this (any case)")
    group.add_argument(
        "--affinity", help='only the jobs that need these affinities: "LINUX" or "LINUX,GPU"'
    )


def _jobs(command: _CommandMaker, client: argparse.ArgumentParser) -> None:
    jobs = command(
        "jobs", "list jobs, a page at a time (the roots, or the children of --parent)",
        "corral jobs --parent 1 --state ERROR\n"
        "corral jobs --watch\n"
        "corral jobs --parent 1 --output id,state,worker | sort -k2",
        parents=[client],
    )  # fmt: skip
    jobs.set_defaults(run="jobs_cmd:jobs")
    _job_filters(jobs, "default: the roots")
    jobs.add_argument("--limit", type=_positive, default=50, help="jobs at most on a page")
    jobs.add_argument(
        "--after", type=int, default=0, help="the page after this id (the line below one says it)"
    )
    jobs.add_argument(
        "--tree", action="store_true", help="each group with the jobs below it, indented"
    )
    shown = jobs.add_mutually_exclusive_group()
    shown.add_argument(
        "--json",
        action="store_true",
        help="one JSON array of the jobs, every field (with --watch: one array per line)",
    )
    shown.add_argument(
        "--output",
        metavar="COLUMNS",
        type=_columns,
        help="only these fields, tab-separated, no header, for scripts: id,title,state "
        "(any field of a job: priority, affinity, command, ...)",
    )
    jobs.add_argument(
        "--watch",
        nargs="?",
        const=2.0,
        type=float,
        metavar="SECONDS",
        help="read again every SECONDS (2 when not given) until Ctrl-C",
    )


def _job_actions(command: _CommandMaker, client: argparse.ArgumentParser) -> None:
    actions = {
        "pause": ("pause jobs and their subtrees", "corral pause 12 13"),
        "start": (
            "unpause jobs and queue their finished or failed leaves again",
            "corral start --parent 4 --state PAUSED --yes",
        ),
        "reset": ("reset jobs and their subtrees to run again", "corral reset 12"),
        "reset-errors": (
            "reset only the leaves in ERROR below the jobs",
            "corral reset-errors 4",
        ),
        "delete": ("delete jobs and their subtrees", "corral delete 12 13 --yes"),
    }
    for name, (help, example) in actions.items():
        action = command(name, help, example, parents=[client])
        action.set_defaults(run="jobs_cmd:act", action=name)
        _targets(action)
    move = command(
        "move", "move jobs into another group", "corral move 12 13 --to 4", parents=[client]
    )
    move.set_defaults(run="jobs_cmd:act", action="move")
    move.add_argument("--to", type=int, required=True, metavar="PARENT", help="the group")
    _targets(move)
    priority = command(
        "priority",
        "set the priority of jobs (higher runs first)",
        "corral priority 2000 12 13",
        parents=[client],
    )
    priority.set_defaults(run="jobs_cmd:act", action="priority")
    priority.add_argument("value", type=int, metavar="N", help="the new priority")
    _targets(priority)


def _targets(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ids", nargs="*", type=_id, metavar="ID", help="the jobs")
    _job_filters(parser, "instead of ids, or besides them")
    parser.add_argument(
        "--yes",
        "-y",
        action="store_true",
        help="do not ask first (asked when a filter or a group picks the jobs, and always "
        "for delete)",
    )


def _job_reads(command: _CommandMaker, client: argparse.ArgumentParser) -> None:
    show = command(
        "show", "a job: its fields, what it waits for and what waits for it, its last runs",
        "corral show 12",
        parents=[client],
    )  # fmt: skip
    show.set_defaults(run="jobs_cmd:show")
    show.add_argument("id", type=_id, metavar="ID")
    show.add_argument("--json", action="store_true", help="the same as one JSON object")
    log = command(
        "log", "a job's log, as raw text",
        "corral log 12 --tail 20\ncorral log 12 --follow",
        parents=[client],
    )  # fmt: skip
    log.set_defaults(run="jobs_cmd:log")
    log.add_argument("id", type=_id, metavar="ID")
    log.add_argument(
        "--follow", "-f", action="store_true", help="go on printing as it runs, until it ends"
    )
    log.add_argument("--tail", "-n", type=_positive, metavar="N", help="only the last N lines")
    events = command(
        "events", "a job's runs: worker, start, duration, exit code, why it ended",
        "corral events 12",
        parents=[client],
    )  # fmt: skip
    events.set_defaults(run="jobs_cmd:events")
    events.add_argument("id", type=_id, metavar="ID")
    events.add_argument("--json", action="store_true", help="one JSON array of the runs")


def _workers(command: _CommandMaker, client: argparse.ArgumentParser) -> None:
    workers = command(
        "workers", "list the workers, stop or start them, edit their rules",
        "corral workers\ncorral workers stop render-07 render-08\n"
        "corral workers edit render-07 --affinity 'LINUX,GPU;LINUX'",
        parents=[client],
    )  # fmt: skip
    workers.set_defaults(run="workers_cmd:workers", worker_command="list")
    workers.add_argument("--json", action="store_true", help="one JSON array of the workers")
    actions = workers.add_subparsers(dest="worker_command", metavar="ACTION")
    for name, help in (
        ("list", "every worker (the default)"),
        ("stop", "take workers out of dispatch; their runs go back to the queue"),
        ("start", "put stopped workers back in dispatch"),
    ):
        action = actions.add_parser(
            name, help=help, description=help, formatter_class=_Help, parents=[client]
        )
        if name != "list":
            action.add_argument("names", nargs="+", metavar="NAME")
        else:
            action.add_argument("--json", action="store_true", help="one JSON array")
    edit = actions.add_parser(
        "edit",
        help="change a worker's affinity rules",
        description="change a worker's affinity rules",
        formatter_class=_Help,
        parents=[client],
        epilog="example:\n  corral workers edit render-07 --affinity 'LINUX,GPU;LINUX'",
    )
    edit.add_argument("names", nargs=1, metavar="NAME")
    edit.add_argument(
        "--affinity",
        required=True,
        metavar="RULES",
        help='ordered rules, ";" between rules, "," within one ("" for none)',
    )


def _database_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, help="where the embedded PostgreSQL lives (default ./corral-data)"
    )
    parser.add_argument(
        "--database-url",
        help="use this PostgreSQL (>= 14) instead of the embedded one; "
        "also taken from CORRAL_DATABASE_URL",
    )
    parser.add_argument("--config", type=Path, help="a TOML configuration file")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _id(text: str) -> int:
    try:
        return _positive(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a job id") from None


def _ids(text: str) -> list[int]:
    return [_id(part) for part in text.replace(" ", ",").split(",") if part]


def _state(text: str) -> str:
    name = text.upper()
    if name not in _STATES:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(_STATES)}")
    return name


# one submission's frames are one HTTP request each: beyond this, a tree file is the tool
_MAX_FRAMES = 10_000


def _frames(text: str) -> list[int]:
    """The frames of `--frames`: `1-200`, `1-100x10` (every tenth), `1,5,10-12`; in the
    order written, each once."""
    numbers: dict[int, None] = {}
    for part in text.split(","):
        found = re.fullmatch(r"\s*(-?\d+)(?:\s*-\s*(-?\d+)(?:x(\d+))?)?\s*", part)
        if found is None:
            raise argparse.ArgumentTypeError(
                f"not a frame range: {part!r} (1-200, 1-100x10, 1,5,10-12)"
            )
        first = int(found[1])
        last = int(found[2]) if found[2] is not None else first
        step = int(found[3]) if found[3] is not None else 1
        if last < first or step < 1:
            raise argparse.ArgumentTypeError(
                f"not a frame range: {part!r} (first-last, last >= first)"
            )
        frames = range(first, last + 1, step)
        # counted before they are made: a typo such as 1-10000000 is refused at once
        if len(numbers) + len(frames) > _MAX_FRAMES:
            raise argparse.ArgumentTypeError(f"more than {_MAX_FRAMES} frames in one submission")
        numbers.update(dict.fromkeys(frames))
    return list(numbers)


def _variable(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name, value


def _columns(text: str) -> list[str]:
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("name at least one field: id,title,state")
    return names


def _resources(text: str) -> dict[str, float]:
    from worker.machine import parse_resources

    try:
        return parse_resources(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# as the server's register takes them (core.models.PoolName, AppName)
_NAME_MAX = 255


def _pool(text: str) -> str:
    pool = text.strip()
    if len(pool) > _NAME_MAX:
        raise argparse.ArgumentTypeError(f"a pool name has {_NAME_MAX} characters at most")
    return pool


def _apps(text: str) -> list[str]:
    apps = [app.strip() for app in text.split(",") if app.strip()]
    for app in apps:
        if len(app) > _NAME_MAX:
            raise argparse.ArgumentTypeError(
                f"an application name has {_NAME_MAX} characters at most: {app[:20]!r}..."
            )
    return apps


if __name__ == "__main__":
    sys.exit(main())
