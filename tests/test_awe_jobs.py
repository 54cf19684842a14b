"""The AWE face's jobs: workflow documents submitted and read back (docs/awe.md)."""

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.config import AweConfig, Config, ServerConfig
from core.workflows import ORDERS
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


CLIENT = "3d0e7c1e-1d1f-4c2a-8e3b-0a1b2c3d4e5f"
ONE_TASK: dict[str, Any] = {"tasks": [{"taskid": "0", "cmd": {"name": "bash", "args": "-c true"}}]}


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(server=ServerConfig(data_dir=str(tmp_path)), awe=AweConfig(checkout_wait=0.3))


def submit(api: httpx.Client, document: object) -> httpx.Response:
    return api.post("/awe/job", files={"upload": ("job.json", json.dumps(document).encode())})


def made(api: httpx.Client, info: dict[str, Any], document: dict[str, Any] = ONE_TASK) -> str:
    response = submit(api, {**document, "info": info})
    assert response.status_code == 200, response.text
    job_id: str = response.json()["data"]["id"]
    return job_id


def listed(api: httpx.Client, params: Any) -> list[str]:
    response = api.get("/awe/job", params=params)
    assert response.status_code == 200, response.text
    return [j["id"] for j in response.json()["data"]]


def refused(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["status"], body["data"]) == (400, None)
    message: str = body["error"][0]
    return message


def take(api: httpx.Client) -> str:
    """Check out the next workunit as the test's client; its id."""
    unit = api.get("/awe/work", params={"client": CLIENT}).json()["data"]
    assert unit is not None
    unit_id: str = unit["id"]
    return unit_id


def register(api: httpx.Client) -> None:
    profile = {"id": CLIENT, "name": "w", "group": "default", "apps": ["bash"]}
    api.post("/awe/client", files={"profile": ("p.json", json.dumps(profile).encode())})


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
        ({"tasks": [{"taskid": "0", "cmd": {"name": "x"}, "totalwork": 100_001}]},
         "task 0 has totalwork 100001; a task holds 100000 workunits at most"),
        ({"info": {"priority": 2**31}, "tasks": [{"taskid": "0", "cmd": {"name": "x"}}]},
         "Expected `int` <= 2147483647 - at `$.info.priority`"),
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
    # the envelope's status is the answer's, a method no route serves included
    patched = api.patch("/awe/job")
    assert patched.status_code == 405
    assert patched.json() == {"status": 405, "data": None, "error": ["Method Not Allowed"]}


def test_pages_are_ordered_by_postgresql_in_each_order_and_direction(
    api: httpx.Client, sql: Sql
) -> None:
    infos = [
        {"name": "b", "priority": 5},
        {"name": "c", "priority": 9},
        {"name": "a", "priority": 1},
    ]
    ids = [made(api, info) for info in infos]
    # distinct update times, in an order of their own
    for job_id, moment in zip(ids, (300, 100, 200), strict=True):
        sql.execute("UPDATE workflows SET updated = $2 WHERE id = $1::uuid", job_id, moment)
    orders = {
        "info.submittime": ids,
        "info.name": [ids[2], ids[0], ids[1]],
        "info.priority": [ids[2], ids[0], ids[1]],
        "updatetime": [ids[1], ids[2], ids[0]],
        "id": sorted(ids),
    }
    for order, ascending in orders.items():
        assert listed(api, {"order": order, "direction": "asc"}) == ascending, order
        assert listed(api, {"order": order}) == ascending[::-1], order
    for order in ORDERS:
        for direction in ("asc", "desc"):
            assert len(listed(api, {"order": order, "direction": direction})) == 3
    page = api.get("/awe/job", params={"order": "info.name", "limit": 1, "offset": 1}).json()
    assert [j["info"]["name"] for j in page["data"]] == ["b"]
    assert (page["limit"], page["offset"], page["total_count"]) == (1, 1, 3)
    assert "cannot order jobs by 'info.colour'" in refused(
        api.get("/awe/job", params={"order": "info.colour"})
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [({"limit": "abc"}, 'strconv.Atoi: parsing "abc": invalid syntax'),
     ({"offset": "1.5"}, 'strconv.Atoi: parsing "1.5": invalid syntax'),
     ({"limit": "٣"}, 'strconv.Atoi: parsing "٣": invalid syntax'),
     ({"offset": "9" * 30}, f'strconv.Atoi: parsing "{"9" * 30}": value out of range'),
     ({"limit": "-1"}, "limit must not be negative: -1"),
     ({"query": "", "date_start": "yesterday"}, "Invalid datetime format: yesterday"),
     ({"query": "", "date_end": "2024-02-30"}, "Invalid datetime format: 2024-02-30"),
     ({"query": "", "date_end": "2024-01-01T00:00:00"},
      "Invalid datetime format: 2024-01-01T00:00:00"),
     ({"query": "", "distinct": "xref"},
      "unable to run distinct query on non-indexed info field: xref"),
     ({"query": "", "info.colour": "red"}, "cannot query jobs by 'info.colour'"),
     ({"query": "", "user": "ana"}, "cannot query jobs by 'user'"),
     ({"query": "", "info.userattr.": "x"}, "cannot query jobs by 'info.userattr.'")],
)  # fmt: skip
def test_bad_listing_parameters_are_refused_and_say_what_was_wrong(
    api: httpx.Client, params: dict[str, str], message: str
) -> None:
    made(api, {"name": "x"})
    assert refused(api.get("/awe/job", params=params)).startswith(message)


