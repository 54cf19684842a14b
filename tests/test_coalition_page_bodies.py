"""The requests of Coalition's own web page (`js/coalition.js`), byte for byte as it sends
them: JSON bodies labelled `application/x-www-form-urlencoded; charset=UTF-8` (jQuery's
default), numbers as strings, `env` for the environment, dependencies as text. What no
Coalition tool sends is still refused. (tests/test_coalition_web.py drives the page itself
in a browser.)"""

import json
from typing import Any

import httpx
import pytest

from tests.conftest import Sql
from tests.farm import get, ok, run, submit

JQUERY = {"content-type": "application/x-www-form-urlencoded; charset=UTF-8"}


def send(api: httpx.Client, method: str, path: str, body: Any) -> httpx.Response:
    """As the page's `$.ajax({type, url, data: JSON.stringify(body)})` does."""
    return api.request(method, f"/api/webfrontend{path}", content=json.dumps(body), headers=JQUERY)


def add_job_form(**fields: Any) -> dict[str, Any]:
    """The body of the page's addjob(): every field of the form, as the form's text."""
    form = {
        "title": "Job",
        "command": "",
        "dir": ".",
        "env": "",
        "priority": "127",
        "timeout": "0",
        "affinity": "",
        "dependencies": "",
        "user": "",
        "url": "",
        "parent": 0,
    }
    return {**form, **fields}


def test_add_job_with_the_page_s_form_creates_the_job(api: httpx.Client) -> None:
    first = submit(api, title="first", command="echo 1")
    second = submit(api, title="second", command="echo 2")
    response = send(
        api,
        "PUT",
        "/jobs",
        add_job_form(
            title="comp",
            command="nuke -x comp.nk",
            dir="/shots/010",
            env="SHOT=010\nSEQ=a",
            priority="500",
            timeout="3600",
            affinity="windows project, LINUX",
            dependencies=f"{first}, {second}",
            user="ana",
            url="http://review/010",
        ),
    )
    assert response.status_code == 200, response.text
    job = get(api, response.json())
    assert {k: job[k] for k in ("title", "command", "dir", "environment", "user", "url")} == {
        "title": "comp",
        "command": "nuke -x comp.nk",
        "dir": "/shots/010",
        "environment": "SHOT=010\nSEQ=a",
        "user": "ana",
        "url": "http://review/010",
    }
    assert (job["priority"], job["timeout"]) == (500, 3600)
    assert job["affinity"] == "windows project,LINUX"
    assert job["dependencies"] == [first, second]
    assert job["state"] == "PENDING"


@pytest.mark.parametrize("dependencies", ["", " ", "12", "12,", ",12"])
def test_the_dependency_text_of_the_form_may_be_empty_or_one_id(
    api: httpx.Client, dependencies: str
) -> None:
    wanted = [submit(api, title=f"j{i}", command="echo") for i in range(12)][-1:]
    assert wanted == [12]
    response = send(api, "PUT", "/jobs", add_job_form(dependencies=dependencies))
    assert response.status_code == 200, response.text
    assert get(api, response.json())["dependencies"] == ([] if not dependencies.strip() else [12])


def test_a_group_added_in_a_group_goes_under_it(api: httpx.Client) -> None:
    group = submit(api, title="shot")
    response = send(api, "PUT", "/jobs", add_job_form(title="frames", parent=group))
    assert response.status_code == 200, response.text
    assert get(api, response.json())["parent"] == group
    assert [j["title"] for j in api.get(f"/api/jobs/{group}/children").json()] == ["frames"]


def test_editing_properties_takes_the_page_s_text_values(api: httpx.Client) -> None:
    a = submit(api, title="a", command="echo a")
    b = submit(api, title="b", command="echo b")
    job = submit(api, title="job", command="echo job")
    # sendSelectionPropChanges(): the edited fields of each selected job, as text; the
    # dependencies split at their commas
    changes = {
        "title": "renamed",
        "priority": "42",
        "timeout": "60",
        "dependencies": f"{a},{b}".split(","),
        "environment": "A=1",
        "affinity": "windows project",
    }
    ok(send(api, "POST", "/jobs", {str(job): changes}))
    edited = get(api, job)
    assert (edited["title"], edited["priority"], edited["timeout"]) == ("renamed", 42, 60)
    assert edited["dependencies"] == [a, b]
    assert (edited["environment"], edited["affinity"]) == ("A=1", "windows project")
    # an emptied dependencies field is [""]: no dependencies
    ok(send(api, "POST", "/jobs", {str(job): {"dependencies": [""]}}))
    assert get(api, job)["dependencies"] == []


