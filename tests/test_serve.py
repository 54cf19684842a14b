"""`corral serve` as a real process: options, the embedded PostgreSQL, configuration
errors, migrations, and a clean stop."""

import asyncio
import re
import subprocess
from pathlib import Path

import asyncpg
import httpx
import pytest
from pgserver.postgres_server import PostgresServer

from core import migrate
from core.config import Config, load
from tests.conftest import ServerThread, Sql
from tests.farm import until
from tests.processes import CORRAL, Processes


def test_serve_on_a_database_url_and_stop_on_sigterm(
    processes: Processes, database_url: str
) -> None:
    server = processes.serve(["--database-url", database_url])
    server.wait_ready()
    assert httpx.put(f"{server.url}/api/jobs", json={"title": "t"}).json() == 1
    assert server.stop() == 0


def test_processes_share_the_port_and_stop_together(processes: Processes, tmp_path: Path) -> None:
    server = processes.serve(
        ["--data-dir", str(tmp_path / "data"), "--processes", "2", "--local-worker"]
    )
    server.wait_ready()
    labels = re.compile(r'corral_heartbeats_total\{process="[^"]*:(\d+)"')
    answered: set[int] = set()

    def both_answer() -> bool:
        # a new connection each time: the kernel hands each to whichever process accepts
        answered.update(int(pid) for pid in labels.findall(httpx.get(f"{server.url}/metrics").text))
        return len(answered) == 2

    until(both_answer, what="an answer from each of the two processes")
    assert server.process.pid not in answered
    # the replicas share the database as separate servers do: jobs submitted run
    jobs = [httpx.put(f"{server.url}/api/jobs", json={"title": "t", "command": "true"}).json()]
    jobs.append(httpx.put(f"{server.url}/api/jobs", json={"title": "u", "command": "true"}).json())
    until(
        lambda: all(
            httpx.get(f"{server.url}/api/jobs/{j}").json()["state"] == "FINISHED" for j in jobs
        ),
        what="the jobs to run",
    )
    assert server.stop() == 0
    # none of them outlives the command
    assert all(not Path(f"/proc/{pid}").exists() for pid in answered)
    assert "Traceback" not in server.output()


def test_database_url_from_the_environment(processes: Processes, database_url: str) -> None:
    server = processes.serve([], env={"CORRAL_DATABASE_URL": database_url})
    server.wait_ready()
    httpx.put(f"{server.url}/api/jobs", json={"title": "from env"})
    assert Sql(database_url).fetchval("SELECT title FROM jobs") == "from env"
    assert server.stop() == 0


def test_embedded_postgres_keeps_jobs_across_restarts_and_stops_cleanly(
    processes: Processes, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = processes.serve(["--data-dir", str(data)])
    first.wait_ready()
    job_id = httpx.put(f"{first.url}/api/jobs", json={"title": "kept"}).json()
    assert first.stop() == 0
    pid_file = data / "pg" / "postmaster.pid"
    assert not pid_file.exists(), "the embedded PostgreSQL is stopped with the server"

    second = processes.serve(["--data-dir", str(data)])
    second.wait_ready()
    assert httpx.get(f"{second.url}/api/jobs/{job_id}").json()["title"] == "kept"
    assert second.stop() == 0


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ("[server]\nprot = 1\n", "prot"),
        ('[limits]\nmax_depth = "deep"\n', "max_depth"),
        ("[nonsense]\n", "nonsense"),
        ("[server\n", "not valid TOML"),
        ('[coalition]\nweb_frontend = "no/such/folder"\n', "coalition.web_frontend"),
    ],
)
def test_a_bad_config_file_stops_start_up_naming_the_key(
    tmp_path: Path, toml: str, named: str
) -> None:
    config = tmp_path / "corral.toml"
    config.write_text(toml)
    result = subprocess.run(
        [*CORRAL, "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert named in result.stderr
    assert str(config) in result.stderr


def test_config_file_settings_apply(
    processes: Processes, tmp_path: Path, database_url: str
) -> None:
    config = tmp_path / "corral.toml"
    config.write_text(f'[server]\ndatabase_url = "{database_url}"\n\n[limits]\nmax_depth = 2\n')
    server = processes.serve(["--config", str(config)])
    server.wait_ready()
    root = httpx.put(f"{server.url}/api/jobs", json={"title": "root"}).json()
    child = httpx.put(f"{server.url}/api/jobs", json={"title": "child", "parent": root}).json()
    too_deep = httpx.put(f"{server.url}/api/jobs", json={"title": "x", "parent": child})
    assert too_deep.status_code == 400
    assert "2 levels" in too_deep.json()["detail"]
    assert server.stop() == 0


def test_migrations_run_once_and_are_recorded(database_url: str) -> None:
    async def go() -> tuple[list[str], list[str], list[int]]:
        conn = await asyncpg.connect(database_url)
        try:
            again = await migrate.apply(conn)  # type: ignore[arg-type]
            rows = await conn.fetch("SELECT version FROM corral_migrations ORDER BY version")
            return again, [m.name for m in migrate.available()], [r[0] for r in rows]
        finally:
            await conn.close()

    again, shipped, recorded = asyncio.run(go())
    assert again == [], "the template database already had every migration"
    assert recorded == [int(name[:4]) for name in shipped]


def test_concurrent_start_ups_apply_migrations_once(pg_server: PostgresServer) -> None:
    admin = Sql(pg_server.get_uri())
    admin.execute("CREATE DATABASE migrate_race")
    url = pg_server.get_uri("migrate_race")

    async def one() -> list[str]:
        conn = await asyncpg.connect(url)
        try:
            return await migrate.apply(conn)  # type: ignore[arg-type]
        finally:
            await conn.close()

    async def both() -> list[list[str]]:
        return list(await asyncio.gather(one(), one()))

    try:
        results = asyncio.run(both())
        shipped = [m.name for m in migrate.available()]
        assert sorted(results, key=len) == [[], shipped]
    finally:
        admin.execute("DROP DATABASE migrate_race WITH (FORCE)")


def test_the_coalition_frontend_folder_is_served_at_coalition(
    tmp_path: Path, database_url: str
) -> None:
    page = tmp_path / "public_html"
    (page / "js").mkdir(parents=True)
    (page / "index.html").write_text("<title>Coalition Server</title>")
    (page / "js" / "coalition.js").write_text("var page;")
    (tmp_path / "secret.txt").write_text("not the page's")
    # relative to the config file's folder
    config = load_config(tmp_path, '[coalition]\nweb_frontend = "public_html"\n')
    with ServerThread(config, database_url) as base, httpx.Client(base_url=base) as client:
        for path in ("/coalition/", "/coalition/index.html"):
            response = client.get(path)
            assert response.status_code == 200, path
            assert response.text == "<title>Coalition Server</title>"
            assert response.headers["content-type"].startswith("text/html")
        assert client.get("/coalition/js/coalition.js").text == "var page;"
        assert client.get("/coalition/../secret.txt").status_code == 404
        assert client.get("/coalition/%2e%2e/secret.txt").status_code == 404
        assert client.get("/coalition/nothing.js").status_code == 404


def load_config(folder: Path, toml: str) -> Config:
    path = folder / "corral.toml"
    path.write_text(toml)
    return load(path)


def test_without_the_setting_nothing_is_served_at_coalition(api: httpx.Client) -> None:
    assert api.get("/coalition/index.html").status_code == 404
