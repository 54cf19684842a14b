"""AWE's own Go worker (awe-worker 0.9.68) against Corral when things go wrong: a command
exiting 42, a command failing on every client, a job suspended while it runs and resumed,
a completed job recomputed, and a worker killed in the middle of a workunit."""

import json
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.config import AweConfig, Config, DispatchConfig, ServerConfig
from tests.awe import awe_worker, awe_worker_binary, wait_for

__all__ = ["awe_worker_binary"]


@pytest.fixture
def config(tmp_path: Path) -> Config:
    # idle workers call every 10 s at the least, so a silent one is lost after 15 s
    return Config(
        server=ServerConfig(data_dir=str(tmp_path / "server")),
        awe=AweConfig(max_work_failure=2),
        dispatch=DispatchConfig(worker_timeout=15.0, dead_worker_interval=1.0),
    )


def submit(api: httpx.Client, *tasks: dict[str, Any]) -> str:
    document = {"info": {"name": "faults", "user": "ana"}, "tasks": list(tasks)}
    answer = api.post("/awe/job", files={"upload": ("wf.json", json.dumps(document).encode())})
    assert answer.status_code == 200, answer.text
    job_id: str = answer.json()["data"]["id"]
    return job_id


def bash(taskid: str, script: str, **more: Any) -> dict[str, Any]:
    return {"taskid": taskid, "cmd": {"name": "bash", "args": f"-c '{script}'"}, **more}


def job(api: httpx.Client, job_id: str) -> dict[str, Any]:
    answer = api.get(f"/awe/job/{job_id}")
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


def busy_clients(api: httpx.Client) -> list[str]:
    return [c["id"] for c in api.get("/awe/client", params={"busy": ""}).json()["data"]]


def test_exit_42_fails_the_job_permanently(
    api: httpx.Client, awe_worker_binary: Path, tmp_path: Path
) -> None:
    job_id = submit(api, bash("0", "echo cannot; echo no input >&2; exit 42"))
    with awe_worker(awe_worker_binary, str(api.base_url), tmp_path / "w1"):
        wait_for(lambda: job(api, job_id)["state"] == "failed-permanent", timeout=90)
    state = job(api, job_id)
    assert state["error"]["servernotes"] == "exit code 42 encountered"
    assert state["error"]["workfailed"] == f"{job_id}_0_0"
    assert state["tasks"][0]["state"] == "failed-permanent"
    # final: a resume is refused and changes nothing
    assert api.put(f"/awe/job/{job_id}", params={"resume": ""}).status_code == 400
    assert job(api, job_id)["state"] == "failed-permanent"


def test_a_command_failing_everywhere_is_retried_on_another_client_then_suspended(
    api: httpx.Client, awe_worker_binary: Path, tmp_path: Path
) -> None:
    job_id = submit(
        api, bash("0", "echo trying; hostname >> " + str(tmp_path / "runs") + "; exit 3")
    )
    with (
        awe_worker(awe_worker_binary, str(api.base_url), tmp_path / "w1", name="w1"),
        awe_worker(awe_worker_binary, str(api.base_url), tmp_path / "w2", name="w2"),
    ):
        wait_for(lambda: job(api, job_id)["state"] == "suspend", timeout=120)
    state = job(api, job_id)
    assert state["error"]["servernotes"] == "workunit failed 2 time(s)"
    assert state["error"]["status"] == "suspend"
    # [awe] max_work_failure = 2 runs, one on each client: it never goes back to the
    # client that failed it
    assert len((tmp_path / "runs").read_text().splitlines()) == 2
    clients = api.get("/awe/client").json()["data"]
    assert sorted(c["total_failed"] for c in clients) == [1, 1]
    assert all(c["skip_work"] == [f"{job_id}_0_0"] for c in clients)


def test_a_running_job_suspended_stops_on_its_worker_and_resumed_runs_again(
    api: httpx.Client, awe_worker_binary: Path, tmp_path: Path
) -> None:
    mark, runs = tmp_path / "started", tmp_path / "runs"
    # the first run waits; the run after the resume finds the mark and ends. What it did
    # goes to a file, not to stdout: awe-worker copies a command's stdout in a goroutine
    # that its cmd.Wait() races, so a short command's report can come without it.
    job_id = submit(
        api,
        bash("0", f"if [ -e {mark} ]; then echo again >> {runs}; else touch {mark}; sleep 300; fi"),
    )
    with awe_worker(awe_worker_binary, str(api.base_url), tmp_path / "w1"):
        wait_for(lambda: mark.exists() and job(api, job_id)["state"] == "in-progress", timeout=90)
        suspended = api.put(f"/awe/job/{job_id}", params={"suspend": ""})
        assert suspended.json()["data"] == f"job suspended: {job_id}"
        # the worker hears `discard` at its next heartbeat and kills the command
        wait_for(lambda: not busy_clients(api), timeout=60)
        assert job(api, job_id)["state"] == "suspend"
        resumed = api.put(f"/awe/job/{job_id}", params={"resume": ""})
        assert resumed.json()["data"] == f"job resumed: {job_id}"
        wait_for(lambda: job(api, job_id)["state"] == "completed", timeout=90)
    assert runs.read_text() == "again\n"
    assert job(api, job_id)["resumed"] == 1


def test_a_completed_job_recomputed_from_a_task_runs_it_and_its_downstream_again(
    api: httpx.Client, awe_worker_binary: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    job_id = submit(
        api,
        bash("0", f"echo 0 >> {runs}"),
        bash("1", f"echo 1 >> {runs}", dependsOn=["0"]),
        bash("2", f"echo 2 >> {runs}", dependsOn=["1"]),
    )
    with awe_worker(awe_worker_binary, str(api.base_url), tmp_path / "w1"):
        wait_for(lambda: job(api, job_id)["state"] == "completed", timeout=90)
        assert runs.read_text().split() == ["0", "1", "2"]
        answer = api.put(f"/awe/job/{job_id}", params={"recompute": "1"})
        assert answer.json()["data"] == f"job recompute started at task 1: {job_id}"
        wait_for(lambda: job(api, job_id)["state"] == "completed", timeout=90)
    # task 0 stays done; 1 and then 2 run again, in their order
    assert runs.read_text().split() == ["0", "1", "2", "1", "2"]
    assert job(api, job_id)["resumed"] == 1


def test_a_worker_killed_mid_workunit_is_dropped_and_its_workunit_runs_on_another(
    api: httpx.Client, awe_worker_binary: Path, tmp_path: Path
) -> None:
    mark, runs = tmp_path / "started", tmp_path / "runs"
    script = f"if [ -e {mark} ]; then echo second >> {runs}; else touch {mark}; sleep 300; fi"
    job_id = submit(api, bash("0", script))
    with awe_worker(awe_worker_binary, str(api.base_url), tmp_path / "w1", name="w1") as first:
        wait_for(lambda: mark.exists(), timeout=90)
        [lost] = busy_clients(api)
        # the worker and its command die at once, with no word to the server
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait(timeout=10)
        with awe_worker(awe_worker_binary, str(api.base_url), tmp_path / "w2", name="w2"):
            wait_for(lambda: job(api, job_id)["state"] == "completed", timeout=120)
    assert api.get(f"/awe/client/{lost}").json()["error"] == ["Client not found"]
    assert runs.read_text() == "second\n"
