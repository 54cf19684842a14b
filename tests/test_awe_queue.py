"""The AWE face's queue and logger: the queue's counts as text and JSON, its admin views,
suspending it, AWE's event table and the debug level (docs/awe.md)."""

import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.config import AweConfig, Config, ServerConfig
from tests.conftest import ServerThread, Sql
from tests.farm import role_tokens

BUSY = "7a1c2e3d-1d1f-4c2a-8e3b-0a1b2c3d4e5f"
IDLE = "8b2d3f4e-1d1f-4c2a-8e3b-0a1b2c3d4e5f"
CHAIN: dict[str, Any] = {
    "info": {"name": "chain"},
    "tasks": [
        {"taskid": "0", "cmd": {"name": "bash", "args": "-c true"}},
        {"taskid": "1", "cmd": {"name": "bash", "args": "-c true"}, "dependsOn": ["0"]},
        {"taskid": "2", "cmd": {"name": "bash", "args": "-c true"}, "dependsOn": ["1"]},
    ],
}  # fmt: skip
EVENT_GO = "gopath/src/github.com/MG-RAST/AWE/lib/logger/event/event.go"
SOURCE = (
    Path(__file__).resolve().parent.parent.parent
    / "shared/reference/awe-worker/awe-worker-0.9.68-src-trimmed.tgz"
)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(server=ServerConfig(data_dir=str(tmp_path)), awe=AweConfig(checkout_wait=0.3))


def register(api: httpx.Client, client: str) -> None:
    profile = {"id": client, "name": client[:4], "group": "default", "apps": ["bash"]}
    answer = api.post("/awe/client", files={"profile": ("p.json", json.dumps(profile).encode())})
    assert answer.status_code == 200, answer.text


def submit(api: httpx.Client, document: dict[str, Any]) -> str:
    answer = api.post("/awe/job", files={"upload": ("w.json", json.dumps(document).encode())})
    assert answer.status_code == 200, answer.text
    job_id: str = answer.json()["data"]["id"]
    return job_id


def one_task(name: str, totalwork: int = 1, groups: str = "") -> dict[str, Any]:
    return {
        "info": {"name": name, "clientgroups": groups},
        "tasks": [{"taskid": "0", "cmd": {"name": "bash"}, "totalwork": totalwork}],
    }


def take(api: httpx.Client, client: str) -> str:
    unit = api.get("/awe/work", params={"client": client}).json()["data"]
    assert unit is not None
    unit_id: str = unit["id"]
    return unit_id


class Farm:
    """A completed job, one in progress (its first workunit checked out by BUSY), one
    queued with two workunits, a suspended one and a deleted one; IDLE holds nothing."""

    def __init__(self, api: httpx.Client) -> None:
        register(api, BUSY)
        register(api, IDLE)
        self.done = submit(api, one_task("done"))
        api.put(f"/awe/work/{take(api, BUSY)}", params={"status": "done", "client": BUSY})
        self.running = submit(api, CHAIN)
        self.checked_out = take(api, BUSY)
        assert self.checked_out == f"{self.running}_0_0"
        self.queued = submit(api, one_task("queued", totalwork=2))
        self.suspended = submit(api, one_task("suspended"))
        api.put(f"/awe/job/{self.suspended}?suspend")
        deleted = submit(api, one_task("deleted"))
        api.delete(f"/awe/job/{deleted}")


@pytest.fixture
def farm(api: httpx.Client) -> Farm:
    return Farm(api)


def data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["status", "data", "error"]
    return body["data"]


