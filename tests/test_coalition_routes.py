"""The routes the original Coalition server serves beyond its REST document (see
docs/coalition.md, "extra routes"), and the behaviours of the document's routes that the
legacy clients rely on: affinity slots, distinct values, where-queries, the web prefix,
/xmlrpc/addjob, JSON environments, full-job PUT bodies, hierarchical priority and moves."""

from typing import Any

import httpx
import pytest

from core.config import AffinitiesConfig, Config
from tests.conftest import Sql
from tests.farm import WORKERS, append_log, finish, get, ok, run, start, submit

NO_NEW_AFFINITIES = Config(affinities=AffinitiesConfig(create_unknown=False))

# the dispatch candidates in the order of the jobs_ready index of migrations/0001_initial.sql
DISPATCH_ORDER = """
    SELECT id FROM jobs
     WHERE state = 'WAITING' AND NOT paused AND command <> ''
     ORDER BY prio_path DESC, id
"""
COUNTERS = ("state", "total", "total_finished", "total_errors", "total_working")
DIRECT = ("finished", "errors", "working")


@pytest.fixture
def config(request: pytest.FixtureRequest) -> Config:
    """The default settings, or the ones a test passes with indirect parametrization."""
    given: Config = getattr(request, "param", Config())
    return given


def legacy_slots(named: dict[int, str] | None = None) -> dict[str, str]:
    """The body the legacy client sends to POST /api/affinities: all 64 slots, most empty."""
    named = named or {}
    return {str(slot): named.get(slot, "") for slot in range(1, 65)}


def counters(api: httpx.Client, job_id: int, keys: tuple[str, ...] = COUNTERS) -> dict[str, Any]:
    job = get(api, job_id)
    return {k: job[k] for k in keys}


def ids(rows: list[dict[str, Any]]) -> list[int]:
    return [int(r["id"]) for r in rows]


# --- POST /api/reseterrorjobs ---------------------------------------------------------


def test_reseterrorjobs_resets_only_the_error_leaves_of_the_given_subtrees(
    api: httpx.Client, sql: Sql
) -> None:
    group = submit(api, title="group")
    failed = submit(api, title="failed", command="false", parent=group)
    done = submit(api, title="done", command="true", parent=group)
    sub = submit(api, title="sub", parent=group)
    sub_failed = submit(api, title="sub failed", command="false", parent=sub)
    sub_done = submit(api, title="sub done", command="true", parent=sub)
    outside = submit(api, title="outside", command="false")
    for job_id, exit_code in ((failed, 1), (sub_failed, 1), (outside, 1), (done, 0), (sub_done, 0)):
        event = start(sql, job_id)
        append_log(sql, job_id, b"boom\n" if exit_code else b"ok\n")
        finish(sql, event, exit_code)
    assert counters(api, group)["total_errors"] == 2

    # only the subtree of `sub`: its failed leaf, nothing above or beside it
    ok(api.post("/api/reseterrorjobs", json=[sub]))
    reset = get(api, sub_failed)
    assert (reset["state"], reset["run_done"], reset["start_time"], reset["worker"]) == (
        "WAITING",
        0,
        0,
        "",
    )
    assert api.get(f"/api/jobs/{sub_failed}/log").json() == ""
    assert get(api, failed)["state"] == "ERROR"
    assert get(api, outside)["state"] == "ERROR"
    assert get(api, sub_done)["state"] == "FINISHED"
    assert counters(api, sub, COUNTERS + DIRECT) == {
        "state": "WAITING", "total": 2, "total_finished": 1, "total_errors": 0,
        "total_working": 0, "finished": 1, "errors": 0, "working": 0,
    }  # fmt: skip
    assert counters(api, group) == {
        "state": "ERROR", "total": 4, "total_finished": 2, "total_errors": 1, "total_working": 0,
    }  # fmt: skip

    # the whole group: the other failed leaf too; finished ones stay finished, with their log
    ok(api.post("/api/reseterrorjobs", json=[group]))
    assert [get(api, j)["state"] for j in (failed, done, sub_failed, sub_done)] == [
        "WAITING",
        "FINISHED",
        "WAITING",
        "FINISHED",
    ]
    assert [get(api, j)["run_done"] for j in (failed, done, sub_failed, sub_done)] == [0, 1, 0, 1]
    assert api.get(f"/api/jobs/{done}/log").json() == "ok\n"
    assert api.get(f"/api/jobs/{failed}/log").json() == ""
    assert get(api, outside)["state"] == "ERROR"
    assert counters(api, group, COUNTERS + DIRECT) == {
        "state": "WAITING", "total": 4, "total_finished": 2, "total_errors": 0,
        "total_working": 0, "finished": 1, "errors": 0, "working": 0,
    }  # fmt: skip


