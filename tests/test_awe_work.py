"""The AWE face's clients and work routes, as AWE's workers of each generation call
them (docs/awe.md)."""

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.config import AweConfig, Config, ServerConfig

WORKFLOW: dict[str, Any] = {
    "info": {"name": "wf"},
    "tasks": [
        {"taskid": "0", "cmd": {"name": "bash", "args": "-c true",
                                "environ": {"public": {"A": "1"}, "private": {"KEY": "s"}}}},
    ],
}  # fmt: skip
CLIENT = "5b8a6c1e-9d1f-4c2a-8e3b-0a1b2c3d4e5f"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(server=ServerConfig(data_dir=str(tmp_path)), awe=AweConfig(checkout_wait=0.3))


def register(api: httpx.Client, profile: dict[str, Any] | None = None) -> httpx.Response:
    body = profile or {"id": CLIENT, "name": "w1", "group": "default", "apps": ["bash"]}
    return api.post("/awe/client", files={"profile": ("p.json", json.dumps(body).encode())})


def submit(api: httpx.Client) -> str:
    response = api.post("/awe/job", files={"upload": ("wf.json", json.dumps(WORKFLOW).encode())})
    assert response.status_code == 200, response.text
    job_id: str = response.json()["data"]["id"]
    return job_id


def checkout(api: httpx.Client) -> httpx.Response:
    return api.get("/awe/work", params={"client": CLIENT, "available": 10**12})


def test_registration_echoes_the_profile_with_the_server_uuid(api: httpx.Client) -> None:
    profile = {"id": CLIENT, "name": "w1", "group": "default", "current_work": {}}
    answer = register(api, profile).json()
    assert answer["error"] is None
    assert answer["data"] == {**profile, "server_uuid": api.get("/awe/").json()["uuid"]}
    assert api.get(f"/awe/client/{CLIENT}").json()["data"]["name"] == "w1"
    missing = api.post("/awe/client", files={"other": ("x", b"{}")})
    assert missing.status_code == 400
    assert missing.json()["error"] == ["Error in registering new client:Profile file not provided"]


def test_a_checkout_hands_over_a_workunit_and_a_report_finishes_it(api: httpx.Client) -> None:
    register(api)
    job_id = submit(api)
    answer = checkout(api)
    assert answer.status_code == 200, answer.text
    unit = answer.json()["data"]
    assert unit["id"] == f"{job_id}_0_0"
    assert unit["task_name"] == "0"
    assert unit["jobid"] == job_id
    assert unit["rank"] == 0
    assert unit["state"] == "reserved"
    assert unit["cmd"]["environ"] == {"public": {"A": "1"}}
    assert unit["cmd"]["has_private_env"] is True
    assert "WorkPath" not in unit
    assert "cwl" not in unit
    private = api.get(f"/awe/work/{unit['id']}", params={"privateenv": "", "client": CLIENT})
    assert json.loads(private.headers["Privateenv"]) == {"KEY": "s"}
    # a second-generation worker's report: base64 id, multipart files
    b64 = "base64:" + base64.b64encode(unit["id"].encode()).decode()
    report = api.put(
        f"/awe/work/{b64}",
        params={"status": "done", "client": CLIENT, "computetime": 1, "report": ""},
        files={"stdout": ("awe_stdout.txt", b"out\n"), "stderr": ("awe_stderr.txt", b"err\n")},
    )
    assert report.json() == {"status": 200, "data": "ok", "error": None}
    assert api.get(f"/awe/job/{job_id}").json()["data"]["state"] == "completed"
    assert api.get(f"/awe/work/{unit['id']}", params={"report": "stdout"}).json()["data"] == "out\n"
    assert api.get(f"/awe/work/{b64}", params={"report": "stderr"}).json()["data"] == "err\n"
    nothing = api.get(f"/awe/work/{unit['id']}", params={"report": "worknotes"})
    assert nothing.status_code == 400
    assert nothing.json()["error"] == ["log type 'worknotes' not found"]
    # the same report again, now stale: still "ok", and nothing changes
    again = api.put(f"/awe/work/{b64}", params={"status": "fail", "client": CLIENT})
    assert again.json()["data"] == "ok"
    assert api.get(f"/awe/job/{job_id}").json()["data"]["state"] == "completed"


def test_checkout_errors_are_the_bare_strings_workers_compare(api: httpx.Client) -> None:
    unknown = checkout(api)
    assert unknown.status_code == 400
    assert unknown.json()["error"] == ["Client not found"]
    register(api)
    empty = checkout(api)
    assert empty.json()["error"] == ["No eligible workunit found"]
    no_client = api.get("/awe/work")
    assert no_client.json()["error"] == [
        "This request type requires the client=clientid parameter."
    ]
    report = api.put("/awe/work/x_0_0", params={"status": "done", "client": "nobody"})
    assert report.status_code == 400
    assert report.json()["error"] == ["Client not found"]


@pytest.mark.parametrize("method", ["PUT", "GET"])
def test_both_heartbeat_generations_answer_the_uuid_and_discard_stale_work(
    api: httpx.Client, method: str
) -> None:
    register(api)
    job_id = submit(api)
    unit = checkout(api).json()["data"]
    body = {"busy": True, "current_work": {"data": [unit["id"], f"{job_id}_9_0"]}}
    beat = api.request(
        method, f"/awe/client/{CLIENT}", params={"heartbeat": ""},
        content=json.dumps(body).encode() if method == "PUT" else None,
    )  # fmt: skip
    assert beat.status_code == 200, beat.text
    data = beat.json()["data"]
    assert data["server-uuid"] == api.get("/awe/").json()["uuid"]
    if method == "PUT":
        assert data["discard"] == f"{job_id}_9_0"
    else:
        assert "discard" not in data
    # suspended through Corral's own API, the running workunit is discarded
    api.post("/api/pausejobs", json=[api.get("/api/jobs").json()[0]["id"]])
    body = {"busy": True, "current_work": {"data": [unit["id"]]}}
    paused = api.put(f"/awe/client/{CLIENT}", params={"heartbeat": ""}, json=body)
    assert paused.json()["data"]["discard"] == unit["id"]
    assert api.get("/awe/client/nobody", params={"heartbeat": ""}).json()["error"] == [
        "Client not found"
    ]


def test_workunit_ids_are_checked(api: httpx.Client) -> None:
    for bad in ("nonsense", "base64:!!!", "base64:" + base64.b64encode(b"x_y").decode()):
        response = api.get(f"/awe/work/{bad}")
        assert response.status_code == 400, bad
        assert response.json()["error"][0].startswith("error parsing workunit identifier")
    unknown = api.get("/awe/work/6f1c9a53-0f1e-4d3a-9c1e-2f7b1f1f1f1f_0_0")
    assert unknown.status_code == 400


def test_a_report_with_a_big_stdout_still_ends_its_workunit(api: httpx.Client) -> None:
    register(api)
    job_id = submit(api)
    unit = checkout(api).json()["data"]
    big = b"x" * (3 * 1024 * 1024) + b"\nlast line\n"
    report = api.put(
        f"/awe/work/{unit['id']}",
        params={"status": "done", "client": CLIENT},
        files={"stdout": ("awe_stdout.txt", big)},
    )
    assert report.json()["data"] == "ok"
    assert api.get(f"/awe/job/{job_id}").json()["data"]["state"] == "completed"
    kept = api.get(f"/awe/work/{unit['id']}", params={"report": "stdout"}).json()["data"]
    assert kept == big.decode()
