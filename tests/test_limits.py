"""Input limits ([limits]): children per group, dependencies per job, bytes of output per
request. Each is a 4xx naming the limit, and changes nothing; `corral worker` splits long
output so a chatty job never meets the limit."""

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.config import Config, DispatchConfig, LimitsConfig
from tests.conftest import Sql
from tests.farm import submit
from tests.processes import Processes

V2 = "/api/v2/workers"


@pytest.fixture
def config() -> Config:
    return Config(
        limits=LimitsConfig(max_children=3, max_dependencies=2, max_log_chunk=100),
        dispatch=DispatchConfig(interval=0.2, pick_wait=2.0),
    )


def refused(response: httpx.Response, *words: str) -> None:
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    for word in words:
        assert word in detail, detail


def test_a_group_takes_children_up_to_the_limit_and_refuses_more(
    api: httpx.Client, sql: Sql
) -> None:
    group = submit(api, title="shot")
    for i in range(3):
        submit(api, parent=group, title=f"f{i}", command="true")
    before = sql.snapshot()
    refused(
        api.put("/api/jobs", json={"parent": group, "title": "f3", "command": "true"}),
        "3 children at most",
    )
    assert sql.snapshot() == before


def test_a_bulk_submission_past_the_children_limit_creates_nothing(
    api: httpx.Client, sql: Sql
) -> None:
    group = submit(api, title="shot")
    submit(api, parent=group, title="f0", command="true")
    before = sql.snapshot()
    jobs = [{"title": f"f{i}", "command": "true"} for i in range(3)]
    refused(api.post("/api/v2/jobs/bulk", json={"parent": group, "jobs": jobs}), "3 children")
    assert sql.snapshot() == before


def test_moving_a_job_into_a_full_group_is_refused(api: httpx.Client, sql: Sql) -> None:
    full = submit(api, title="full")
    for i in range(3):
        submit(api, parent=full, title=f"f{i}", command="true")
    loose = submit(api, title="loose", command="true")
    before = sql.snapshot()
    refused(api.post("/api/jobs", json={str(loose): {"parent": full}}), "3 children")
    assert sql.snapshot() == before


def test_dependencies_past_the_limit_are_refused_on_submit_and_on_set(
    api: httpx.Client, sql: Sql
) -> None:
    a, b, c = (submit(api, title=t, command="true") for t in "abc")
    job = submit(api, title="two", command="true", dependencies=[a, b])
    before = sql.snapshot()
    refused(
        api.put("/api/jobs", json={"title": "three", "command": "true", "dependencies": [a, b, c]}),
        "2 jobs at most",
    )
    refused(api.post(f"/api/jobs/{job}/dependencies", json=[a, b, c]), "2 jobs at most")
    assert sql.snapshot() == before


def test_output_past_the_chunk_limit_is_refused_and_not_logged(api: httpx.Client) -> None:
    api.post(f"{V2}/register", json={"name": "node-a"}).raise_for_status()
    job = submit(api, title="chatty", command="true")
    runs: list[dict[str, Any]] = []
    while not runs:
        picked = api.post(f"{V2}/node-a/pick", json={"wait": 1}, timeout=30)
        runs = picked.json()["runs"]
    event = runs[0]["event"]
    refused(
        api.post(f"{V2}/node-a/heartbeat", json={"runs": [{"event": event, "output": "x" * 101}]}),
        "at most 100 bytes",
    )
    refused(
        api.post(f"{V2}/node-a/finish", json={"event": event, "exit_code": 0, "output": "é" * 51}),
        "102 bytes",
    )
    assert api.get(f"/api/jobs/{job}/log").json() == ""
    assert api.get(f"/api/jobs/{job}").json()["state"] == "WORKING"
    ok = api.post(f"{V2}/node-a/heartbeat", json={"runs": [{"event": event, "output": "y" * 100}]})
    assert ok.json()["runs"][0]["action"] == "continue"
    assert api.get(f"/api/jobs/{job}/log").json() == "y" * 100


def test_the_worker_sends_long_output_in_pieces_and_the_log_is_whole(
    processes: Processes, tmp_path: Path, database_url: str
) -> None:
    config = tmp_path / "corral.toml"
    config.write_text(f'[server]\ndatabase_url = "{database_url}"\n[dispatch]\npick_wait = 2\n')
    server = processes.serve(["--config", str(config)])
    server.wait_ready()
    processes.worker(server.url, "node-1")
    # 1.5 MB of multi-byte characters: past the default 1 MiB limit of one request, and
    # cut in pieces that must not split a character
    line = "é" * 499 + "\n"
    command = f'python3 -c "import sys; sys.stdout.write({line!r} * 1500)"'
    created = httpx.put(f"{server.url}/api/jobs", json={"title": "chatty", "command": command})
    job = created.json()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        deadline = time.monotonic() + 60
        while client.get(f"/api/jobs/{job}").json()["state"] not in ("FINISHED", "ERROR"):
            assert time.monotonic() < deadline, "the job did not end within 60 s"
            time.sleep(0.1)
        assert client.get(f"/api/jobs/{job}").json()["state"] == "FINISHED"
        assert client.get(f"/api/jobs/{job}/log").json() == line * 1500