# --- GET /api/jobs/{id}/childrendependencies -----------------------------------------


def test_childrendependencies_lists_each_dependency_of_each_direct_child(
    api: httpx.Client,
) -> None:
    first = submit(api, title="first", command="x")
    second = submit(api, title="second", command="x")
    group = submit(api, title="group")
    leaf = submit(api, title="leaf", command="x", parent=group, dependencies=[first, second])
    sub = submit(api, title="sub", parent=group, dependencies=[second])
    free = submit(api, title="free", command="x", parent=group)
    # a grandchild's dependencies are not the group's children's
    submit(api, title="grandchild", command="x", parent=sub, dependencies=[first])

    response = api.get(f"/api/jobs/{group}/childrendependencies")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    pairs = response.json()
    assert sorted(pairs, key=lambda p: (p["id"], p["dependency"])) == [
        {"id": leaf, "dependency": first},
        {"id": leaf, "dependency": second},
        {"id": sub, "dependency": second},
    ]
    assert free not in {p["id"] for p in pairs}
    assert api.get(f"/api/jobs/{first}/childrendependencies").json() == []


# --- GET and POST /api/affinities -----------------------------------------------------


def test_affinities_take_the_legacy_client_body_and_list_only_named_slots(
    api: httpx.Client,
) -> None:
    assert api.get("/api/affinities").json() == {}
    body = legacy_slots({1: "linux", 2: "gpu"})
    assert len(body) == 64
    ok(api.post("/api/affinities", json=body))
    response = api.get("/api/affinities")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"1": "linux", "2": "gpu"}
    # sending the same body again changes nothing
    ok(api.post("/api/affinities", json=body))
    assert api.get("/api/affinities").json() == {"1": "linux", "2": "gpu"}


def test_renaming_a_slot_renames_it_in_the_jobs_that_use_it(api: httpx.Client) -> None:
    ok(api.post("/api/affinities", json=legacy_slots({1: "linux", 2: "gpu"})))
    both = submit(api, title="both", command="x", affinity="linux,gpu")
    only_linux = submit(api, title="linux", command="x", affinity="linux")
    ok(api.post("/api/affinities", json=legacy_slots({1: "debian", 2: "gpu"})))
    assert api.get("/api/affinities").json() == {"1": "debian", "2": "gpu"}
    assert get(api, both)["affinity"] == "debian,gpu"
    assert get(api, only_linux)["affinity"] == "debian"
    assert api.get("/api/jobs/affinities/").json() == [
        {"affinity": "debian"},
        {"affinity": "debian,gpu"},
    ]


def test_clearing_a_slot_removes_its_name(api: httpx.Client) -> None:
    ok(api.post("/api/affinities", json=legacy_slots({1: "linux", 2: "gpu"})))
    both = submit(api, title="both", command="x", affinity="linux,gpu")
    ok(api.post("/api/affinities", json=legacy_slots({1: "linux", 2: ""})))
    assert api.get("/api/affinities").json() == {"1": "linux"}
    assert get(api, both)["affinity"] == "linux"
    # clearing the last one
    ok(api.post("/api/affinities", json=legacy_slots()))
    assert api.get("/api/affinities").json() == {}
    assert get(api, both)["affinity"] == ""


