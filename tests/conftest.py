"""Test fixtures: one embedded PostgreSQL per session, a fresh database per test (copied
from a migrated template), and a real Corral HTTP server on a loopback port."""

import asyncio
import itertools
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from litestar import Litestar
from pgserver.postgres_server import PostgresServer, get_server

from api.app import create_app, create_server
from api.hot import HotRoutes
from core import migrate
from core.config import Config, ServerConfig

TEMPLATE = "corral_template"
logging.getLogger("pgserver").setLevel(logging.WARNING)
_names = itertools.count()


class Sql:
    """Synchronous access to a test database, for setting up and checking state."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _run(self, method: str, sql: str, *args: Any) -> Any:
        async def go() -> Any:
            conn = await asyncpg.connect(self.url)
            try:
                return await getattr(conn, method)(sql, *args)
            finally:
                await conn.close()

        return asyncio.run(go())

    def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = self._run("fetch", sql, *args)
        return rows

    def fetchval(self, sql: str, *args: Any) -> Any:
        return self._run("fetchval", sql, *args)

    def execute(self, sql: str, *args: Any) -> None:
        self._run("execute", sql, *args)

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every Corral table, to show a refused request changed nothing."""
        tables = [
            "jobs", "dependencies", "affinities", "workers", "worker_rules", "events",
            "job_types", "job_type_revisions", "services", "service_groups",
            "service_allocations", "logger_defaults", "logger_overrides", "documents",
            "genvid_secrets", "service_index", "workflows", "workflow_tasks", "workflow_units",
            "workflow_reports", "workflow_clients", "awe_nodes", "awe_node_parts", "client_groups",
        ]  # fmt: skip
        return {
            t: [tuple(r) for r in self.fetch(f"SELECT * FROM {t} ORDER BY ({t}.*)::text")]
            for t in tables
        }


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = get_server(tmp_path_factory.mktemp("pg") / "data", cleanup_mode="delete")
    admin = Sql(server.get_uri())
    admin.execute(f"CREATE DATABASE {TEMPLATE}")

    async def migrate_template() -> None:
        conn = await asyncpg.connect(server.get_uri(TEMPLATE))
        try:
            await migrate.apply(conn)  # type: ignore[arg-type]
        finally:
            await conn.close()

    asyncio.run(migrate_template())
    yield server
    server.cleanup()


@pytest.fixture
def database_url(pg_server: PostgresServer) -> Iterator[str]:
    name = f"test_{os.getpid()}_{next(_names)}"
    admin = Sql(pg_server.get_uri())
    admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    yield pg_server.get_uri(name)
    admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def sql(database_url: str) -> Sql:
    return Sql(database_url)


class ServerThread:
    """A real uvicorn server on 127.0.0.1 and a free port, in a thread of this process:
    what `corral serve` serves, or with `hot=False` the Litestar app alone (api/hot.py)."""

    def __init__(self, config: Config, database_url: str, *, hot: bool = True) -> None:
        # the Litestar app (its state holds the core once started), hot routes or not
        app: HotRoutes | Litestar
        if hot:
            app = create_server(config, database_url)
            self.app = app.app
        else:
            app = self.app = create_app(config, database_url)
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    # what the server keeps on disk (the key of secret settings) stays in the test's folder
    return Config(server=ServerConfig(data_dir=str(tmp_path)))


@pytest.fixture
def api(config: Config, database_url: str) -> Iterator[httpx.Client]:
    with ServerThread(config, database_url) as base, httpx.Client(base_url=base) as client:
        yield client


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


pytest_plugins = ["tests.processes"]
