"""The AWE face's job operations: suspend, resume, recompute, resubmit, info changes and
delete, against a real server with a client checking work out over HTTP (docs/awe.md)."""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.config import AweConfig, Config, ServerConfig

CLIENT = "0c6f7c1e-1d1f-4c2a-8e3b-0a1b2c3d4e5f"
WORKFLOW: dict[str, Any] = {
    "info": {"name": "ops", "priority": 3},
    "tasks": [
        {"taskid": "0", "cmd": {"name": "bash", "args": "-c true"}},
        {"taskid": "1", "cmd": {"name": "bash", "args": "-c true"}, "dependsOn": ["0"]},
        {"taskid": "2", "cmd": {"name": "bash", "args": "-c true"}, "dependsOn": ["1"]},
    ],
}  # fmt: skip


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(server=ServerConfig(data_dir=str(tmp_path)), awe=AweConfig(checkout_wait=0.3))


@pytest.fixture
def job_id(api: httpx.Client) -> str:
    profile = {"id": CLIENT, "name": "w", "group": "default"}
    api.post("/awe/client", files={"profile": ("p.json", json.dumps(profile).encode())})
    response = api.post("/awe/job", files={"upload": ("wf.json", json.dumps(WORKFLOW).encode())})
    found: str = response.json()["data"]["id"]
    return found


def run_next(api: httpx.Client, status: str = "done") -> str | None:
    unit = api.get("/awe/work", params={"client": CLIENT}).json()["data"]
    if unit is None:
        return None
    api.put(f"/awe/work/{unit['id']}", params={"status": status, "client": CLIENT})
    unit_id: str = unit["id"]
    return unit_id


def state(api: httpx.Client, job_id: str) -> tuple[str, list[str]]:
    job = api.get(f"/awe/job/{job_id}").json()["data"]
    return job["state"], [t["state"] for t in job["tasks"]]


def operate(api: httpx.Client, job_id: str, query: str) -> dict[str, Any]:
    body: dict[str, Any] = api.put(f"/awe/job/{job_id}?{query}").json()
    return body


def test_suspend_stops_dispatch_and_resume_goes_on_where_it_was(
    api: httpx.Client, job_id: str
) -> None:
    assert run_next(api) == f"{job_id}_0_0"
    assert operate(api, job_id, "suspend")["data"] == f"job suspended: {job_id}"
    suspended = api.get(f"/awe/job/{job_id}").json()["data"]
    assert suspended["state"] == "suspend"
    assert suspended["error"]["servernotes"] == "manually suspended"
    assert run_next(api) is None
    assert api.get("/awe/job", params={"suspend": ""}).json()["total_count"] == 1
    assert operate(api, job_id, "resume")["data"] == f"job resumed: {job_id}"
    resumed = api.get(f"/awe/job/{job_id}").json()["data"]
    assert resumed["resumed"] == 1
    assert resumed["error"] is None
    # task 0 stays done: the next workunit is task 1's
    assert run_next(api) == f"{job_id}_1_0"
    again = api.put(f"/awe/job/{job_id}?resume")
    assert again.status_code == 400
    assert "is not in 'suspend' status" in again.json()["error"][0]


def test_recompute_runs_a_task_and_its_downstream_again(api: httpx.Client, job_id: str) -> None:
    for _ in range(3):
        run_next(api)
    assert state(api, job_id) == ("completed", ["completed"] * 3)
    answer = operate(api, job_id, "recompute=1")
    assert answer["data"] == f"job recompute started at task 1: {job_id}"
    assert state(api, job_id)[1] == ["completed", "queued", "pending"]
    assert [run_next(api), run_next(api)] == [f"{job_id}_1_0", f"{job_id}_2_0"]
    assert operate(api, job_id, "resubmit")["data"] == f"job resubmitted: {job_id}"
    assert state(api, job_id)[1] == ["queued", "pending", "pending"]
    assert api.get(f"/awe/job/{job_id}").json()["data"]["resumed"] == 2


@pytest.mark.parametrize(
    ("query", "words"),
    [("recompute=", "lacking stage id"), ("recompute=9", "fail to recompute"),
     ("clientgroup=", "lacking clientgroup name"), ("priority=x", "must be an integer")],
)  # fmt: skip
def test_bad_operations_are_refused(api: httpx.Client, job_id: str, query: str, words: str) -> None:
    if query == "recompute=9":
        for _ in range(3):
            run_next(api)
    response = api.put(f"/awe/job/{job_id}?{query}")
    assert response.status_code == 400, response.text
    assert words in response.json()["error"][0]


def test_info_changes_and_the_priority_reaches_the_group(api: httpx.Client, job_id: str) -> None:
    assert operate(api, job_id, "priority=9")["data"] == f"job priority updated: {job_id} to 9"
    assert operate(api, job_id, "pipeline=p2")["data"] == f"job pipeline updated: {job_id} to p2"
    assert operate(api, job_id, "clientgroup=gpu")["data"] == f"job group updated: {job_id} to gpu"
    info = api.get(f"/awe/job/{job_id}").json()["data"]["info"]
    assert (info["priority"], info["pipeline"], info["clientgroups"]) == (9, "p2", "gpu")
    group = next(j for j in api.get("/api/jobs").json() if j["title"] == "ops")
    assert group["priority"] == 9
    assert operate(api, job_id, "frobnicate")["data"] == "requested job operation not supported"


def test_delete_marks_the_job_and_full_removes_it(api: httpx.Client, job_id: str) -> None:
    assert api.delete(f"/awe/job/{job_id}").json()["data"] == f"job deleted: {job_id}"
    assert state(api, job_id)[0] == "deleted"
    assert run_next(api) is None
    assert api.delete(f"/awe/job/{job_id}", params={"full": ""}).status_code == 200
    gone = api.get(f"/awe/job/{job_id}")
    assert gone.status_code == 400
    assert api.get("/api/jobs").json() == []
    assert api.put("/awe/job?resumeall").json()["data"] == "0 suspended jobs resumed"
    assert api.put("/awe/job").status_code == 400