def test_a_cleared_slot_does_not_come_back_in_the_jobs_that_used_it(api: httpx.Client) -> None:
    """Once "gpu" is cleared, a name that later takes its slot must not show up (or count
    for dispatch) in the jobs that had "gpu"."""
    ok(api.post("/api/affinities", json=legacy_slots({1: "linux", 2: "gpu"})))
    old = submit(api, title="old", command="x", affinity="linux,gpu")
    ok(api.post("/api/affinities", json=legacy_slots({1: "linux", 2: ""})))
    assert get(api, old)["affinity"] == "linux"
    new = submit(api, title="new", command="x", affinity="cuda")
    assert get(api, new)["affinity"] == "cuda"
    assert "cuda" in api.get("/api/affinities").json().values()
    assert get(api, old)["affinity"] == "linux"


def test_affinity_names_are_created_on_first_use(api: httpx.Client) -> None:
    first = submit(api, title="first", command="x", affinity="LINUX,GPU")
    slots = api.get("/api/affinities").json()
    assert sorted(slots.values()) == ["GPU", "LINUX"]
    assert all(int(slot) > 0 for slot in slots)
    assert get(api, first)["affinity"] == "LINUX,GPU"
    # a known name takes no new slot; an edit creates names too
    second = submit(api, title="second", command="x", affinity="GPU")
    assert api.get("/api/affinities").json() == slots
    ok(api.post("/api/jobs", json={str(second): {"affinity": "GPU,CUDA"}}))
    assert get(api, second)["affinity"] == "GPU,CUDA"
    assert sorted(api.get("/api/affinities").json().values()) == ["CUDA", "GPU", "LINUX"]


@pytest.mark.parametrize("config", [NO_NEW_AFFINITIES], indirect=True)
def test_unknown_affinity_names_are_refused_when_creation_is_off(
    api: httpx.Client, sql: Sql
) -> None:
    ok(api.post("/api/affinities", json={"1": "linux"}))
    known = submit(api, title="known", command="x", affinity="linux")
    assert get(api, known)["affinity"] == "linux"
    jobs_before = sql.fetchval("SELECT count(*) FROM jobs")

    response = api.put("/api/jobs", json={"title": "t", "command": "x", "affinity": "linux,GPU"})
    assert response.status_code == 400, response.text
    assert "GPU" in response.json()["detail"]
    assert sql.fetchval("SELECT count(*) FROM jobs") == jobs_before

    response = api.post("/api/jobs", json={str(known): {"affinity": "CUDA"}})
    assert response.status_code == 400, response.text
    assert "CUDA" in response.json()["detail"]
    assert get(api, known)["affinity"] == "linux"

    sql.execute(WORKERS["register"], "node-1", "127.0.0.1", 1, "{}", None, None)
    response = api.post("/api/workers", json={"node-1": {"affinity": "linux\nFPGA"}})
    assert response.status_code == 400, response.text
    assert "FPGA" in response.json()["detail"]
    assert api.get("/api/workers").json()[0]["affinity"] == ""
    assert api.get("/api/affinities").json() == {"1": "linux"}


# --- distinct values ------------------------------------------------------------------


def test_distinct_values_of_jobs(api: httpx.Client, sql: Sql) -> None:
    finished = submit(api, title="a", command="x", user="ana", priority=1000, affinity="linux")
    failed = submit(api, title="b", command="x", user="bob", priority=2000, affinity="linux,gpu")
    working = submit(api, title="c", command="x", user="ana", priority=500, affinity="gpu")
    paused = submit(api, title="d", command="x", user="carl", priority=2000, affinity="linux")
    run(sql, finished, worker="node-1")
    run(sql, failed, exit_code=1, worker="node-2")
    run(sql, paused, worker="node-2")
    ok(api.post("/api/pausejobs", json=[paused]))
    start(sql, working, worker="node-1")

    def distinct(what: str, key: str) -> list[Any]:
        response = api.get(f"/api/jobs/{what}/")
        assert response.status_code == 200, response.text
        rows = response.json()
        assert all(list(row) == [key] for row in rows), rows
        return sorted(row[key] for row in rows)

    assert distinct("users", "user") == ["ana", "bob", "carl"]
    assert distinct("states", "state") == ["ERROR", "FINISHED", "PAUSED", "WORKING"]
    assert distinct("workers", "worker") == ["node-1", "node-2"]
    assert distinct("priorities", "priority") == [500, 1000, 2000]
    assert distinct("affinities", "affinity") == ["gpu", "linux", "linux,gpu"]


