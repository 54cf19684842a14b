"""The `corral` command."""

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import FrameType

import msgspec
import uvicorn

from api.app import create_app
from core.config import Config, ConfigError, load
from core.embedded import EmbeddedPostgres
from core.plugins import Plugins
from worker import commands
from worker.agent import run_agent


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
            run_agent(args.server, args.name, args.affinity, args.slots)
            return 0
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

    serve = sub.add_parser("serve", help="run the server (embedded PostgreSQL by default)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 19211)")
    serve.add_argument(
        "--data-dir", type=Path, help="where the embedded PostgreSQL lives (default ./corral-data)"
    )
    serve.add_argument(
        "--database-url",
        help="use this PostgreSQL (>= 14) instead of the embedded one; "
        "also taken from CORRAL_DATABASE_URL",
    )
    serve.add_argument("--config", type=Path, help="a TOML configuration file")
    serve.add_argument(
        "--local-worker",
        action="store_true",
        help="also run one worker on this machine, with as many slots as cores",
    )

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

    submit = sub.add_parser("submit", help="submit a command or a JSON file of a job tree")
    submit.add_argument("--server", default=server_default)
    submit.add_argument("--file", type=Path, help="a JSON job tree (see docs/user-guide.md)")
    submit.add_argument("--title", default="")
    submit.add_argument("--parent", type=int, default=0)
    submit.add_argument("--dir", default="")
    submit.add_argument("--priority", type=int, default=1000)
    submit.add_argument("--retry", type=int, default=0)
    submit.add_argument("--timeout", type=int, default=0)
    submit.add_argument("--affinity", default="")
    submit.add_argument("--user", default=os.environ.get("USER", ""))
    submit.add_argument("--wait", action="store_true", help="show progress until it is done")
    submit.add_argument("cmd", nargs=argparse.REMAINDER, help="the command, after --")

    jobs = sub.add_parser("jobs", help="list jobs (the roots, or the children of --parent)")
    jobs.add_argument("--server", default=server_default)
    jobs.add_argument("--parent", type=int, default=0)

    workers = sub.add_parser("workers", help="list the workers")
    workers.add_argument("--server", default=server_default)
    return parser


def _client_command(args: argparse.Namespace) -> int:
    if args.command == "jobs":
        commands.list_jobs(args.server, args.parent)
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
            user=args.user,
        )
    else:
        raise commands.CommandError("nothing to submit: give a command after -- or --file")
    job_id = commands.submit_tree(args.server, root, args.parent)
    print(job_id)
    if args.wait:
        return 0 if commands.wait(args.server, job_id) == "FINISHED" else 1
    return 0


def _plugins(config: Config) -> int:
    for plugin in Plugins(config.plugins).loaded:
        state = "enabled" if plugin.enabled else "disabled"
        print(f"{plugin.name} ({state}) from {plugin.source}")
        print(f"  hooks: {', '.join(plugin.hooks) or '-'}")
        settings = msgspec.json.encode(plugin.settings).decode()
        print(f"  settings: {settings}")
    return 0


def _serve(args: argparse.Namespace, config: Config) -> int:
    host: str = args.host or config.server.host
    port: int = config.server.port if args.port is None else args.port
    data_dir: Path = args.data_dir or Path(config.server.data_dir)
    database_url: str | None = (
        args.database_url or os.environ.get("CORRAL_DATABASE_URL") or config.server.database_url
    )
    plugins = Plugins(config.plugins)
    # uvicorn re-raises SIGTERM once it has shut down; turn it into an exit so the
    # embedded PostgreSQL and the local worker below are stopped cleanly too
    signal.signal(signal.SIGTERM, _exit_on_signal)
    embedded: EmbeddedPostgres | None = None
    local_worker: subprocess.Popen[bytes] | None = None
    try:
        if database_url is None:
            embedded = EmbeddedPostgres(data_dir)
            database_url = embedded.url
            logging.getLogger("corral").info("embedded PostgreSQL in %s", embedded.path)
        app = create_app(config, database_url, plugins)
        if args.local_worker:
            local_worker = _start_local_worker(host, port)
        # open picks are long polls: on the way out, cut them short (workers retry)
        uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=3)
    except KeyboardInterrupt:
        pass
    finally:
        if local_worker is not None:
            local_worker.terminate()
            local_worker.wait(timeout=30)
        if embedded is not None:
            embedded.stop()
    return 0


def _start_local_worker(host: str, port: int) -> "subprocess.Popen[bytes]":
    # it retries until the server listens
    address = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "api.cli",
            "worker",
            "--server",
            f"http://{address}:{port}",
            "--name",
            f"{socket.gethostname()}-local",
            "--slots",
            str(os.cpu_count() or 1),
        ]
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