def test_a_limit_above_a_page_is_served_as_a_page(api: httpx.Client, config: Config) -> None:
    made(api, {"name": "x"})
    page = api.get("/awe/job", params={"limit": str(10**12)}).json()
    assert (page["limit"], page["total_count"]) == (config.limits.max_page, 1)


def test_a_query_matches_field_paths_with_any_of_their_values(api: httpx.Client) -> None:
    ana = made(
        api,
        {
            "name": "n1",
            "user": "ana",
            "pipeline": "amplicon",
            "priority": 3,
            "project": "p1",
            "clientgroups": "gpu",
            "userattr": {"submission": "s1"},
        },
    )
    bob = made(
        api,
        {
            "name": "n2",
            "user": "bob",
            "pipeline": "wgs",
            "priority": 7,
            "project": "p2",
            "userattr": {"submission": "s2"},
        },
    )
    eve = made(api, {"name": "n,3", "user": "eve", "pipeline": "wgs", "priority": 7})

    def query(**fields: str | list[str]) -> set[str]:
        return set(listed(api, {"query": "", **fields}))

    assert query() == {ana, bob, eve}
    assert query(**{"info.user": "ana"}) == {ana}
    assert query(**{"info.user": "ana,bob"}) == {ana, bob}
    assert query(**{"info.user": ["ana", "eve"]}) == {ana, eve}
    assert query(**{"info.pipeline": "wgs", "info.user": "bob,ana"}) == {bob}
    assert query(**{"info.priority": "7"}) == {bob, eve}
    assert query(**{"info.priority": "seven"}) == set()
    assert query(**{"info.project": "p1,p2"}) == {ana, bob}
    assert query(**{"info.clientgroups": "gpu"}) == {ana}
    assert query(**{"info.userattr.submission": "s2"}) == {bob}
    assert query(**{"info.noretry": "false"}) == {ana, bob, eve}
    assert query(**{"info.name": "n"}) == set()
    assert query(id=f"{ana},{eve}") == {ana, eve}
    assert query(id="not-a-uuid") == set()
    assert query(state="queued") == {ana, bob, eve}
    assert query(state="completed,queuing") == set()
    # a key that is no field path of AWE's is skipped, as AWE skips it
    assert query(recent="5", userattr="x") == {ana, bob, eve}
    # without `query`, field paths are not filters (as in AWE)
    assert set(listed(api, {"info.user": "ana"})) == {ana, bob, eve}
    counted = api.get("/awe/job", params={"query": "", "info.pipeline": "wgs", "limit": 1})
    assert (len(counted.json()["data"]), counted.json()["total_count"]) == (1, 2)