# --- GET /api/jobs/where/ and /api/jobs/count/where/ ----------------------------------


@pytest.fixture
def where_jobs(api: httpx.Client, sql: Sql) -> dict[str, int]:
    jobs = {
        "j1": submit(api, title="j1", command="x", user="ana", priority=1000, state="PAUSED"),
        "j2": submit(api, title="j2", command="x", user="andre", priority=2000),
        "j3": submit(api, title="j3", command="x", user="bob", priority=3000),
        "j4": submit(api, title="j4", command="x", user="ana", priority=2500),
        "j5": submit(api, title="j5", command="x", user="carl", priority=500),
        "grp": submit(api, title="grp", user="zed", priority=2000),
    }
    jobs["j6"] = submit(api, title="j6", command="x", user="bob", priority=2000, parent=jobs["grp"])
    run(sql, jobs["j3"])
    return jobs


WHERE_CASES = [
    ("state='PAUSED'", ["j1"]),
    ("user LIKE 'an%'", ["j1", "j2", "j4"]),
    ("id IN ({j2},{j4})", ["j2", "j4"]),
    ("priority >= 2000 AND NOT state='FINISHED'", ["j2", "j4", "grp", "j6"]),
    ("(user='ana' OR user='bob') AND priority > 1000", ["j3", "j4", "j6"]),
    ("NOT (priority < 1000 OR user = 'bob')", ["j1", "j2", "j4", "grp"]),
    ("state != 'WAITING' AND priority <= 3000", ["j1", "j3"]),
]


def test_where_returns_the_matching_rows_by_id_and_count_counts_them(
    api: httpx.Client, where_jobs: dict[str, int]
) -> None:
    wrong = []
    for template, names in WHERE_CASES:
        clause = template.format(**where_jobs)
        expected = sorted(where_jobs[n] for n in names)
        rows = api.get("/api/jobs/where/", params={"where_clause": clause})
        count = api.get("/api/jobs/count/where/", params={"where_clause": clause})
        got = (
            rows.status_code,
            ids(rows.json()) if rows.status_code == 200 else rows.text,
            count.status_code,
            count.json() if count.status_code == 200 else count.text,
        )
        if got != (200, expected, 200, len(expected)):
            wrong.append((clause, "expected", expected, "got", got))
    assert wrong == []


def test_where_rows_are_full_jobs(api: httpx.Client, where_jobs: dict[str, int]) -> None:
    rows = api.get("/api/jobs/where/", params={"where_clause": "user='carl'"}).json()
    assert len(rows) == 1
    assert rows[0] == {k: v for k, v in get(api, where_jobs["j5"]).items() if k != "dependencies"}


def test_where_pages_by_min_and_max(api: httpx.Client, where_jobs: dict[str, int]) -> None:
    everything = sorted(where_jobs.values())

    def page(clause: str, **bounds: int) -> list[int]:
        response = api.get("/api/jobs/where/", params={"where_clause": clause, **bounds})
        assert response.status_code == 200, response.text
        return ids(response.json())

    assert page("", min=0, max=2) == everything[0:2]
    assert page("", min=2, max=5) == everything[2:5]
    assert page("", min=5) == everything[5:]
    assert page("", min=3, max=100) == everything[3:]
    assert page("", min=4, max=2) == []
    assert page("", min=7, max=9) == []
    ana_or_andre = sorted(where_jobs[n] for n in ("j1", "j2", "j4"))
    assert page("user LIKE 'an%'", min=1, max=3) == ana_or_andre[1:3]