def test_the_queue_counts_the_live_jobs_their_tasks_workunits_and_the_clients(
    api: httpx.Client, farm: Farm
) -> None:
    counts = data(api.get("/awe/queue", params={"json": ""}))
    assert counts == {
        "jobs": {"total": 3, "active": 2, "suspended": 1},
        "tasks": {"total": 5, "queuing": 1, "in-progress": 1, "pending": 2, "completed": 0,
                  "suspended": 1, "failed": 0},
        "workunits": {"total": 4, "queuing": 2, "checkout": 1, "suspended": 1},
        "clients": {"total": 2, "busy": 1, "idle": 1, "suspended": 0},
    }  # fmt: skip
    text = data(api.get("/awe/queue"))
    head, _, last = text.rpartition("---last update: ")
    assert head == (
        "++++++++AWE server queue status++++++++\n"
        "total jobs ............... 3\n"
        "    active:           (2)\n"
        "    suspended:        (1)\n"
        "total tasks .............. 5\n"
        "    queuing:          (1)\n"
        "    in-progress:      (1)\n"
        "    pending:          (2)\n"
        "    completed:        (0)\n"
        "    suspended:        (1)\n"
        "    failed & skipped: (0)\n"
        "total workunits .......... 4\n"
        "    queuing:          (2)\n"
        "    checkout:         (1)\n"
        "    suspended:        (1)\n"
        "total clients ............ 2\n"
        "    busy:             (1)\n"
        "    idle:             (1)\n"
        "    suspend:          (0)\n"
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} \+0000 UTC\n\n", last), last


def test_the_admin_views_list_what_the_queue_holds(api: httpx.Client, farm: Farm) -> None:
    jobs = data(api.get("/awe/queue", params={"job": ""}))
    assert set(jobs["active"]) == {farm.running, farm.queued}
    assert jobs["suspend"] == {farm.suspended: True}
    perf = jobs["active"][farm.running]
    assert list(perf) == ["id", "queued", "start", "end", "resp", "task_stats", "work_stats"]
    assert perf["id"] == farm.running
    tasks = data(api.get("/awe/queue", params={"task": ""}))
    assert sorted((t["jobid"], t["task_name"], t["state"]) for t in tasks) == sorted(
        [(farm.running, "0", "in-progress"), (farm.running, "1", "pending"),
         (farm.running, "2", "pending"), (farm.queued, "0", "queued"),
         (farm.suspended, "0", "suspend")]
    )  # fmt: skip

    def units(view: str) -> list[tuple[str, str, str]]:
        listed = data(api.get("/awe/queue", params={view: ""}))
        return sorted((u["id"], u["state"], u["client"]) for u in listed)

    queued = [(f"{farm.queued}_0_{rank}", "queued", "") for rank in (1, 2)]
    checkout = [(farm.checked_out, "checkout", BUSY)]
    suspended = [(f"{farm.suspended}_0_0", "suspend", "")]
    assert units("workqueue") == queued
    assert units("workcheckout") == checkout
    assert units("worksuspend") == suspended
    assert units("workall") == sorted(queued + checkout + suspended)
    clients = data(api.get("/awe/queue", params={"client": ""}))
    assert {name: (c["busy"], c["Status"]) for name, c in clients.items()} == {
        BUSY: (True, "busy"), IDLE: (False, "online")
    }  # fmt: skip
    assert clients[IDLE]["group"] == "default"


def test_a_client_group_sees_the_jobs_it_may_take_work_from(api: httpx.Client) -> None:
    anyone = submit(api, one_task("anyone"))
    gpu = submit(api, {**one_task("gpu", groups="cpu,gpu"), "info": {"name": "gpu",
                       "clientgroups": "cpu,gpu", "priority": 9}})  # fmt: skip
    submit(api, one_task("other", groups="other"))

    def group(name: str) -> list[str]:
        return [j["id"] for j in data(api.get("/awe/queue", params={"clientgroup": name}))]

    assert group("gpu") == [gpu, anyone]
    assert group("cpu") == [gpu, anyone]
    assert group("nobody") == [anyone]
    empty = api.get("/awe/queue", params={"clientgroup": ""})
    assert empty.status_code == 400
    assert empty.json()["error"] == ["lacking clientgroup name"]


@pytest.mark.parametrize("query", ["work", "jobs", "json2", "suspend"])
def test_other_queue_queries_are_refused(api: httpx.Client, sql: Sql, query: str) -> None:
    before = sql.snapshot()
    response = api.get(f"/awe/queue?{query}")
    assert response.status_code == 400
    assert response.json() == {
        "status": 400, "data": None, "error": ["requested queue operation not supported"]
    }  # fmt: skip
    assert sql.snapshot() == before


