"""Every request and response example of the Coalition REST API document, replayed
against a real server. Bodies are sent as the document writes them (its edit examples use
bare integer keys and trailing commas), with its ids replaced by the ids Corral gave."""

import httpx

from tests.conftest import Sql
from tests.farm import append_log, finish, get, ok, start, submit

JOB_KEYS = {
    "id", "parent", "title", "command", "dir", "environment", "state", "worker",
    "start_time", "duration", "ping_time", "run_done", "retry", "timeout", "priority",
    "affinity", "user", "finished", "errors", "working", "total", "total_finished",
    "total_errors", "total_working", "url", "progress", "progress_pattern",
}  # fmt: skip
WORKER_KEYS = {
    "name", "ip", "affinity", "state", "ping_time", "finished", "error", "last_job",
    "current_event", "cpu", "free_memory", "total_memory", "active",
}  # fmt: skip
EVENT_KEYS = {"id", "worker", "job_id", "job_title", "state", "start", "duration"}
# what Corral adds to the document's jobs and events, which its clients ignore: how the
# last run ended
LAST_RUN = {"exit_code", "reason"}

SEED_PUT = """{
    "parent": 0,
    "title": "Job 1",
    "command": "echo test",
    "dir": ".",
    "environment": "",
    "state": "WAITING",
    "retry": 10,
    "timeout": 10000,
    "priority": 1000,
    "affinity": "LINUX",
    "user": "render",
    "url": "http://localhost/image.png",
    "progress_pattern": "#%percent"
}"""