def test_an_empty_where_clause_matches_every_job(
    api: httpx.Client, where_jobs: dict[str, int]
) -> None:
    everything = sorted(where_jobs.values())
    response = api.get("/api/jobs/where/", params={"where_clause": ""})
    assert response.status_code == 200, response.text
    assert ids(response.json()) == everything
    assert api.get("/api/jobs/count/where/", params={"where_clause": ""}).json() == len(everything)


# --- /api/webfrontend/<x> -------------------------------------------------------------


def test_the_webfrontend_prefix_serves_the_same_api(api: httpx.Client) -> None:
    group = submit(api, title="group", user="ana")
    child = submit(api, title="child", command="x", parent=group, affinity="linux")
    for path in (
        "/jobs",
        f"/jobs/{group}",
        f"/jobs/{group}/children",
        f"/jobs/{child}/dependencies",
        "/workers",
        "/affinities",
        "/jobs/users/",
        "/events",
    ):
        plain = api.get(f"/api{path}")
        web = api.get(f"/api/webfrontend{path}")
        assert (web.status_code, web.json()) == (plain.status_code, plain.json()), path
        assert plain.status_code == 200, path
    count = api.get("/api/webfrontend/jobs/count/where/", params={"where_clause": "user='ana'"})
    assert (count.status_code, count.json()) == (200, 1)

    response = api.put("/api/webfrontend/jobs", json={"title": "web", "command": "y"})
    assert response.status_code == 200, response.text
    created = response.json()
    assert get(api, created)["title"] == "web"
    ok(api.post("/api/webfrontend/jobs", json={str(child): {"title": "renamed"}}))
    assert get(api, child)["title"] == "renamed"


# --- /xmlrpc/addjob -------------------------------------------------------------------


def legacy_fields(parent: int, deps: tuple[int, int]) -> dict[str, str]:
    return {
        "parent": str(parent),
        "title": "legacy",
        "cmd": "render -f 1",
        "dir": "/shots/a",
        "env": "A=1\nB=2",
        "priority": "1500",
        "timeout": "60",
        "affinity": "linux",
        "dependencies": f"{deps[0]},{deps[1]}",
        "localprogress": "#%percent",
        "url": "http://x/a.png",
        "user": "ana",
        "state": "PAUSED",
    }


def add_job(api: httpx.Client, method: str, fields: dict[str, str]) -> httpx.Response:
    if method == "GET":
        return api.get("/xmlrpc/addjob", params=fields)
    return api.post("/xmlrpc/addjob", data=fields)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_addjob_answers_200_and_the_new_id_as_plain_text(api: httpx.Client, method: str) -> None:
    response = add_job(api, method, {"title": "plain", "cmd": "ls"})
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    assert response.text.isdigit(), response.text
    assert get(api, int(response.text))["command"] == "ls"
    assert response.status_code == 200


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_addjob_stores_every_legacy_field(api: httpx.Client, method: str) -> None:
    group = submit(api, title="group")
    deps = (submit(api, title="d1", command="x"), submit(api, title="d2", command="x"))
    response = add_job(api, method, legacy_fields(group, deps))
    assert response.text.isdigit(), (response.status_code, response.text, response.headers)
    job = get(api, int(response.text))
    assert {k: job[k] for k in job if k in {
        "parent", "title", "command", "dir", "environment", "priority", "timeout",
        "affinity", "progress_pattern", "url", "user", "state", "dependencies",
    }} == {
        "parent": group, "title": "legacy", "command": "render -f 1", "dir": "/shots/a",
        "environment": "A=1\nB=2", "priority": 1500, "timeout": 60, "affinity": "linux",
        "progress_pattern": "#%percent", "url": "http://x/a.png", "user": "ana",
        "state": "PAUSED", "dependencies": sorted(deps),
    }  # fmt: skip
    assert [c["id"] for c in api.get(f"/api/jobs/{group}/children").json()] == [job["id"]]
    # `command` is accepted as well as `cmd`
    other = add_job(api, method, {"title": "t", "command": "echo 1"})
    assert get(api, int(other.text))["command"] == "echo 1"


# --- environment as a JSON object -----------------------------------------------------