def test_suspending_the_queue_is_kept_and_shown_by_the_root(api: httpx.Client, sql: Sql) -> None:
    assert data(api.put("/awe/queue?suspend")) == "work queue suspended"
    assert api.get("/awe/").json()["queue_status"] == "suspended"
    assert sql.fetchval("SELECT queue_suspended FROM awe_server") is True
    assert data(api.put("/awe/queue?resume")) == "work queue resumed"
    assert api.get("/awe/").json()["queue_status"] == "running"
    other = api.put("/awe/queue?pause")
    assert other.status_code == 400
    assert other.json()["error"] == ["requested queue operation not supported"]


def event_table() -> dict[str, dict[str, str]]:
    """EventDiscription from AWE's own event.go."""
    with tarfile.open(SOURCE) as archive:
        member = archive.extractfile(EVENT_GO)
        assert member is not None
        source = member.read().decode()
    block = source[source.index("var EventDiscription") :]
    table: dict[str, dict[str, str]] = {}
    section: dict[str, str] = {}
    for line in block.splitlines():
        opened = re.fullmatch(r'\s*"(\w+)": map\[string\]string\{', line)
        entry = re.fullmatch(r'\s*"([^"]+)": "([^"]*)",', line)
        if opened:
            section = table.setdefault(opened.group(1), {})
        elif entry:
            section[entry.group(1)] = entry.group(2)
    return table


def test_the_event_table_is_awes_verbatim(api: httpx.Client) -> None:
    table = event_table()
    assert sum(len(s) for s in table.values()) == 40
    answer = api.get("/awe/logger", params={"event": ""})
    assert data(answer) == table
    # in the order Go writes a map: by key
    assert list(json.loads(answer.text)["data"]) == sorted(table)


def test_the_debug_level_is_kept_and_checked(api: httpx.Client, sql: Sql) -> None:
    assert data(api.get("/awe/logger", params={"debug": ""})) == {"debuglevel": 0}
    assert data(api.put("/awe/logger", params={"debug": "2"})) == {"debuglevel": 2}
    assert data(api.get("/awe/logger?debug")) == {"debuglevel": 2}
    assert sql.fetchval("SELECT debug_level FROM awe_server") == 2
    before = sql.snapshot()
    for bad in ("4", "-1", "x", "", "99999999999999999999"):
        answer = api.put("/awe/logger", params={"debug": bad})
        assert answer.status_code == 400, bad
        assert answer.json()["error"] == [f"invalid debug level: {bad} (an integer from 0 to 3)"]
    for call in (api.put("/awe/logger"), api.get("/awe/logger"), api.get("/awe/logger?x")):
        assert call.status_code == 400
        assert call.json()["error"] == ["requested logger operation not supported"]
    assert sql.snapshot() == before


@pytest.fixture
def guarded(config: Config, database_url: str) -> Iterator[dict[str, httpx.Client]]:
    """A server with tokens (made before it answers): a client with an admin token, one
    with a user token."""

    secrets = role_tokens(database_url, {"admin": "admin", "user": "user"})
    with ServerThread(config, database_url) as base:
        clients = {
            role: httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"})
            for role, secret in secrets.items()
        }
        yield clients
        for client in clients.values():
            client.close()


@pytest.mark.parametrize("view", ["job", "task", "workall", "client", "clientgroup=default"])
def test_the_admin_views_refuse_other_callers(guarded: dict[str, httpx.Client], view: str) -> None:
    refused = guarded["user"].get(f"/awe/queue?{view}")
    assert refused.status_code == 401
    assert refused.json() == {"status": 401, "data": None, "error": ["No Authorization"]}
    assert guarded["admin"].get(f"/awe/queue?{view}").status_code == 200
    assert guarded["user"].get("/awe/queue?json").status_code == 200
    assert guarded["user"].put("/awe/queue?suspend").status_code == 403
