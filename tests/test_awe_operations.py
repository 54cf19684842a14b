"""The AWE face's job operations: suspend, resume, recompute, resubmit, info changes and
delete, against a real server with a client checking work out over HTTP (docs/awe.md)."""

import asyncio
import datetime
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from core.config import AweConfig, Config, ServerConfig
from core.db import Database
from core.errors import NotFound
from core.jobs import Jobs
from core.workflows import Workflows
from tests.awe import wait_for
from tests.conftest import ServerThread, Sql

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
    # the expiry pass runs as the server starts, then not during a test
    awe = AweConfig(checkout_wait=0.3, expiry_interval=3600)
    return Config(server=ServerConfig(data_dir=str(tmp_path)), awe=awe)


@pytest.fixture
def job_id(api: httpx.Client) -> str:
    profile = {"id": CLIENT, "name": "w", "group": "default", "apps": ["bash"]}
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


# -- expiry, data tokens, reports, positions --------------------------------------------


def with_workflows(database_url: str, config: Config, action: Callable[[Workflows], Any]) -> Any:
    """Run `action` on the core's Workflows over the test's database, as a server would."""

    async def go() -> Any:
        db = await Database.connect(database_url, min_size=1, max_size=1)
        try:
            return await action(Workflows(db, Jobs(db, config), config))
        finally:
            await db.close()

    return asyncio.run(go())


def completed(api: httpx.Client, document: dict[str, Any] = WORKFLOW) -> str:
    """A job run to its end by the test's client."""
    profile = {"id": CLIENT, "name": "w", "group": "default", "apps": ["bash"]}
    api.post("/awe/client", files={"profile": ("p.json", json.dumps(profile).encode())})
    response = api.post("/awe/job", files={"upload": ("wf.json", json.dumps(document).encode())})
    job_id: str = response.json()["data"]["id"]
    while run_next(api):
        pass
    assert state(api, job_id)[0] == "completed"
    return job_id


@pytest.mark.parametrize(
    ("value", "why"),
    [("5W", "is invalid"), ("", "is invalid"), ("-1D", "is invalid"), ("1.5H", "is invalid"),
     ("5 D", "is invalid"), ("9" * 12 + "D", "is too far ahead")],
)  # fmt: skip
def test_a_bad_expiration_is_refused(
    api: httpx.Client, sql: Sql, job_id: str, value: str, why: str
) -> None:
    before = sql.snapshot()
    response = api.put(f"/awe/job/{job_id}", params={"expiration": value})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == [
        f"failed to set the expiration for job: {job_id} expiration format '{value}' {why}"
    ]
    assert sql.snapshot() == before


def test_an_expiration_counts_from_now(api: httpx.Client, job_id: str) -> None:
    answer = operate(api, job_id, "expiration=5D")
    assert answer["data"] == f"expiration '5D' set for job: {job_id}"
    shown = api.get(f"/awe/job/{job_id}").json()["data"]["expiration"]
    expires = datetime.datetime.fromisoformat(shown.replace("Z", "+00:00"))
    ahead = expires - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(days=4) < ahead <= datetime.timedelta(days=5)
    assert operate(api, job_id, "expiration=90M")["data"].startswith("expiration '90M' set")


