"""The AWE face's failure policy and client states, through the routes AWE's workers call:
retries then a suspended job with the reason, failed-permanent, the skip list, clients
suspended after consecutive failures, by an admin, and lost (docs/awe.md)."""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.config import AweConfig, Config, DispatchConfig, ServerConfig
from tests.awe import wait_for
from tests.conftest import Sql

CLIENTS = [f"5b8a6c1e-9d1f-4c2a-8e3b-0a1b2c3d4e5{i}" for i in range(4)]


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(
        server=ServerConfig(data_dir=str(tmp_path)),
        awe=AweConfig(checkout_wait=0.3, max_client_failure=2),
        dispatch=DispatchConfig(worker_timeout=2.0, dead_worker_interval=0.5),
    )


def register(api: httpx.Client, client: str, **profile: Any) -> None:
    body = {"id": client, "name": client[-4:], "group": "default", "apps": ["bash"], **profile}
    answer = api.post("/awe/client", files={"profile": ("p.json", json.dumps(body).encode())})
    assert answer.status_code == 200, answer.text


def submit(api: httpx.Client, totalwork: int = 1, **info: Any) -> str:
    document = {
        "info": {"name": "wf", **info},
        "tasks": [{"taskid": "0", "totalwork": totalwork, "cmd": {"name": "bash", "args": "x"}}],
    }
    answer = api.post("/awe/job", files={"upload": ("wf.json", json.dumps(document).encode())})
    assert answer.status_code == 200, answer.text
    job_id: str = answer.json()["data"]["id"]
    return job_id


def checkout(api: httpx.Client, client: str) -> httpx.Response:
    return api.get("/awe/work", params={"client": client})


def unit_of(api: httpx.Client, client: str) -> str:
    answer = checkout(api, client)
    assert answer.status_code == 200, answer.text
    unit: str = answer.json()["data"]["id"]
    return unit


def refusal(answer: httpx.Response) -> str:
    assert answer.status_code == 400, answer.text
    message: str = answer.json()["error"][0]
    return message


def report(api: httpx.Client, client: str, unit: str, status: str, **files: bytes) -> None:
    answer = api.put(
        f"/awe/work/{unit}",
        params={"status": status, "client": client},
        files={k: (f"awe_{k}.txt", v) for k, v in files.items()} or None,
    )
    assert answer.json() == {"status": 200, "data": "ok", "error": None}


def job(api: httpx.Client, job_id: str) -> dict[str, Any]:
    answer = api.get(f"/awe/job/{job_id}")
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


def client(api: httpx.Client, name: str) -> dict[str, Any]:
    answer = api.get(f"/awe/client/{name}")
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


def test_a_failing_workunit_runs_on_other_clients_then_suspends_its_job(
    api: httpx.Client,
) -> None:
    for name in CLIENTS[:3]:
        register(api, name)
    job_id = submit(api)
    unit = f"{job_id}_0_0"
    for attempt, name in enumerate(CLIENTS[:3], start=1):
        assert unit_of(api, name) == unit
        report(api, name, unit, "fail", stderr=b"boom\n", worknotes=b"notes")
        # never handed back to a client that failed it
        assert refusal(checkout(api, name)) == "No eligible workunit found"
        assert unit in client(api, name)["skip_work"]
        state = job(api, job_id)
        if attempt < 3:
            assert state["state"] == "queued"
            assert state["error"] is None
    assert state["state"] == "suspend"
    assert state["error"] == {
        "clientfailed": CLIENTS[2],
        "workfailed": unit,
        "taskfailed": f"{job_id}_0",
        "servernotes": "workunit failed 3 time(s)",
        "worknotes": "notes",
        "apperror": "boom\n",
        "status": "suspend",
    }
    assert state["tasks"][0]["state"] == "suspend"
    assert client(api, CLIENTS[2])["total_failed"] == 1
    # resumed, it runs again, on a client that has not failed it
    assert api.put(f"/awe/job/{job_id}", params={"resume": ""}).status_code == 200
    register(api, CLIENTS[3])
    assert refusal(checkout(api, CLIENTS[0])) == "No eligible workunit found"
    assert unit_of(api, CLIENTS[3]) == unit
    report(api, CLIENTS[3], unit, "done")
    assert job(api, job_id)["state"] == "completed"


def test_noretry_suspends_the_job_at_the_first_failure(api: httpx.Client) -> None:
    register(api, CLIENTS[0])
    job_id = submit(api, noretry=True)
    unit = unit_of(api, CLIENTS[0])
    report(api, CLIENTS[0], unit, "fail")
    state = job(api, job_id)
    assert state["state"] == "suspend"
    assert state["error"]["workfailed"] == unit


