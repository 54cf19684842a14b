"""The server's side of the `corral` command: `serve`, `token`, `plugins`, and `worker` (the
agent). api/cli.py imports this module only for these commands: it brings Litestar,
asyncpg, uvicorn and the core, which the client commands do without."""

import argparse
import asyncio
import ipaddress
import logging
import multiprocessing
import multiprocessing.connection
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

from api.app import create_server
from api.hot import HotRoutes
from core import migrate, vault
from core.config import Config, ConfigError, load
from core.db import Database
from core.embedded import EmbeddedPostgres
from core.errors import CorralError, Invalid
from core.plugins import Plugins
from core.tokens import Tokens
from worker.agent import run_agent
from worker.machine import detected_resources
from worker.output import plain_table

_LOCAL_WORKER = f"{socket.gethostname()}-local"
_OPEN_REFUSED = """\
corral: refusing to listen on {host}: no API token exists yet, so anyone who can reach
this address could submit commands that run on your render nodes.
Create an admin token first (same --data-dir or --database-url as the server):

    corral token create --role admin --name <your name>

then give workers a worker token each (corral token create --role worker --name <host>)
and users a user token (--role user). Without tokens, listen on 127.0.0.1 only."""
T = TypeVar("T")


def run(args: argparse.Namespace) -> int:
    """`serve`, `token` or `plugins`."""
    _logging()
    try:
        config = load(args.config)
        if args.command == "serve":
            return _serve(args, config)
        if args.command == "plugins":
            return _plugins(config)
        return _token(args, config)
    except ConfigError as exc:
        source = getattr(args, "config", None)
        where = f"config file {source}: " if source and str(source) not in str(exc) else ""
        print(f"corral: {where}{exc}", file=sys.stderr)
        return 2


def worker(args: argparse.Namespace) -> int:
    """`corral worker`: the agent, until it is stopped."""
    _logging()
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


def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("apscheduler", "httpx", "pgserver"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


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
        plain_table(rows, sys.stdout)
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
    affinity: str | None = (
        args.local_worker_affinity
        if args.local_worker_affinity is not None
        else config.server.local_worker_affinity
    )
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
        processes: int = args.processes or config.server.processes
        app = create_server(config, database_url, plugins) if processes == 1 else None
        if args.local_worker:
            secret = ""
            if secured:
                # its own token for this run of the server, revoked on the way out
                local_token, secret = asyncio.run(
                    _with_tokens(database_url, lambda t: t.create(_LOCAL_WORKER, "worker"))
                )
            local_worker = _start_local_worker(host, port, secret, affinity)
        if app is not None:
            _Server(app, _uvicorn_config(app, host, port, config)).run()
        else:
            replicas = _start_replicas(processes, host, port, config, database_url)
            try:
                # until one ends (a crash, or a signal its own): then the others go too,
                # so that a supervisor restarting `corral serve` restarts them all
                multiprocessing.connection.wait([r.sentinel for r in replicas])
            finally:
                _stop_replicas(replicas)
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


def _uvicorn_config(app: HotRoutes | str, host: str, port: int, config: Config) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        access_log=config.server.access_log,
        timeout_graceful_shutdown=3,
    )


def _start_replicas(
    count: int, host: str, port: int, config: Config, database_url: str
) -> list[multiprocessing.process.BaseProcess]:
    """`count` server processes on one socket bound here: each is a whole server (its own
    app, pool, planner and passes) as several `corral serve` on one database are, so the
    kernel spreads the connections over every core. Started fresh (spawn), not forked, so
    that each has its own metrics label, registry and event loop."""
    bound = _uvicorn_config("corral", host, port, config).bind_socket()
    spawn = multiprocessing.get_context("spawn")
    replicas: list[multiprocessing.process.BaseProcess] = [
        spawn.Process(
            target=_replica,
            args=(config, database_url, host, port, bound),
            name=f"corral-serve-{n + 1}",
        )
        for n in range(count)
    ]
    for replica in replicas:
        replica.start()
    # the replicas hold it now; this process only watches them
    bound.close()
    return replicas


def _replica(config: Config, database_url: str, host: str, port: int, bound: socket.socket) -> None:
    """One of the server processes of `corral serve --processes N`."""
    _logging()
    app = create_server(config, database_url)
    _Server(app, _uvicorn_config(app, host, port, config)).run(sockets=[bound])


def _stop_replicas(replicas: list[multiprocessing.process.BaseProcess]) -> None:
    for replica in replicas:
        if replica.is_alive():
            replica.terminate()
    for replica in replicas:
        replica.join(timeout=30)
        if replica.is_alive():
            replica.kill()
            replica.join()


class _Server(uvicorn.Server):
    """uvicorn, ending the workers' open picks (long polls) first when it shuts down:
    left to its graceful timeout, uvicorn cancels them, and each cancelled request logs
    a CancelledError traceback. Answered at once, the workers just ask again later."""

    def __init__(self, app: HotRoutes, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        core = getattr(self._app.app.state, "core", None)
        if core is not None:
            core.picks.close()
        await super().shutdown(sockets)


def _start_local_worker(
    host: str, port: int, token: str, affinity: str | None
) -> "subprocess.Popen[bytes]":
    # it retries until the server listens
    address = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    # the token goes through the environment, not the command line others can read
    env = {**os.environ, "CORRAL_TOKEN": token} if token else None
    # without rules given, none are sent: the worker keeps the ones it has
    rules = [] if affinity is None else ["--affinity", affinity]
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
            *rules,
        ],
        env=env,
    )


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)