def test_dates_select_jobs_submitted_or_completed_in_the_range(api: httpx.Client, sql: Sql) -> None:
    old, new, done = (made(api, {"name": n}) for n in ("old", "new", "done"))
    day = 86400
    jan = 1704067200  # 2024-01-01T00:00:00Z
    sql.execute("UPDATE workflows SET submitted = $2 WHERE id = $1::uuid", old, jan - 5 * day)
    sql.execute("UPDATE workflows SET submitted = $2 WHERE id = $1::uuid", new, jan + day / 2)
    sql.execute(
        "UPDATE workflows SET submitted = $2, completed = $3 WHERE id = $1::uuid",
        done, jan - 9 * day, jan + day + 60,
    )  # fmt: skip

    def between(**dates: str) -> set[str]:
        return set(listed(api, {"query": "", **dates}))

    assert between(date_start="2024-01-01") == {new, done}
    assert between(date_start="2024-01-01", date_end="2024-01-02") == {new}
    assert between(date_start="2024-01-02T00:00:00Z", date_end="2024-01-03") == {done}
    assert between(date_end="2023-12-28T00:00:00.5+01:00") == {old, done}
    assert between(date_end="2023-12-20") == set()
    # as text: the order follows
    times = api.get("/awe/job", params={"query": "", "distinct": "submittime"}).json()["data"]
    assert times == ["2023-12-23T00:00:00.000000Z", "2023-12-27T00:00:00.000000Z",
                     "2024-01-01T12:00:00.000000Z"]  # fmt: skip
    completed = api.get("/awe/job", params={"query": "", "distinct": "completedtime"}).json()
    assert completed["data"] == ["2024-01-02T00:01:00.000000Z"]


def test_distinct_answers_the_values_of_an_indexed_info_field(api: httpx.Client) -> None:
    made(api, {"name": "x", "user": "ana", "priority": 4, "userattr": {"submission": "s1"}})
    made(api, {"name": "y", "user": "bob", "priority": 4})
    made(api, {"name": "z", "user": "ana", "priority": 2, "pipeline": "wgs"})

    def distinct(field: str, **fields: str) -> Any:
        answer = api.get("/awe/job", params={"query": "", "distinct": field, **fields})
        assert answer.status_code == 200, answer.text
        return answer.json()["data"]

    assert distinct("user") == ["ana", "bob"]
    assert distinct("priority") == [2, 4]
    assert distinct("user", **{"info.priority": "4"}) == ["ana", "bob"]
    assert distinct("pipeline", **{"info.user": "ana"}) == ["", "wgs"]
    assert distinct("userattr.submission") == ["s1"]
    assert distinct("name", **{"info.user": "nobody"}) == []


def test_verbosity_minimal_shows_each_job_in_a_few_fields(api: httpx.Client) -> None:
    document = {"tasks": [
        {"taskid": "0", "cmd": {"name": "bash"}, "inputs": [{"filename": "a", "size": 40}]},
        {"taskid": "1", "cmd": {"name": "bash"}, "totalwork": 2, "dependsOn": ["0"],
         "inputs": [{"filename": "b", "url": "http://x/b", "size": 2}]},
    ]}  # fmt: skip
    job_id = made(api, {"name": "mini", "userattr": {"k": "v"}}, document)
    [job] = api.get("/awe/job", params={"verbosity": "minimal"}).json()["data"]
    assert list(job) == ["id", "name", "size", "submittime", "completedtime", "computetime",
                         "task", "state", "userattr"]  # fmt: skip
    assert (job["id"], job["name"], job["size"]) == (job_id, "mini", 42)
    assert (job["task"], job["state"]) == ([1, 2], ["queued", "pending"])
    assert job["completedtime"] == "0001-01-01T00:00:00Z"
    assert job["userattr"] == {"k": "v"}


def test_a_listing_by_state_agrees_with_the_state_each_job_shows(api: httpx.Client) -> None:
    register(api)
    done = made(api, {"name": "done"})
    api.put(f"/awe/work/{take(api)}", params={"status": "done", "client": CLIENT})
    running = made(api, {"name": "running"}, WORKFLOW)
    assert take(api) == f"{running}_0_0"
    queued = made(api, {"name": "queued"})
    suspended = made(api, {"name": "suspended"})
    api.put(f"/awe/job/{suspended}?suspend")
    deleted = made(api, {"name": "deleted"})
    api.delete(f"/awe/job/{deleted}")
    shown = {
        j: api.get(f"/awe/job/{j}").json()["data"]["state"]
        for j in (done, running, queued, suspended, deleted)
    }
    assert shown == {done: "completed", running: "in-progress", queued: "queued",
                     suspended: "suspend", deleted: "deleted"}  # fmt: skip
    for state in ("queued", "in-progress", "completed", "suspend", "deleted", "failed-permanent"):
        expected = {j for j, s in shown.items() if s == state}
        assert set(listed(api, {"query": "", "state": state})) == expected, state
    answer = api.get("/awe/job", params={"order": "state", "direction": "asc"}).json()
    assert [j["state"] for j in answer["data"]] == sorted(shown.values())
    assert set(listed(api, {"active": ""})) == {running, queued}
    assert set(listed(api, {"suspend": ""})) == {suspended}
    assert set(listed(api, {"registered": ""})) == {running, queued, suspended}
    assert set(listed(api, {"registered": "", "query": "", "state": "suspend,completed"})) == {
        suspended
    }
    # completion is kept by the tree: its time and the order by it
    [first] = api.get("/awe/job", params={"order": "info.completedtime", "limit": 1}).json()["data"]
    assert first["id"] == done
    assert first["info"]["completedtime"] != "0001-01-01T00:00:00Z"


