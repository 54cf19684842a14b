"""A real farm: `corral serve` processes, `corral worker` processes running real commands,
one PostgreSQL. Order, affinities, pause, timeouts, lost workers, server restarts and
several servers on one database."""

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Sql
from tests.processes import Processes, Served

FAST = """
[dispatch]
interval = 0.5
pick_wait = 5
worker_timeout = 3
timeout_interval = 0.3
dead_worker_interval = 0.3
retry_interval = 0.2
"""


def until(what: str, check: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not {what} after {seconds} s")
        time.sleep(0.1)


@pytest.fixture
def farm_config(tmp_path: Path, database_url: str) -> Path:
    path = tmp_path / "corral.toml"
    path.write_text(f'[server]\ndatabase_url = "{database_url}"\n{FAST}')
    return path


@pytest.fixture
def server(processes: Processes, farm_config: Path) -> Served:
    served = processes.serve(["--config", str(farm_config)])
    served.wait_ready()
    return served


def put(server: Served, **job: Any) -> int:
    response = httpx.put(f"{server.url}/api/jobs", json=job)
    assert response.status_code == 200, response.text
    job_id: int = response.json()
    return job_id


def job(server: Served, job_id: int) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(f"{server.url}/api/jobs/{job_id}").json()
    return found


def state(server: Served, job_id: int) -> str:
    return str(job(server, job_id)["state"])


def runs(sql: Sql, job_id: int) -> list[tuple[str, str, float, float]]:
    """(worker, state, start, end) of each run of a job, in order."""
    rows = sql.fetch(
        "SELECT worker, state, start, start + duration AS finish FROM events"
        " WHERE job_id = $1 ORDER BY id",
        job_id,
    )
    return [(r["worker"], r["state"], r["start"], r["finish"]) for r in rows]


def test_a_tree_runs_in_dependency_order_on_fitting_workers(
    processes: Processes, server: Served, sql: Sql
) -> None:
    processes.worker(server.url, "linux-1", affinity="LINUX", slots=2)
    processes.worker(server.url, "gpu-1", affinity="LINUX,GPU", slots=2)
    shot = put(server, title="shot")
    prep = put(server, parent=shot, title="prep", command="echo prep", affinity="LINUX")
    frames = [
        put(
            server,
            parent=shot,
            title=f"frame {i}",
            command=f"echo frame {i}",
            affinity="GPU",
            dependencies=[prep],
        )
        for i in range(3)
    ]
    comp = put(server, parent=shot, title="comp", command="echo comp", dependencies=frames)
    until("finished", lambda: state(server, shot) == "FINISHED")

    for frame in frames:
        [(worker, event_state, start, _)] = runs(sql, frame)
        assert (worker, event_state) == ("gpu-1", "FINISHED"), "GPU frames run on the GPU node"
        assert start >= runs(sql, prep)[0][3], "a frame starts after prep finished"
    [(_, _, comp_start, _)] = runs(sql, comp)
    assert comp_start >= max(runs(sql, f)[0][3] for f in frames)
    counters = job(server, shot)
    assert (counters["total"], counters["total_finished"], counters["progress"]) == (5, 5, 1.0)
    assert httpx.get(f"{server.url}/api/jobs/{frames[0]}/log").json() == "frame 0\n"


def test_pause_kills_running_descendants_and_start_resumes_them(
    processes: Processes, server: Served, sql: Sql, tmp_path: Path
) -> None:
    processes.worker(server.url, "node-1")
    marker, pid_file = tmp_path / "ran-once", tmp_path / "pid"
    # the first run records its pid and hangs; a later run finishes at once
    command = (
        f"if [ -f {marker} ]; then echo again; exit 0; fi; "
        f"touch {marker}; echo $$ > {pid_file}; exec sleep 600"
    )
    shot = put(server, title="shot")
    frame = put(server, parent=shot, title="hangs", command=command)
    until("running", lambda: pid_file.exists() and pid_file.read_text().strip() != "")
    pid = int(pid_file.read_text())

    assert httpx.post(f"{server.url}/api/pausejobs", json=[shot]).json() == 1
    assert state(server, frame) == "PAUSED"
    until("killed", lambda: not _alive(pid))
    [(_, event_state, _, _)] = runs(sql, frame)
    assert event_state == "CANCELED"
    assert sql.fetchval("SELECT state FROM jobs WHERE id = $1", frame) == "WAITING"

    assert httpx.post(f"{server.url}/api/startjobs", json=[shot]).json() == 1
    until("finished", lambda: state(server, frame) == "FINISHED")
    assert [r[1] for r in runs(sql, frame)] == ["CANCELED", "FINISHED"]


def test_a_job_past_its_timeout_is_killed_retried_then_error(
    processes: Processes, server: Served, sql: Sql
) -> None:
    processes.worker(server.url, "node-1")
    frame = put(server, title="too slow", command="sleep 600", timeout=1, retry=2)
    until("in error", lambda: state(server, frame) == "ERROR")
    assert [r[1] for r in runs(sql, frame)] == ["TIMEOUT", "TIMEOUT", "TIMEOUT"]
    assert job(server, frame)["run_done"] == 3
    reasons = {r["reason"] for r in sql.fetch("SELECT reason FROM events WHERE job_id = $1", frame)}
    assert reasons == {"ran longer than its timeout of 1 s"}


def test_a_killed_worker_has_its_job_requeued(
    processes: Processes, server: Served, sql: Sql, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    doomed = processes.worker(server.url, "doomed")
    frame = put(
        server,
        title="survives its worker",
        command=f"if [ -f {pid_file} ]; then exit 0; fi; echo $$ > {pid_file}; exec sleep 600",
    )
    until("running on doomed", lambda: pid_file.exists() and pid_file.read_text().strip() != "")
    doomed.process.send_signal(signal.SIGKILL)
    doomed.process.wait()
    os.kill(int(pid_file.read_text()), signal.SIGKILL)  # the orphaned command

    until("requeued", lambda: state(server, frame) == "WAITING")
    workers = {w["name"]: w for w in httpx.get(f"{server.url}/api/workers").json()}
    assert workers["doomed"]["state"] == "TIMEOUT"
    processes.worker(server.url, "rescuer")
    until("finished", lambda: state(server, frame) == "FINISHED")
    assert [(r[0], r[1]) for r in runs(sql, frame)] == [
        ("doomed", "TIMEOUT"),
        ("rescuer", "FINISHED"),
    ]


def test_a_server_restart_mid_run_loses_nothing(
    processes: Processes, farm_config: Path, sql: Sql
) -> None:
    first = processes.serve(["--config", str(farm_config)])
    first.wait_ready()
    for name in ("node-1", "node-2"):
        processes.worker(first.url, name, slots=2)
    group = put(first, title="batch")
    frames = [put(first, parent=group, title=f"f{i}", command="sleep 0.3") for i in range(20)]
    until("half way", lambda: job(first, group)["total_finished"] >= 5)
    first.process.send_signal(signal.SIGKILL)
    first.process.wait()
    time.sleep(1)  # the workers find the server gone and retry meanwhile

    second = processes.serve(["--config", str(farm_config)], port=first.port)
    second.wait_ready()
    until("all finished", lambda: job(second, group)["total_finished"] == 20, seconds=120)
    for frame in frames:
        finished = [r for r in runs(sql, frame) if r[1] == "FINISHED"]
        assert len(finished) == 1, f"job {frame} finished {len(finished)} times"
    _assert_no_overlapping_runs(sql)


def test_two_servers_on_one_database_never_run_a_job_twice(
    processes: Processes, farm_config: Path, sql: Sql
) -> None:
    servers = [processes.serve(["--config", str(farm_config)]) for _ in range(2)]
    for s in servers:
        s.wait_ready()
    for i in range(4):
        processes.worker(servers[i % 2].url, f"node-{i}", slots=2)
    group = put(servers[0], title="batch")
    for i in range(60):
        put(servers[i % 2], parent=group, title=f"f{i}", command="true")
    until("all finished", lambda: job(servers[1], group)["total_finished"] == 60, seconds=120)
    counts = sql.fetch(
        "SELECT job_id, count(*) AS n FROM events GROUP BY job_id HAVING count(*) <> 1"
    )
    assert counts == [], "every job ran exactly once"
    _assert_no_overlapping_runs(sql)
    used = {r["worker"] for r in sql.fetch("SELECT DISTINCT worker FROM events")}
    assert len(used) >= 2, "both servers' workers took part"


def _assert_no_overlapping_runs(sql: Sql) -> None:
    overlaps = sql.fetch(
        """SELECT a.job_id FROM events a JOIN events b
             ON a.job_id = b.job_id AND a.id < b.id
            WHERE b.start < a.start + a.duration AND a.state <> 'WORKING'
               OR (a.state = 'WORKING' AND b.state = 'WORKING')"""
    )
    assert overlaps == [], "no job ever ran twice at once"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its parent) counts as gone
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False
