"""The AWE face's jobs: workflow documents submitted and read back (docs/awe.md)."""

import json
import re
from typing import Any

import httpx
import pytest

from tests.conftest import Sql

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
WORKFLOW: dict[str, Any] = {
    "info": {"name": "assembly", "user": "ana", "pipeline": "demo", "priority": 5},
    "tasks": [
        {"taskid": "0", "cmd": {"name": "bash", "args": "-c 'echo a > a.txt'"},
         "outputs": [{"filename": "a.txt"}], "totalwork": 1},
        {"taskid": "1", "cmd": {"name": "bash", "args": "-c 'cat @a.txt'"},
         "inputs": {"a.txt": {"origin": "0"}}, "totalwork": 3},
        {"taskid": "2", "cmd": {"name": "bash", "args": "-c true"}, "dependsOn": ["1"]},
    ],
}  # fmt: skip


def submit(api: httpx.Client, document: object) -> httpx.Response:
    return api.post("/awe/job", files={"upload": ("job.json", json.dumps(document).encode())})


def test_a_workflow_becomes_a_tree_of_tasks_and_workunits(api: httpx.Client, sql: Sql) -> None:
    response = submit(api, WORKFLOW)
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["status", "data", "error"]
    assert body["status"] == 200
    assert body["error"] is None
    job = body["data"]
    assert UUID4.match(job["id"])
    assert job["state"] == "init"
    assert [t["task_name"] for t in job["tasks"]] == ["0", "1", "2"]
    assert job["tasks"][1]["inputs"][0]["filename"] == "a.txt"
    assert job["tasks"][1]["taskid"] == f"{job['id']}_1"
    assert response.headers["access-control-allow-origin"] == "*"
    # the tree: a root group, a group per task, ranks 0 or 1..N as leaves
    root = sql.fetchval("SELECT job_id FROM workflows WHERE id = $1::uuid", job["id"])
    titles = [
        r["title"]
        for r in sql.fetch(
            "SELECT title FROM jobs WHERE path[1] = $1 AND command <> '' ORDER BY id", root
        )
    ]
    assert titles == ["0_0", "1_1", "1_2", "1_3", "2_0"]
    deps = sql.fetch(
        "SELECT j.title AS job, d.title AS on FROM dependencies x JOIN jobs j ON j.id = x.job_id"
        " JOIN jobs d ON d.id = x.depends_on ORDER BY 1"
    )
    assert [(r["job"], r["on"]) for r in deps] == [("1", "0"), ("2", "1")]
    got = api.get(f"/awe/job/{job['id']}").json()["data"]
    assert got["state"] == "queued"
    assert [t["state"] for t in got["tasks"]] == ["queued", "pending", "pending"]
    assert [t["remainwork"] for t in got["tasks"]] == [1, 3, 1]
    assert got["info"]["priority"] == 5


def test_jobs_are_listed_in_pages_newest_first(api: httpx.Client) -> None:
    ids = [
        submit(api, {**WORKFLOW, "info": {"name": f"w{i}"}}).json()["data"]["id"] for i in range(3)
    ]
    listed = api.get("/awe/job", params={"limit": 2}).json()
    assert list(listed) == ["status", "data", "error", "limit", "offset", "total_count"]
    assert listed["total_count"] == 3
    assert [j["id"] for j in listed["data"]] == ids[::-1][:2]
    rest = api.get("/awe/job", params={"limit": 2, "offset": 2}).json()
    assert [j["id"] for j in rest["data"]] == ids[:1]
    by_name = api.get("/awe/job", params={"order": "info.name", "direction": "asc"}).json()
    assert [j["info"]["name"] for j in by_name["data"]] == ["w0", "w1", "w2"]
    assert api.get("/awe/job", params={"active": ""}).json()["total_count"] == 3
    assert api.get("/awe/job", params={"suspend": ""}).json()["total_count"] == 0


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({"info": {}, "tasks": []}, "task list empty"),
        ({"tasks": [{"taskid": "0", "cmd": {}}]}, "cmd.name"),
        ({"tasks": [{"taskid": "0", "cmd": {"name": "x"}, "dependsOn": ["9"]}]}, "depends on 9"),
        ({"tasks": [{"taskid": "0", "cmd": {"name": "x"},
                     "inputs": [{"filename": "a"}, {"filename": "a"}]}]},
         "multiple inputs with filename=a"),
        ({"tasks": [{"taskid": "a/b", "cmd": {"name": "x"}}]}, "task id"),
        ("not a workflow", "invalid job script"),
    ],
)  # fmt: skip
def test_bad_documents_are_refused_and_store_nothing(
    api: httpx.Client, sql: Sql, document: object, words: str
) -> None:
    before = sql.snapshot()
    response = submit(api, document)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["status"] == 400
    assert body["data"] is None
    assert words in body["error"][0]
    assert sql.snapshot() == before


def test_submissions_without_a_document_are_refused(api: httpx.Client) -> None:
    plain = api.post("/awe/job", json=WORKFLOW)
    assert plain.status_code == 400
    assert "multipart/form-data" in plain.json()["error"][0]
    empty = api.post("/awe/job", files={"other": ("x", b"1")})
    assert empty.json()["error"] == ["No job script or awf is submitted"]


def test_unknown_jobs_answer_400_and_the_root_describes_the_server(api: httpx.Client) -> None:
    unknown = api.get("/awe/job/6f1c9a53-0f1e-4d3a-9c1e-2f7b1f1f1f1f")
    assert unknown.status_code == 400
    assert unknown.json()["error"][0].startswith("job not found:")
    root = api.get("/awe/").json()
    assert root["id"] == "AWE"
    assert root["queue_status"] == "running"
    assert UUID4.match(root["uuid"])
    assert api.get("/awe/").json()["uuid"] == root["uuid"]
    options = api.options("/awe/job")
    assert options.status_code == 200
    assert options.json() == {"status": 200, "data": None, "error": None}