def test_an_environment_object_is_stored_as_lines(api: httpx.Client) -> None:
    job_id = submit(api, title="env", command="x", environment={"A": "1", "B": "2"})
    assert get(api, job_id)["environment"] == "A=1\nB=2"
    ok(api.post("/api/jobs", json={str(job_id): {"environment": {"C": "3", "D": "x=y"}}}))
    assert get(api, job_id)["environment"] == "C=3\nD=x=y"
    ok(api.post("/api/jobs", json={str(job_id): {"environment": "E=5"}}))
    assert get(api, job_id)["environment"] == "E=5"


# --- the legacy client's full PUT body ------------------------------------------------


def test_a_put_with_every_field_of_a_job_read_back_is_accepted(api: httpx.Client, sql: Sql) -> None:
    group = submit(api, title="group")
    source = submit(
        api, title="source", command="render", dir="/d", environment="A=1", retry=3,
        timeout=60, priority=1200, affinity="linux", user="ana", url="http://u",
        progress_pattern="%percent", parent=group,
    )  # fmt: skip
    run(sql, source)
    listed = api.get(f"/api/jobs/{group}/children").json()[0]
    assert (listed["state"], listed["worker"]) == ("FINISHED", "node-1")
    body = {**listed, "title": "copy", "paused": 0}

    response = api.put("/api/jobs", json=body)
    assert response.status_code == 200, response.text
    copy = get(api, response.json())
    assert copy["id"] != source
    # what the client may set is taken ...
    assert {k: copy[k] for k in (
        "parent", "title", "command", "dir", "environment", "retry", "timeout", "priority",
        "affinity", "user", "url", "progress_pattern",
    )} == {
        "parent": group, "title": "copy", "command": "render", "dir": "/d",
        "environment": "A=1", "retry": 3, "timeout": 60, "priority": 1200,
        "affinity": "linux", "user": "ana", "url": "http://u", "progress_pattern": "%percent",
    }  # fmt: skip
    # ... what the server owns is not
    assert {k: copy[k] for k in (
        "state", "worker", "start_time", "duration", "ping_time", "run_done", "finished",
        "errors", "working", "total", "total_finished", "total_errors", "total_working",
        "progress",
    )} == {
        "state": "WAITING", "worker": "", "start_time": 0, "duration": 0, "ping_time": 0,
        "run_done": 0, "finished": 0, "errors": 0, "working": 0, "total": 0,
        "total_finished": 0, "total_errors": 0, "total_working": 0, "progress": 0.0,
    }  # fmt: skip
    assert counters(api, group) == {
        "state": "WAITING", "total": 2, "total_finished": 1, "total_errors": 0,
        "total_working": 0,
    }  # fmt: skip


# --- hierarchical priority ------------------------------------------------------------


def dispatch_order(sql: Sql) -> list[int]:
    return [r["id"] for r in sql.fetch(DISPATCH_ORDER)]


def test_waiting_leaves_are_ordered_by_the_priorities_down_their_groups(
    api: httpx.Client, sql: Sql
) -> None:
    high = submit(api, title="high group", priority=2000)
    low = submit(api, title="low group", priority=100)
    negative = submit(api, title="negative group", priority=-5)
    high_first = submit(api, title="low leaf of high", command="x", parent=high, priority=1)
    high_second = submit(api, title="same priority", command="x", parent=high, priority=1)
    low_leaf = submit(api, title="high leaf of low", command="x", parent=low, priority=9999)
    negative_leaf = submit(
        api, title="top leaf of negative", command="x", parent=negative, priority=2**31 - 1
    )
    top_root = submit(api, title="root leaf", command="x", priority=2**31 - 1)
    assert dispatch_order(sql) == [top_root, high_first, high_second, low_leaf, negative_leaf]
    assert get(api, negative_leaf)["priority"] == 2**31 - 1
    assert get(api, negative)["priority"] == -5