def test_the_expiry_pass_removes_done_jobs_past_their_expiration(
    tmp_path: Path, database_url: str, sql: Sql
) -> None:
    config = Config(
        server=ServerConfig(data_dir=str(tmp_path)),
        awe=AweConfig(checkout_wait=0.3, expiry_interval=0.1),
    )
    with_outputs = {"tasks": [{"taskid": "0", "cmd": {"name": "bash"},
                               "outputs": [{"filename": "out.txt"}]}]}  # fmt: skip
    with ServerThread(config, database_url) as base, httpx.Client(base_url=base) as api:
        done = completed(api, with_outputs)
        later = completed(api, with_outputs)
        deleted = api.post("/awe/job", files={"upload": ("w", json.dumps(WORKFLOW).encode())})
        deleted_id = deleted.json()["data"]["id"]
        api.delete(f"/awe/job/{deleted_id}")
        queued = api.post("/awe/job", files={"upload": ("w", json.dumps(with_outputs).encode())})
        queued_id = queued.json()["data"]["id"]
        for job in (done, later, deleted_id, queued_id):
            assert operate(api, job, "expiration=1M")["data"].startswith("expiration '1M'")
        sql.execute(
            "UPDATE workflows SET expiration = corral_epoch() - 1 WHERE id = ANY ($1::uuid[])",
            [done, deleted_id, queued_id],
        )
        wait_for(lambda: api.get(f"/awe/job/{done}").status_code == 400)
        # the pass that removed it saw the others: past their expiration but live, or not
        # past it yet, they stay
        for gone in (done, deleted_id):
            assert api.get(f"/awe/job/{gone}").json()["error"][0].startswith("job not found:")
        for kept in (later, queued_id):
            assert api.get(f"/awe/job/{kept}").status_code == 200
        # with their trees and their nodes
        assert sql.fetchval("SELECT count(*) FROM workflows") == 2
        roots = sql.fetchval("SELECT count(*) FROM jobs WHERE parent_id IS NULL")
        assert roots == 2
        assert sql.fetchval("SELECT count(*) FROM awe_nodes") == 2


def test_one_server_at_a_time_runs_the_expiry(
    api: httpx.Client, sql: Sql, database_url: str, config: Config
) -> None:
    job = completed(api)
    sql.execute("UPDATE workflows SET expiration = corral_epoch() - 1 WHERE id = $1::uuid", job)

    async def held() -> int:
        # another server's pass, holding the lock as it runs
        other = await asyncpg.connect(database_url)
        try:
            await other.execute("SELECT pg_advisory_lock(7221, 20)")
            db = await Database.connect(database_url, min_size=1, max_size=1)
            try:
                removed: int = await Workflows(db, Jobs(db, config), config).expire()
            finally:
                await db.close()
            return removed
        finally:
            await other.close()

    assert asyncio.run(held()) == 0
    assert api.get(f"/awe/job/{job}").status_code == 200
    assert with_workflows(database_url, config, lambda w: w.expire()) == 1
    assert api.get(f"/awe/job/{job}").status_code == 400


def test_a_data_token_is_kept_encrypted_and_served_to_the_work_routes(
    api: httpx.Client, sql: Sql, database_url: str, config: Config, job_id: str
) -> None:
    assert api.get(f"/awe/job/{job_id}").json()["data"]["info"]["auth"] is False
    missing = api.put(f"/awe/job/{job_id}?settoken")
    assert missing.status_code == 400
    assert missing.json()["error"] == [
        f"fail to set the data token for job: {job_id} (send it in the header Datatoken)"
    ]
    answer = api.put(f"/awe/job/{job_id}?settoken", headers={"Datatoken": "secret-token-1"})
    assert answer.json()["data"] == f"data token set for job: {job_id}"
    job = api.get(f"/awe/job/{job_id}").json()["data"]
    assert job["info"]["auth"] is True
    assert "secret-token-1" not in json.dumps(job)
    stored = sql.fetchval("SELECT datatoken FROM workflows WHERE id = $1::uuid", job_id)
    assert stored
    assert b"secret-token-1" not in stored
    leaf = sql.fetchval(
        "SELECT u.job_id FROM workflow_units u JOIN workflows w ON w.job_id = u.workflow_id"
        " WHERE w.id = $1::uuid AND u.task = '2'", job_id
    )  # fmt: skip
    assert with_workflows(database_url, config, lambda w: w.datatoken(leaf)) == "secret-token-1"
    # a submission's header gives the new job its token
    response = api.post(
        "/awe/job",
        files={"upload": ("wf.json", json.dumps(WORKFLOW).encode())},
        headers={"Datatoken": "t2"},
    )
    other = response.json()["data"]
    assert other["info"]["auth"] is True
    root = sql.fetchval("SELECT job_id FROM workflows WHERE id = $1::uuid", other["id"])
    assert with_workflows(database_url, config, lambda w: w.datatoken(root)) == "t2"
    with pytest.raises(NotFound):
        with_workflows(database_url, config, lambda w: w.datatoken(10**9))