def job_document(job_id: str, **changes: Any) -> dict[str, Any]:
    """A completed job as another AWE server shows it (GET /job/<id>)."""
    document: dict[str, Any] = {
        "id": job_id,
        "info": {"name": "imported", "user": "ana", "priority": 2,
                 "submittime": "2023-05-01T10:00:00Z", "completedtime": "2023-05-02T10:00:00Z"},
        "tasks": [
            {"task_name": "0", "taskid": f"{job_id}_0", "cmd": {"name": "bash"},
             "outputs": [{"filename": "a.txt", "node": "n1", "host": "http://shock"}],
             "state": "completed", "remainwork": 0},
            {"taskid": f"{job_id}_1", "cmd": {"name": "bash"}, "dependsOn": [f"{job_id}_0"],
             "totalwork": 2, "state": "completed"},
        ],
        "state": "completed",
    }  # fmt: skip
    return {**document, **changes}


def import_job(api: httpx.Client, document: object) -> httpx.Response:
    return api.post("/awe/job", files={"import": ("job.json", json.dumps(document).encode())})


def test_an_imported_job_is_kept_completed_under_its_id_and_never_queued(
    api: httpx.Client, sql: Sql
) -> None:
    job_id = "0f3b6c2e-5a4d-4e8f-9a1b-2c3d4e5f6a7b"
    response = import_job(api, job_document(job_id))
    assert response.status_code == 200, response.text
    job = response.json()["data"]
    assert (job["id"], job["state"], job["remaintasks"]) == (job_id, "completed", 0)
    assert [(t["task_name"], t["state"], t["remainwork"]) for t in job["tasks"]] == [
        ("0", "completed", 0), ("1", "completed", 0)
    ]  # fmt: skip
    assert job["tasks"][0]["outputs"][0]["node"] == "n1"
    assert job["info"]["submittime"].startswith("2023-05-01T10:00:00")
    assert job["info"]["completedtime"].startswith("2023-05-02T10:00:00")
    assert api.get(f"/awe/job/{job_id}").json()["data"]["state"] == "completed"
    leaves = sql.fetch(
        "SELECT j.state FROM jobs j JOIN workflow_units u ON u.job_id = j.id "
        "JOIN workflows w ON w.job_id = u.workflow_id WHERE w.id = $1::uuid", job_id
    )  # fmt: skip
    assert [r["state"] for r in leaves] == ["FINISHED"] * 3
    assert sql.fetchval("SELECT count(*) FROM awe_nodes") == 0
    register(api)
    assert api.get("/awe/work", params={"client": CLIENT}).json()["error"] == [
        "No eligible workunit found"
    ]
    assert listed(api, {"query": "", "state": "completed"}) == [job_id]
    again = import_job(api, job_document(job_id))
    assert refused(again) == f"invalid job import: job {job_id} already exists"


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"state": "in-progress"}, "invalid job import: must be completed"),
     ({"state": None}, "invalid job import: must be completed"),
     ({"id": ""}, "missing job id"),
     ({"info": None}, "missing job info"),
     ({"tasks": []}, "invalid job document: task list empty"),
     ({"id": "job-1"}, "invalid job import: the job id 'job-1' is not a UUID"),
     ({"tasks": [{"taskid": "0", "cmd": {}}]}, "invalid job script: task 0 has no cmd.name"),
     ({"tasks": "none"}, "invalid job document: Expected `array`")],
)  # fmt: skip
def test_bad_imports_are_refused_and_store_nothing(
    api: httpx.Client, sql: Sql, changes: dict[str, Any], message: str
) -> None:
    before = sql.snapshot()
    document = job_document("0f3b6c2e-5a4d-4e8f-9a1b-2c3d4e5f6a7b", **changes)
    document = {k: v for k, v in document.items() if v is not None}
    assert refused(import_job(api, document)).startswith(message)
    assert refused(api.post("/awe/job", files={"import": ("j", b"{")})).startswith(
        "invalid job document: not JSON"
    )
    assert sql.snapshot() == before