def put_seed_job(api: httpx.Client, **changes: object) -> int:
    response = api.put(
        "/api/jobs",
        content=SEED_PUT.replace('"parent": 0', f'"parent": {changes.get("parent", 0)}'),
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    job_id = response.json()
    assert isinstance(job_id, int)
    return job_id


def test_put_creates_the_job_as_given(api: httpx.Client) -> None:
    job_id = put_seed_job(api)
    job = get(api, job_id)
    assert set(job) == JOB_KEYS | LAST_RUN | {"dependencies"}
    assert job["id"] == job_id
    assert {k: job[k] for k in ("parent", "title", "command", "dir", "environment", "state")} == {
        "parent": 0, "title": "Job 1", "command": "echo test", "dir": ".", "environment": "",
        "state": "WAITING",
    }  # fmt: skip
    assert (job["retry"], job["timeout"], job["priority"]) == (10, 10000, 1000)
    assert (job["affinity"], job["user"], job["url"]) == (
        "LINUX",
        "render",
        "http://localhost/image.png",
    )
    assert job["progress_pattern"] == "#%percent"
    assert job["dependencies"] == []


def test_get_jobs_lists_the_roots_with_every_field(api: httpx.Client) -> None:
    first = submit(api, title="a group")
    second = put_seed_job(api)
    put_seed_job(api, parent=first)
    response = api.get("/api/jobs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    roots = response.json()
    assert [j["id"] for j in roots] == [first, second]
    for job in roots:
        assert set(job) == JOB_KEYS | LAST_RUN
        assert job["parent"] == 0


def test_post_edits_several_jobs_written_as_in_the_document(api: httpx.Client) -> None:
    a, b = put_seed_job(api), put_seed_job(api)
    body = f"""{{
        {a}:
        {{
            "title": "Job renamed {a}",
            "command": "echo renamed",
        }},
        {b}:
        {{
            "title": "Job renamed {b}",
            "command": "echo renamed",
        }}
    }}"""
    ok(api.post("/api/jobs", content=body))
    assert (get(api, a)["title"], get(api, a)["command"]) == (f"Job renamed {a}", "echo renamed")
    assert (get(api, b)["title"], get(api, b)["command"]) == (f"Job renamed {b}", "echo renamed")


def test_children_and_dependencies(api: httpx.Client) -> None:
    group = submit(api, title="Job 123")
    first = put_seed_job(api, parent=group)
    second = put_seed_job(api, parent=group)
    children = api.get(f"/api/jobs/{group}/children").json()
    assert [c["id"] for c in children] == [first, second]
    assert all(set(c) == JOB_KEYS | LAST_RUN and c["parent"] == group for c in children)

    dependent = put_seed_job(api)
    ok(api.post(f"/api/jobs/{dependent}/dependencies", content=f"[{first},{second}]"))
    deps = api.get(f"/api/jobs/{dependent}/dependencies").json()
    assert [d["id"] for d in deps] == [first, second]
    assert all(set(d) == JOB_KEYS | LAST_RUN for d in deps)
    assert get(api, dependent)["dependencies"] == [first, second]


def test_log_is_a_json_string(api: httpx.Client, sql: Sql) -> None:
    job_id = put_seed_job(api)
    event = start(sql, job_id)
    append_log(sql, job_id, f"Job {job_id} ".encode())
    append_log(sql, job_id, b"done")
    finish(sql, event)
    response = api.get(f"/api/jobs/{job_id}/log")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == f"Job {job_id} done"


def test_delete_reset_start_pause_answer_one(api: httpx.Client) -> None:
    ids = [put_seed_job(api) for _ in range(3)]
    body = "[" + ",".join(map(str, ids)) + "]"
    ok(api.post("/api/pausejobs", content=body))
    assert {get(api, i)["state"] for i in ids} == {"PAUSED"}
    ok(api.post("/api/startjobs", content=body))
    assert {get(api, i)["state"] for i in ids} == {"WAITING"}
    ok(api.post("/api/resetjobs", content=body))
    assert {get(api, i)["state"] for i in ids} == {"WAITING"}
    ok(api.request("DELETE", "/api/jobs", content=body))
    assert api.get("/api/jobs").json() == []


def test_workers_routes(api: httpx.Client, sql: Sql) -> None:
    for name in ("worker-1", "worker-2"):
        start(sql, put_seed_job(api), worker=name)
    workers = api.get("/api/workers").json()
    assert [w["name"] for w in workers] == ["worker-1", "worker-2"]
    # every field of the document, and the slots Corral adds
    assert all(set(w) == WORKER_KEYS | {"slots"} for w in workers)
    assert workers[0]["cpu"] == "[]"
    assert workers[0]["state"] == "WORKING"
    assert workers[0]["active"] == 1

    body = """{
        "worker-1":
        {
            "affinity": "LINUX",
            "active": 0,
        },
        "worker-2":
        {
            "affinity": "LINUX",
            "active": 0,
        }
    }"""
    ok(api.post("/api/workers", content=body))
    workers = api.get("/api/workers").json()
    assert [(w["affinity"], w["active"], w["state"]) for w in workers] == [
        ("LINUX", 0, "WAITING")
    ] * 2

    ok(api.post("/api/startworkers", content='["worker-1","worker-2"]'))
    assert [w["active"] for w in api.get("/api/workers").json()] == [1, 1]
    ok(api.post("/api/stopworkers", content='["worker-1","worker-2"]'))
    assert [w["active"] for w in api.get("/api/workers").json()] == [0, 0]
    ok(api.request("DELETE", "/api/workers", content='["worker-1","worker-2"]'))
    assert api.get("/api/workers").json() == []


def test_events_filtered_by_job_worker_and_age(api: httpx.Client, sql: Sql) -> None:
    job_id = put_seed_job(api)
    other = put_seed_job(api)
    finish(sql, start(sql, job_id, worker="worker-1"), exit_code=1)
    start(sql, other, worker="worker-2")
    response = api.get("/api/events", params={"job": job_id, "worker": "worker-1", "howlong": 60})
    assert response.status_code == 200
    events = response.json()
    assert len(events) == 1
    assert set(events[0]) == EVENT_KEYS | LAST_RUN
    assert (events[0]["job_id"], events[0]["worker"], events[0]["state"]) == (
        job_id,
        "worker-1",
        "ERROR",
    )
    assert events[0]["job_title"] == "Job 1"
    assert [e["job_id"] for e in api.get("/api/events").json()] == [other, job_id]
    assert api.get("/api/events", params={"worker": "nobody"}).json() == []