def test_failed_permanent_ends_the_job_and_hands_out_none_of_its_work(
    api: httpx.Client,
) -> None:
    register(api, CLIENTS[0])
    register(api, CLIENTS[1])
    job_id = submit(api, totalwork=2)
    first = unit_of(api, CLIENTS[0])
    report(api, CLIENTS[0], first, "failed-permanent", stderr=b"bad input\n")
    state = job(api, job_id)
    assert state["state"] == "failed-permanent"
    assert state["error"]["servernotes"] == "exit code 42 encountered"
    assert state["error"]["status"] == "failed-permanent"
    assert state["error"]["apperror"] == "bad input\n"
    # the other workunit of the job is not handed out, and the job is final
    assert refusal(checkout(api, CLIENTS[1])) == "No eligible workunit found"
    resumed = api.put(f"/awe/job/{job_id}", params={"resume": ""})
    assert resumed.status_code == 400
    assert job(api, job_id)["state"] == "failed-permanent"


def test_a_client_failing_again_and_again_is_suspended_until_resumed(
    api: httpx.Client,
) -> None:
    name = CLIENTS[0]
    register(api, name)
    jobs = [submit(api, noretry=True) for _ in range(3)]
    for _ in range(2):
        report(api, name, unit_of(api, name), "fail")
    shown = client(api, name)
    assert shown["suspended"] is True
    assert shown["Status"] == "suspended"
    assert shown["suspend_reason"] == "MAX_CLIENT_FAILURE on client reached"
    assert refusal(checkout(api, name)) == "Client suspended"
    listed = api.get("/awe/client", params={"status": "suspended"}).json()["data"]
    assert [c["id"] for c in listed] == [name]
    assert api.put(f"/awe/client/{name}", params={"resume": ""}).json()["data"] == (
        "client resumed"
    )
    # its streak begins again: one more failure does not suspend it
    unit = unit_of(api, name)
    assert unit.startswith(jobs[2])
    report(api, name, unit, "fail")
    assert client(api, name)["suspended"] is False


def test_client_routes_suspend_resume_list_and_refuse(api: httpx.Client) -> None:
    register(api, CLIENTS[0], group="gpu", apps=["bash", "blast"])
    register(api, CLIENTS[1])
    answer = api.put(f"/awe/client/{CLIENTS[0]}", params={"suspend": ""})
    assert answer.json() == {"status": 200, "data": "client suspended", "error": None}
    assert client(api, CLIENTS[0])["suspend_reason"] == "suspended by admin"
    assert api.put("/awe/client", params={"resumeall": ""}).json()["data"] == (
        "1 suspended clients resumed"
    )
    assert api.put("/awe/client", params={"suspendall": ""}).json()["data"] == (
        "2 clients suspended"
    )
    assert api.put("/awe/client", params={"resumeall": ""}).json()["data"] == (
        "2 suspended clients resumed"
    )

    def ids(**query: str) -> list[str]:
        answer = api.get("/awe/client", params=query)
        assert answer.status_code == 200, answer.text
        return sorted(c["id"] for c in answer.json()["data"])

    assert ids() == sorted(CLIENTS[:2])
    assert ids(group="gpu") == [CLIENTS[0]]
    assert ids(app="blast") == [CLIENTS[0]]
    assert ids(status="online") == sorted(CLIENTS[:2])
    submit(api)
    unit_of(api, CLIENTS[1])
    assert ids(busy="") == [CLIENTS[1]]
    assert ids(status="busy") == [CLIENTS[1]]
    shown = client(api, CLIENTS[1])
    assert shown["busy"] is True
    assert shown["current_work"]["data"] == shown["assigned_work"]["data"]
    assert len(shown["current_work"]["data"]) == 1
    assert shown["total_checkout"] == 1
    removed = api.delete(f"/awe/client/{CLIENTS[0]}")
    assert refusal(removed) == "this functionality has been removed from AWE"
    unknown = "00000000-0000-4000-8000-000000000000"
    assert refusal(api.put(f"/awe/client/{unknown}", params={"suspend": ""})) == (
        "Client not found"
    )
    assert refusal(api.get(f"/awe/client/{unknown}")) == "Client not found"
    assert refusal(api.put("/awe/client", params={"other": ""})) == (
        "requested client operation not supported"
    )


