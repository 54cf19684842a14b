"""The `corral` command."""

import argparse
import asyncio
import ipaddress
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import FrameType
from typing import TypeVar

import msgspec
import uvicorn

from api.app import create_app
from core import migrate, vault
from core.config import Config, ConfigError, load
from core.db import Database
from core.embedded import EmbeddedPostgres
from core.errors import CorralError, Invalid
from core.plugins import Plugins
from core.tokens import Tokens
from worker import commands
from worker.agent import run_agent
from worker.machine import detected_resources, parse_resources


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("apscheduler", "httpx", "pgserver"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        if args.command == "serve":
            return _serve(args, load(args.config))
        if args.command == "plugins":
            return _plugins(load(args.config))
        if args.command == "worker":
            offered = {**detected_resources(), **args.resources}
            run_agent(
                args.server,
                args.name,
                args.affinity,
                args.slots,
                args.token or "",
                offered,
                pool=args.pool,
                apps=args.apps,
            )
            return 0
        if args.command == "token":
            return _token(args, load(args.config))
        if args.token:
            # the client commands read it from the environment, as a user would set it
            os.environ["CORRAL_TOKEN"] = args.token
        return _client_command(args)
    except ConfigError as exc:
        source = getattr(args, "config", None)
        where = f"config file {source}: " if source and str(source) not in str(exc) else ""
        print(f"corral: {where}{exc}", file=sys.stderr)
        return 2
    except commands.CommandError as exc:
        print(f"corral: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="corral", description="Corral, a render farm scheduler")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    server_default = os.environ.get("CORRAL_SERVER", commands.DEFAULT_SERVER)
    token_default = os.environ.get("CORRAL_TOKEN")

    serve = sub.add_parser("serve", help="run the server (embedded PostgreSQL by default)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 19211)")
    _database_options(serve)
    serve.add_argument(
        "--local-worker",
        action="store_true",
        help="also run one worker on this machine, with as many slots as cores",
    )

    token = sub.add_parser("token", help="create, list or revoke API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = token_sub.add_parser("create", help="a new token, printed on the last line")
    create.add_argument("--role", required=True, choices=["admin", "user", "worker"])
    create.add_argument(
        "--name", required=True, help="the user's name, the worker's name, or the admin's"
    )
    listing = token_sub.add_parser("list", help="every token: id, name, role, revoked")
    revoke = token_sub.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("id", type=_positive)
    for action in (create, listing, revoke):
        _database_options(action)

    plugins = sub.add_parser("plugins", help="list the scheduling plugins and their settings")
    plugins.add_argument("--config", type=Path, help="a TOML configuration file")

    worker = sub.add_parser("worker", help="run the render-node agent")
    worker.add_argument("--server", default=server_default, help=f"(default {server_default})")
    worker.add_argument("--name", default=socket.gethostname(), help="(default: the host name)")
    worker.add_argument(
        "--affinity",
        default="",
        help='ordered rules, ";" between rules, "," within one: "LINUX,GPU;LINUX"',
    )
    worker.add_argument("--slots", type=_positive, default=1, help="jobs run at once (default 1)")
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
    worker.add_argument("--token", default=token_default, help=_TOKEN_HELP)

    submit = sub.add_parser("submit", help="submit a command or a JSON file of a job tree")
    submit.add_argument("--server", default=server_default)
    submit.add_argument("--token", default=token_default, help=_TOKEN_HELP)
    submit.add_argument("--file", type=Path, help="a JSON job tree (see docs/user-guide.md)")
    submit.add_argument("--title", default="")
    submit.add_argument("--parent", type=int, default=0)
    submit.add_argument("--dir", default="")
    submit.add_argument("--priority", type=int, default=1000)
    submit.add_argument("--retry", type=int, default=0)
    submit.add_argument("--timeout", type=int, default=0)
    submit.add_argument("--affinity", default="")
    submit.add_argument(
        "--user", help="who submits (default: with a token, the token's name; else $USER)"
    )
    submit.add_argument("--wait", action="store_true", help="show progress until it is done")
    submit.add_argument("cmd", nargs=argparse.REMAINDER, help="the command, after --")

    jobs = sub.add_parser(
        "jobs", help="list jobs, a page at a time (the roots, or the children of --parent)"
    )
    jobs.add_argument("--server", default=server_default)
    jobs.add_argument("--token", default=token_default, help=_TOKEN_HELP)
    jobs.add_argument("--parent", type=int, default=0, help="the group (default: the roots)")
    jobs.add_argument("--after", type=int, default=0, help="only the jobs after this id")
    jobs.add_argument("--limit", type=_positive, default=100, help="jobs at most (default 100)")
    jobs.add_argument(
        "--state", action="append", default=[], help="only jobs in this state (repeatable)"
    )
    jobs.add_argument("--user", help="only the jobs of this user")
    jobs.add_argument("--title", help="only the jobs whose title holds this (any case)")
    jobs.add_argument(
        "--tree", action="store_true", help="each group with the jobs below it, indented"
    )

    workers = sub.add_parser("workers", help="list the workers")
    workers.add_argument("--server", default=server_default)
    workers.add_argument("--token", default=token_default, help=_TOKEN_HELP)
    return parser


_TOKEN_HELP = "the API token to send (default: $CORRAL_TOKEN)"
_LOCAL_WORKER = f"{socket.gethostname()}-local"
_OPEN_REFUSED = """\
corral: refusing to listen on {host}: no API token exists yet, so anyone who can reach
this address could submit commands that run on your render nodes.
Create an admin token first (same --data-dir or --database-url as the server):

    corral token create --role admin --name <your name>

then give workers a worker token each (corral token create --role worker --name <host>)
and users a user token (--role user). Without tokens, listen on 127.0.0.1 only."""
T = TypeVar("T")


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


def _client_command(args: argparse.Namespace) -> int:
    if args.command == "jobs":
        which = commands.JobFilter(
            parent=args.parent,
            after=args.after,
            limit=args.limit,
            states=[state.upper() for state in args.state],
            user=args.user,
            title=args.title,
            tree=args.tree,
        )
        commands.list_jobs(args.server, which)
        return 0
    if args.command == "workers":
        commands.list_workers(args.server)
        return 0
    # submit: the command is what follows the `--` separator
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if args.file is not None:
        if cmd:
            raise commands.CommandError("give a command or --file, not both")
        root = commands.load_tree(args.file)
    elif cmd:
        root = commands.JobNode(
            title=args.title or " ".join(cmd)[:80],
            command=" ".join(cmd),
            dir=args.dir,
            priority=args.priority,
            retry=args.retry,
            timeout=args.timeout,
            affinity=args.affinity,
            # a user token submits as its own name, which the server fills in
            user=args.user if args.user is not None else _default_user(),
        )
    else:
        raise commands.CommandError("nothing to submit: give a command after -- or --file")
    job_id = commands.submit_tree(args.server, root, args.parent)
    print(job_id)
    if args.wait:
        return 0 if commands.wait(args.server, job_id) == "FINISHED" else 1
    return 0


def _default_user() -> str:
    return "" if os.environ.get("CORRAL_TOKEN") else os.environ.get("USER", "")


def _plugins(config: Config) -> int:
    for plugin in Plugins(config.plugins).loaded:
        state = "enabled" if plugin.enabled else "disabled"
        print(f"{plugin.name} ({state}) from {plugin.source}")
        print(f"  hooks: {', '.join(plugin.hooks) or '-'}")
        settings = msgspec.json.encode(plugin.settings).decode()
        print(f"  settings: {settings}")
    return 0


def _database(args: argparse.Namespace, config: Config) -> tuple[str | None, Path]:
    """The PostgreSQL named by the options, the environment or the config (None: the
    embedded one), and the data directory."""
    data_dir: Path = args.data_dir or Path(config.server.data_dir)
    database_url: str | None = (
        args.database_url or os.environ.get("CORRAL_DATABASE_URL") or config.server.database_url
    )
    return database_url, data_dir


def _token(args: argparse.Namespace, config: Config) -> int:
    database_url, data_dir = _database(args, config)
    embedded = EmbeddedPostgres(data_dir) if database_url is None else None
    try:
        url = embedded.url if embedded is not None else database_url
        assert url is not None
        return asyncio.run(_token_action(args, url))
    finally:
        if embedded is not None:
            embedded.stop()


async def _token_action(args: argparse.Namespace, url: str) -> int:
    try:
        return await _with_tokens(url, lambda tokens: _token_do(args, tokens))
    except CorralError as exc:
        print(f"corral: {exc.message}", file=sys.stderr)
        return 2 if isinstance(exc, Invalid) else 1


async def _token_do(args: argparse.Namespace, tokens: Tokens) -> int:
    if args.token_command == "create":
        token_id, secret = await tokens.create(args.name, args.role)
        print(f"token {token_id} for {args.role} {args.name!r} (shown once; keep it secret):")
        print(secret)
    elif args.token_command == "list":
        rows = [["ID", "NAME", "ROLE", "CREATED", "REVOKED"]]
        for t in await tokens.list():
            revoked = "" if t.revoked is None else _when(t.revoked)
            rows.append([str(t.id), t.name, t.role, _when(t.created), revoked])
        commands.print_table(rows, sys.stdout)
    else:
        await tokens.revoke(args.id)
        print(f"token {args.id} revoked")
    return 0


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


async def _with_tokens(url: str, action: Callable[[Tokens], Awaitable[T]]) -> T:
    """Run `action` on the tokens of the database at `url` (migrated first)."""
    db = await Database.connect(url, min_size=1, max_size=1)
    try:
        await db.read(migrate.apply)
        return await action(Tokens(db))
    finally:
        await db.close()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _serve(args: argparse.Namespace, config: Config) -> int:
    host: str = args.host or config.server.host
    port: int = config.server.port if args.port is None else args.port
    database_url, data_dir = _database(args, config)
    # what the app keeps on disk (the secrets' key) goes where the options say
    config = msgspec.structs.replace(
        config, server=msgspec.structs.replace(config.server, data_dir=str(data_dir))
    )
    plugins = Plugins(config.plugins)
    # uvicorn re-raises SIGTERM once it has shut down; turn it into an exit so the
    # embedded PostgreSQL and the local worker below are stopped cleanly too
    signal.signal(signal.SIGTERM, _exit_on_signal)
    embedded: EmbeddedPostgres | None = None
    local_worker: subprocess.Popen[bytes] | None = None
    local_token: int | None = None
    try:
        if database_url is None:
            embedded = EmbeddedPostgres(data_dir)
            database_url = embedded.url
            logging.getLogger("corral").info("embedded PostgreSQL in %s", embedded.path)
        # migrated, and the secrets' key able to open them, before anything listens
        asyncio.run(vault.preflight(database_url, config))
        secured = asyncio.run(_with_tokens(database_url, lambda t: t.required()))
        if not secured and not _loopback(host):
            print(_OPEN_REFUSED.format(host=host), file=sys.stderr)
            return 2
        app = create_app(config, database_url, plugins)
        if args.local_worker:
            secret = ""
            if secured:
                # its own token for this run of the server, revoked on the way out
                local_token, secret = asyncio.run(
                    _with_tokens(database_url, lambda t: t.create(_LOCAL_WORKER, "worker"))
                )
            local_worker = _start_local_worker(host, port, secret)
        # open picks are long polls: on the way out, cut them short (workers retry)
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level="info",
            access_log=config.server.access_log,
            timeout_graceful_shutdown=3,
        )
    except KeyboardInterrupt:
        pass
    finally:
        if local_worker is not None:
            local_worker.terminate()
            local_worker.wait(timeout=30)
        if local_token is not None and database_url is not None:
            asyncio.run(_with_tokens(database_url, lambda t: t.revoke(local_token)))
        if embedded is not None:
            embedded.stop()
    return 0


def _start_local_worker(host: str, port: int, token: str) -> "subprocess.Popen[bytes]":
    # it retries until the server listens
    address = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    # the token goes through the environment, not the command line others can read
    env = {**os.environ, "CORRAL_TOKEN": token} if token else None
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "api.cli",
            "worker",
            "--server",
            f"http://{address}:{port}",
            "--name",
            _LOCAL_WORKER,
            "--slots",
            str(os.cpu_count() or 1),
        ],
        env=env,
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _resources(text: str) -> dict[str, float]:
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


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