def test_env_is_stored_as_the_environment(api: httpx.Client) -> None:
    job = send(api, "PUT", "/jobs", add_job_form(command="env", env="A=1")).json()
    assert get(api, job)["environment"] == "A=1"
    ok(send(api, "POST", "/jobs", {str(job): {"env": "B=2"}}))
    assert get(api, job)["environment"] == "B=2"
    # both, saying the same, is one environment
    ok(send(api, "POST", "/jobs", {str(job): {"env": "C=3", "environment": "C=3"}}))
    assert get(api, job)["environment"] == "C=3"


def test_paste_moves_the_cut_jobs_into_the_group(api: httpx.Client) -> None:
    group = submit(api, title="group")
    jobs = [submit(api, title=f"j{i}", command="echo") for i in range(2)]
    ok(send(api, "POST", "/jobs", {str(j): {"parent": group} for j in jobs}))
    assert [j["id"] for j in api.get(f"/api/jobs/{group}/children").json()] == jobs


def test_the_page_s_buttons_take_their_id_lists(api: httpx.Client, sql: Sql) -> None:
    done = submit(api, title="done", command="echo")
    failed = submit(api, title="failed", command="false")
    gone = submit(api, title="gone", command="echo")
    run(sql, done)
    run(sql, failed, exit_code=1)
    ok(send(api, "POST", "/pausejobs", [done]))
    assert get(api, done)["state"] == "PAUSED"
    ok(send(api, "POST", "/startjobs", [done]))
    assert get(api, done)["state"] == "WAITING"
    ok(send(api, "POST", "/reseterrorjobs", [failed]))
    assert get(api, failed)["state"] == "WAITING"
    ok(send(api, "POST", "/resetjobs", [done]))
    ok(send(api, "DELETE", "/jobs", [gone]))
    assert api.get(f"/api/jobs/{gone}").status_code == 404


def test_workers_affinities_and_activities_take_the_page_s_requests(
    api: httpx.Client, sql: Sql
) -> None:
    job = submit(api, title="ran", command="echo")
    run(sql, job, worker="node-1")
    # sendAffinities(): all 63 slots, named or empty
    slots = {str(i): "" for i in range(1, 64)} | {"1": "windows project", "2": "LINUX"}
    ok(send(api, "POST", "/affinities", slots))
    assert api.get("/api/webfrontend/affinities").json() == {"1": "windows project", "2": "LINUX"}
    # updateworkers(): the textarea's text, one rule per line
    ok(send(api, "POST", "/workers", {"node-1": {"affinity": "windows project,LINUX\nLINUX"}}))
    [worker] = api.get("/api/webfrontend/workers").json()
    assert worker["affinity"] == "windows project,LINUX\nLINUX"
    ok(send(api, "POST", "/stopworkers", ["node-1"]))
    assert api.get("/api/workers").json()[0]["active"] == 0
    ok(send(api, "POST", "/startworkers", ["node-1"]))
    # reloadActivities(): the filters as query text; "All" is 100000000000 seconds
    events = api.get("/api/webfrontend/events", params={"job": str(job), "howlong": "100000000000"})
    assert events.status_code == 200, events.text
    assert [(e["job_id"], e["worker"], e["state"]) for e in events.json()] == [
        (job, "node-1", "FINISHED")
    ]
    by_worker = api.get("/api/webfrontend/events", params={"worker": "node-1", "howlong": "60"})
    assert [e["job_id"] for e in by_worker.json()] == [job]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"colour": "red"}, "colour"),
        ({"dependencies": "1,two"}, "'two'"),
        ({"priority": "high"}, "priority"),
        ({"env": "A=1", "environment": "B=2"}, "env"),
    ],
)
def test_what_no_coalition_tool_sends_is_refused_and_changes_nothing(
    api: httpx.Client, sql: Sql, body: dict[str, Any], named: str
) -> None:
    submit(api, title="one", command="echo")
    before = sql.snapshot()
    response = send(api, "PUT", "/jobs", add_job_form(**body))
    assert response.status_code == 400, response.text
    assert named in response.json()["detail"]
    assert sql.snapshot() == before