def test_checkouts_are_refused_with_the_words_workers_compare(api: httpx.Client, sql: Sql) -> None:
    register(api, CLIENTS[0])
    submit(api, totalwork=2)
    unit_of(api, CLIENTS[0])
    assert refusal(checkout(api, CLIENTS[0])) == "Client busy"
    register(api, CLIENTS[1])
    sql.execute("UPDATE awe_server SET queue_suspended = true")
    assert refusal(checkout(api, CLIENTS[1])) == "Server queue is suspended"
    sql.execute("UPDATE awe_server SET queue_suspended = false")
    assert unit_of(api, CLIENTS[1]).endswith("_0_2")
    assert refusal(checkout(api, CLIENTS[3])) == "Client not found"


def test_a_silent_client_is_dropped_and_its_workunit_runs_elsewhere(
    api: httpx.Client,
) -> None:
    register(api, CLIENTS[0])
    job_id = submit(api)
    unit = unit_of(api, CLIENTS[0])

    def dropped() -> bool:
        return api.get(f"/awe/client/{CLIENTS[0]}").status_code == 400

    wait_for(dropped, timeout=30)
    assert refusal(api.get(f"/awe/client/{CLIENTS[0]}")) == "Client not found"
    assert refusal(checkout(api, CLIENTS[0])) == "Client not found"
    heartbeat = api.put(f"/awe/client/{CLIENTS[0]}", params={"heartbeat": ""}, json={})
    assert refusal(heartbeat) == "Client not found"
    assert job(api, job_id)["state"] == "queued"
    register(api, CLIENTS[1])
    assert unit_of(api, CLIENTS[1]) == unit
    # the dropped client comes back by registering again; its old run is not its own
    register(api, CLIENTS[0])
    report(api, CLIENTS[0], unit, "done")
    assert job(api, job_id)["state"] == "in-progress"
    report(api, CLIENTS[1], unit, "done")
    assert job(api, job_id)["state"] == "completed"


def test_client_groups_and_apps_choose_the_clients_and_clientgroup_moves_the_work(
    api: httpx.Client,
) -> None:
    register(api, CLIENTS[0], group="gpu")
    register(api, CLIENTS[1], group="cpu")
    register(api, CLIENTS[2], group="gpu", apps=["blender"])
    register(api, CLIENTS[3], group="cpu", apps=["*"])
    job_id = submit(api, totalwork=3, clientgroups="gpu")
    assert refusal(checkout(api, CLIENTS[1])) == "No eligible workunit found"
    # in the group, but bash is not among its apps
    assert refusal(checkout(api, CLIENTS[2])) == "No eligible workunit found"
    assert unit_of(api, CLIENTS[0]) == f"{job_id}_0_1"
    moved = api.put(f"/awe/job/{job_id}", params={"clientgroup": "cpu,render"})
    assert moved.json()["data"] == f"job group updated: {job_id} to cpu,render"
    assert job(api, job_id)["info"]["clientgroups"] == "cpu,render"
    register(api, CLIENTS[0].replace("5b", "5d"), group="gpu")
    assert refusal(checkout(api, CLIENTS[0].replace("5b", "5d"))) == "No eligible workunit found"
    assert unit_of(api, CLIENTS[1]) == f"{job_id}_0_2"
    # any app
    assert unit_of(api, CLIENTS[3]) == f"{job_id}_0_3"


def test_a_recomputed_task_has_no_output_until_it_runs_again(api: httpx.Client) -> None:
    register(api, CLIENTS[0])
    document = {"tasks": [{"taskid": "0", "cmd": {"name": "bash", "args": "x"},
                           "outputs": [{"filename": "out.txt"}]}]}  # fmt: skip
    answer = api.post("/awe/job", files={"upload": ("wf.json", json.dumps(document).encode())})
    job_id = answer.json()["data"]["id"]
    [output] = answer.json()["data"]["tasks"][0]["outputs"]
    unit = unit_of(api, CLIENTS[0])
    uploaded = api.put(f"/awe/node/{output['node']}", files={"upload": ("out.txt", b"first\n")})
    assert uploaded.status_code == 200, uploaded.text
    report(api, CLIENTS[0], unit, "done")
    download = f"/awe/node/{output['node']}"
    assert api.get(download, params={"download": ""}).content == b"first\n"
    assert api.put(f"/awe/job/{job_id}", params={"recompute": "0"}).status_code == 200
    emptied = api.get(download, params={"download": ""})
    assert emptied.status_code == 400
    assert emptied.json()["error"] == ["Node has no file"]
    assert api.get(download).json()["data"]["file"]["size"] == 0
    assert unit_of(api, CLIENTS[0]) == unit
    api.put(download, files={"upload": ("out.txt", b"second\n")})
    report(api, CLIENTS[0], unit, "done")
    assert api.get(download, params={"download": ""}).content == b"second\n"
    assert job(api, job_id)["state"] == "completed"