def test_a_report_shows_each_workunit_with_what_its_last_run_reported(
    api: httpx.Client, job_id: str
) -> None:
    unit = api.get("/awe/work", params={"client": CLIENT}).json()["data"]
    api.put(
        f"/awe/work/{unit['id']}",
        params={"status": "done", "client": CLIENT, "report": ""},
        files={"stdout": ("awe_stdout.txt", b"hello\n"), "stderr": ("awe_stderr.txt", b"warn\n")},
    )
    answer = api.get(f"/awe/job/{job_id}", params={"report": ""})
    assert answer.status_code == 200, answer.text
    log = answer.json()["data"]
    assert list(log) == ["id", "state", "updatetime", "error", "resumed", "tasks"]
    assert (log["id"], log["state"], log["resumed"], log["error"]) == (
        job_id, "in-progress", 0, None
    )  # fmt: skip
    first, second, _ = log["tasks"]
    assert list(first) == ["taskid", "state", "totalwork", "completeddate", "workunits"]
    assert (first["taskid"], first["state"], first["totalwork"]) == (f"{job_id}_0", "completed", 1)
    assert first["workunits"] == [
        {"wuid": f"{job_id}_0_0", "rank": 0,
         "logs": {"stdout": "hello\n", "stderr": "warn\n", "worknotes": ""}}
    ]  # fmt: skip
    assert second["state"] == "queued"
    assert second["workunits"][0]["logs"] == {"stdout": "", "stderr": "", "worknotes": ""}
    unknown = api.get("/awe/job/6f1c9a53-0f1e-4d3a-9c1e-2f7b1f1f1f1f", params={"report": ""})
    assert unknown.status_code == 400
    assert unknown.json()["error"][0].startswith("job not found:")


def test_a_position_is_the_place_in_dispatch_order(api: httpx.Client, job_id: str) -> None:
    def submitted(priority: int) -> str:
        document = {**WORKFLOW, "info": {"name": "p", "priority": priority}}
        response = api.post("/awe/job", files={"upload": ("w", json.dumps(document).encode())})
        found: str = response.json()["data"]["id"]
        return found

    same, urgent = submitted(3), submitted(9)

    def position(job: str) -> Any:
        return api.get(f"/awe/job/{job}", params={"position": ""}).json()

    assert [position(j)["data"] for j in (urgent, job_id, same)] == [
        {"position": 1}, {"position": 2}, {"position": 3}
    ]  # fmt: skip
    # the next workunit out is the first job's
    assert run_next(api) == f"{urgent}_0_0"
    assert position(urgent)["data"] == {"position": 1}
    operate(api, urgent, "suspend")
    assert position(urgent)["error"] == ["job is not queued or in-progress, job state:suspend"]
    assert position(job_id)["data"] == {"position": 1}
    api.delete(f"/awe/job/{same}")
    assert position(same)["error"] == ["job is not queued or in-progress, job state:deleted"]


def test_the_completion_and_update_times_follow_the_tree(api: httpx.Client, job_id: str) -> None:
    def job() -> dict[str, Any]:
        found: dict[str, Any] = api.get(f"/awe/job/{job_id}").json()["data"]
        return found

    submitted = job()
    run_next(api)
    ran = job()
    assert ran["updatetime"] > submitted["updatetime"]
    assert ran["info"]["completedtime"] == "0001-01-01T00:00:00Z"
    run_next(api)
    run_next(api)
    done = job()
    assert done["state"] == "completed"
    assert done["info"]["completedtime"] >= done["info"]["submittime"]
    assert done["updatetime"] > ran["updatetime"]
    operate(api, job_id, "recompute=2")
    again = job()
    assert (again["state"], again["info"]["completedtime"]) == (
        "in-progress",
        "0001-01-01T00:00:00Z",
    )
    assert again["updatetime"] > done["updatetime"]