def test_editing_a_group_priority_reorders_its_whole_subtree(api: httpx.Client, sql: Sql) -> None:
    high = submit(api, title="high group", priority=2000)
    low = submit(api, title="low group", priority=100)
    high_leaf = submit(api, title="high leaf", command="x", parent=high, priority=1)
    low_leaf = submit(api, title="low leaf", command="x", parent=low, priority=9999)
    low_sub = submit(api, title="low sub", parent=low, priority=5)
    low_deep = submit(api, title="low deep", command="x", parent=low_sub, priority=50_000)
    assert dispatch_order(sql) == [high_leaf, low_leaf, low_deep]

    ok(api.post("/api/jobs", json={str(low): {"priority": 3000}}))
    prio_paths = {
        r["id"]: list(r["prio_path"]) for r in sql.fetch("SELECT id, prio_path FROM jobs")
    }
    assert prio_paths == {
        high: [2000], low: [3000], high_leaf: [2000, 1], low_leaf: [3000, 9999],
        low_sub: [3000, 5], low_deep: [3000, 5, 50_000],
    }  # fmt: skip
    assert dispatch_order(sql) == [low_leaf, low_deep, high_leaf]
    assert get(api, low)["priority"] == 3000
    assert get(api, low_leaf)["priority"] == 9999

    # a middle group: only its own subtree moves
    ok(api.post("/api/jobs", json={str(low_sub): {"priority": 10_000}}))
    assert list(sql.fetchval("SELECT prio_path FROM jobs WHERE id = $1", low_deep)) == [
        3000,
        10_000,
        50_000,
    ]
    assert dispatch_order(sql) == [low_deep, low_leaf, high_leaf]


# --- moving a job ---------------------------------------------------------------------


def test_moving_a_job_updates_the_counters_of_old_and_new_ancestors(
    api: httpx.Client, sql: Sql
) -> None:
    old_root = submit(api, title="old root")
    old_parent = submit(api, title="old parent", parent=old_root)
    moved = submit(api, title="moved", parent=old_parent)
    finished = submit(api, title="finished", command="x", parent=moved)
    failed = submit(api, title="failed", command="x", parent=moved)
    working = submit(api, title="working", command="x", parent=moved)
    stays = submit(api, title="stays", command="x", parent=old_parent)
    new_root = submit(api, title="new root", priority=3000)
    new_mid = submit(api, title="new mid", parent=new_root)
    new_parent = submit(api, title="new parent", parent=new_mid)
    run(sql, finished)
    run(sql, failed, exit_code=1)
    start(sql, working)
    earliest = min(get(api, j)["start_time"] for j in (finished, failed, working))
    assert counters(api, old_root) == {
        "state": "ERROR", "total": 4, "total_finished": 1, "total_errors": 1, "total_working": 1,
    }  # fmt: skip

    ok(api.post("/api/jobs", json={str(moved): {"parent": new_parent}}))

    assert get(api, moved)["parent"] == new_parent
    assert [c["id"] for c in api.get(f"/api/jobs/{new_parent}/children").json()] == [moved]
    assert [c["id"] for c in api.get(f"/api/jobs/{old_parent}/children").json()] == [stays]
    for group in (old_root, old_parent):
        assert counters(api, group) == {
            "state": "WAITING", "total": 1, "total_finished": 0, "total_errors": 0,
            "total_working": 0,
        }, group  # fmt: skip
        assert get(api, group)["start_time"] == 0, group
    assert counters(api, old_parent, DIRECT) == {"finished": 0, "errors": 0, "working": 0}
    for group in (new_root, new_mid, new_parent):
        assert counters(api, group) == {
            "state": "ERROR", "total": 3, "total_finished": 1, "total_errors": 1,
            "total_working": 1,
        }, group  # fmt: skip
        assert get(api, group)["start_time"] == earliest, group
    # the leaves are grandchildren of the new parent, children of `moved`
    assert counters(api, new_parent, DIRECT) == {"finished": 0, "errors": 0, "working": 0}
    assert counters(api, moved, DIRECT) == {"finished": 1, "errors": 1, "working": 1}
    # and the moved subtree now sorts under its new groups' priorities
    assert list(sql.fetchval("SELECT prio_path FROM jobs WHERE id = $1", working)) == [
        3000,
        1000,
        1000,
        1000,
        1000,
    ]
