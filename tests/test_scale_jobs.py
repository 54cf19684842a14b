"""Jobs of Scale job types (`/v6/jobs/`) run by a real `corral worker` against a real
`corral serve`: the command and environment composed from inputs and settings, Scale's
statuses and errors, a secret setting that reaches the run and no answer, and the same
jobs as leaves of the Coalition API."""

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.conftest import Sql
from tests.processes import CORRAL, Processes, Served

T = TypeVar("T")
SECRET = "hunter2-not-in-any-answer"


def until(check: Callable[[], T | None], what: str, patience: float = 60.0) -> T:
    deadline = time.monotonic() + patience
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {value!r}"
        time.sleep(0.2)


def manifest() -> dict[str, Any]:
    return {
        "seedVersion": "1.0.0",
        "job": {
            "name": "adder",
            "jobVersion": "1.0.0",
            "packageVersion": "1.0.0",
            "title": "Adder",
            "description": "adds two numbers",
            "maintainer": {"name": "Ana", "email": "ana@example.com"},
            "timeout": 600,
            "interface": {
                # the secret reaches the run through its environment only
                "command": 'echo "sum $((${A} + ${B})) in ${DB}"; '
                'test "${PASSWORD}" = "$PASSWORD" && echo "secret=$PASSWORD"; '
                'test -d "$OUTPUT_DIR" && echo output-dir-made; exit ${CODE}',
                "inputs": {
                    "json": [
                        {"name": "A", "type": "integer"},
                        {"name": "B", "type": "integer"},
                        {"name": "CODE", "type": "integer", "required": False},
                    ]
                },
                "settings": [{"name": "DB"}, {"name": "PASSWORD", "secret": True}],
            },
            "errors": [{"code": 3, "name": "bad-numbers", "category": "data"}],
        },
    }


@pytest.fixture
def farm(
    processes: Processes, tmp_path: Path, database_url: str
) -> Iterator[tuple[Served, httpx.Client]]:
    config = tmp_path / "corral.toml"
    config.write_text(f'[job_types]\noutput_dir = "{tmp_path / "outputs"}"\n')
    # the test's database, so that `sql` reads what the server wrote; the data dir for
    # the key of the secret settings
    server = processes.serve(
        ["--database-url", database_url, "--data-dir", str(tmp_path), "--config", str(config)]
    )
    server.wait_ready()
    with httpx.Client(base_url=server.url, timeout=30) as api:
        yield server, api


def queue(api: httpx.Client, type_id: int, **json: int) -> int:
    response = api.post("/v6/jobs/", json={"job_type_id": type_id, "input": {"json": json}})
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"{api.base_url}/v6/jobs/{response.json()['id']}/"
    job_id: int = response.json()["id"]
    return job_id


def test_jobs_of_a_type_run_on_a_real_worker_with_scale_s_statuses_and_errors(
    farm: tuple[Served, httpx.Client], processes: Processes, sql: Sql, tmp_path: Path
) -> None:
    server, api = farm
    created = api.post(
        "/v6/job-types/",
        json={
            "docker_image": "adder:1",
            "manifest": manifest(),
            "configuration": {"settings": {"DB": "farmdb", "PASSWORD": SECRET}},
        },
    )
    assert created.status_code == 201, created.text
    type_id = created.json()["id"]
    ok, bad, unknown = (
        queue(api, type_id, A=1, B=2),
        queue(api, type_id, A=2, B=2, CODE=3),
        queue(api, type_id, A=3, B=2, CODE=7),
    )
    # no worker yet: queued
    assert {j["status"] for j in api.get("/v6/jobs/").json()["results"]} == {"QUEUED"}
    processes.worker(server.url, "node-scale")

    def status(job_id: int) -> str:
        return str(api.get(f"/v6/jobs/{job_id}/").json()["status"])

    for job_id in (ok, bad, unknown):
        until(lambda job_id=job_id: status(job_id) in ("COMPLETED", "FAILED"), f"job {job_id}")
    done = api.get(f"/v6/jobs/{ok}/").json()
    assert (done["status"], done["error"], done["num_exes"]) == ("COMPLETED", None, 1)
    assert done["node"] == {"id": None, "hostname": "node-scale"}
    assert done["job_type"]["name"] == "adder"
    assert done["job_type_rev"] == {"id": 1, "job_type": {"id": type_id}, "revision_num": 1}
    assert done["input"] == {"json": {"A": 1, "B": 2}}
    assert done["started"] is not None
    assert done["ended"] is not None
    log = api.get(f"/api/jobs/{ok}/log").json()
    assert "sum 3 in farmdb" in log
    assert f"secret={SECRET}" in log
    assert "output-dir-made" in log
    assert (tmp_path / "outputs" / str(ok)).is_dir()

    failed = api.get(f"/v6/jobs/{bad}/").json()
    assert failed["status"] == "FAILED"
    error = failed["error"]
    assert (error["name"], error["category"], error["is_builtin"]) == ("bad-numbers", "DATA", False)
    assert (error["job_type_name"], error["title"]) == ("adder", "bad-numbers")
    other = api.get(f"/v6/jobs/{unknown}/").json()["error"]
    assert (other["name"], other["category"], other["is_builtin"]) == (
        "algorithm-unknown",
        "ALGORITHM",
        True,
    )

    def ids(**params: Any) -> list[int]:
        page = api.get("/v6/jobs/", params=params)
        assert page.status_code == 200, page.text
        return sorted(j["id"] for j in page.json()["results"])

    assert ids(status="FAILED") == [bad, unknown]
    assert ids(status=["COMPLETED", "FAILED"]) == [ok, bad, unknown]
    assert ids(error_category="data") == [bad]
    assert ids(job_type_id=type_id, job_id=[ok, unknown]) == [ok, unknown]
    assert ids(job_type_name="nothing") == []

    # the secret is in no answer, nor in the database as text
    for path in (f"/v6/jobs/{ok}/", "/v6/jobs/", f"/api/jobs/{ok}", "/v6/job-types/adder/1.0.0/"):
        assert SECRET not in api.get(path).text, path
    stored = sql.fetchval("SELECT string_agg(row_to_json(j)::text, '') FROM jobs j") + sql.fetchval(
        "SELECT string_agg(row_to_json(t)::text, '') FROM job_types t"
    )
    assert SECRET not in stored
    # the same jobs are leaves of the Coalition API, under the type's group
    job = api.get(f"/api/jobs/{ok}").json()
    group = api.get(f"/api/jobs/{job['parent']}").json()
    assert group["title"] == "adder 1.0.0"
    assert (group["total"], group["total_finished"], group["total_errors"]) == (3, 1, 2)
    listed = subprocess.run(
        [*CORRAL, "jobs", "--server", server.url, "--parent", str(group["id"])],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == [
        str(ok),
        str(bad),
        str(unknown),
    ]


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"input": {}}, 400, 'Missing required parameter: "job_type_id"'),
        ({"job_type_id": 1, "input": "x"}, 400, 'Parameter must be a valid JSON object: "input"'),
        ({"job_type_id": 99, "input": {}}, 404, "Not found."),
        (
            {"job_type_id": 1, "input": {"json": {"A": "one", "B": 2}}},
            400,
            "Invalid job data: Input 'A' must be of type integer",
        ),
        (
            {"job_type_id": 1, "input": {"json": {"B": 2}}},
            400,
            "Invalid job data: Required input 'A' was not provided",
        ),
        (
            {"job_type_id": 1, "input": {"json": {"A": 1, "B": 2, "C": 3}}},
            400,
            "Invalid job data: 'C' is not an input of this job type",
        ),
        (
            {"job_type_id": 1, "input": {}, "configuration": {"priority": 0}},
            400,
            "Job configuration invalid: Invalid configuration: Expected `int` >= 1 - at "
            "`$.priority`",
        ),
    ],
)
def test_a_bad_job_is_refused_and_queues_nothing(
    api: httpx.Client, sql: Sql, body: dict[str, Any], status: int, detail: str
) -> None:
    created = api.post("/v6/job-types/", json={"docker_image": "", "manifest": manifest()})
    assert created.json()["id"] == 1
    before = sql.fetchval("SELECT count(*) FROM jobs")
    response = api.post("/v6/jobs/", json=body)
    assert response.status_code == status, response.text
    assert response.json() == {"detail": detail}
    assert sql.fetchval("SELECT count(*) FROM jobs") == before
    assert api.get("/v6/jobs/999/").json() == {"detail": "Not found."}


def sleeper(name: str, seconds: float) -> dict[str, Any]:
    described = manifest()
    described["job"]["name"] = name
    described["job"]["interface"] = {"command": f"sleep {seconds}"}
    del described["job"]["errors"]
    return described


def test_max_scheduled_caps_running_jobs_and_a_paused_type_holds_its_jobs(
    farm: tuple[Served, httpx.Client], processes: Processes
) -> None:
    server, api = farm
    capped = api.post(
        "/v6/job-types/",
        json={"docker_image": "", "manifest": sleeper("capped", 1), "max_scheduled": 1},
    ).json()["id"]
    held = api.post(
        "/v6/job-types/", json={"docker_image": "", "manifest": sleeper("held", 0)}
    ).json()["id"]
    api.patch("/v6/job-types/held/1.0.0/", json={"is_paused": True})
    capped_jobs = [queue(api, capped) for _ in range(4)]
    held_job = queue(api, held)
    # room for every job at once: only the type's limit and pause hold them back
    processes.worker(server.url, "node-wide", slots=6)

    def running() -> int:
        page = api.get("/v6/jobs/", params={"status": "RUNNING", "job_type_id": capped})
        return int(page.json()["count"])

    def completed() -> int:
        page = api.get("/v6/jobs/", params={"status": "COMPLETED", "job_type_id": capped})
        return int(page.json()["count"])

    # sampled from the first run to the last end, however long the worker takes to come
    until(lambda: running() or completed(), "a capped job to start")
    samples = [running()]

    def sampled_to_the_end() -> bool:
        samples.append(running())
        return completed() == 4

    until(sampled_to_the_end, "the capped jobs to end")
    assert max(samples) == 1, "never more than max_scheduled at once"
    until(
        lambda: all(api.get(f"/v6/jobs/{j}/").json()["status"] == "COMPLETED" for j in capped_jobs),
        "the capped jobs",
    )
    # every capped job has run, the worker has had free slots all along: the paused
    # type's job is still held
    assert api.get(f"/v6/jobs/{held_job}/").json()["status"] == "QUEUED"
    api.patch("/v6/job-types/held/1.0.0/", json={"is_paused": False})
    until(lambda: api.get(f"/v6/jobs/{held_job}/").json()["status"] == "COMPLETED", "held job")


def test_statistics_count_the_jobs_of_each_type(
    farm: tuple[Served, httpx.Client], processes: Processes
) -> None:
    server, api = farm
    type_id = api.post("/v6/job-types/", json={"docker_image": "", "manifest": manifest()}).json()[
        "id"
    ]
    idle = api.post(
        "/v6/job-types/", json={"docker_image": "", "manifest": sleeper("idle", 0)}
    ).json()["id"]
    done, data_error, other_error = (
        queue(api, type_id, A=1, B=1),
        queue(api, type_id, A=1, B=1, CODE=3),
        queue(api, type_id, A=1, B=1, CODE=9),
    )
    # a job waiting on another (through the Coalition API): PENDING, not merely QUEUED
    blocker = queue(api, idle)
    waiting = queue(api, idle)
    api.post(f"/api/jobs/{waiting}/dependencies", json=[blocker])
    api.patch("/v6/job-types/idle/1.0.0/", json={"is_paused": True})
    processes.worker(server.url, "node-stats")
    for job_id in (done, data_error, other_error):
        until(
            lambda job_id=job_id: (
                api.get(f"/v6/jobs/{job_id}/").json()["status"] in ("COMPLETED", "FAILED")
            ),
            f"job {job_id}",
        )
    status = api.get("/v6/job-types/status/").json()
    assert [r["job_type"]["name"] for r in status["results"]] == ["adder", "idle"]
    adder, idle_counts = status["results"]
    assert [(c["status"], c["count"], c["category"]) for c in adder["job_counts"]] == [
        ("COMPLETED", 1, None),
        ("FAILED", 1, "ALGORITHM"),
        ("FAILED", 1, "DATA"),
    ]
    assert [(c["status"], c["count"]) for c in idle_counts["job_counts"]] == [
        ("PENDING", 1),
        ("QUEUED", 1),
    ]
    # a range that ended before the jobs changed counts none of them
    before = api.get("/v6/job-types/status/", params={"started": "P7D", "ended": "PT1H"}).json()
    assert [r["job_counts"] for r in before["results"]] == [[], []]
    assert api.get("/v6/job-types/status/", params={"is_active": "false"}).json()["count"] == 0
    pending = api.get("/v6/job-types/pending/").json()["results"]
    assert [(p["job_type"]["name"], p["count"]) for p in pending] == [("idle", 1)]
    assert pending[0]["longest_pending"] is not None
    assert api.get("/v6/job-types/running/").json()["count"] == 0
    # no SYSTEM failure: data and algorithm ones are not listed
    assert api.get("/v6/job-types/system-failures/").json()["count"] == 0
    for bad in ("P1Y", "P1M", "yesterday", "2026-12-01T10:00:00", "PT"):
        response = api.get("/v6/job-types/status/", params={"started": bad})
        assert response.json() == {
            "detail": "Invalid ISO timestamp format for parameter: started"
        }, bad


def test_a_deleted_group_of_a_type_is_made_again_for_its_next_job(api: httpx.Client) -> None:
    type_id = api.post("/v6/job-types/", json={"docker_image": "", "manifest": manifest()}).json()[
        "id"
    ]
    first = queue(api, type_id, A=1, B=1)
    group = api.get(f"/api/jobs/{first}").json()["parent"]
    assert api.request("DELETE", "/api/jobs", json=[group]).json() == 1
    assert api.get(f"/v6/jobs/{first}/").status_code == 404
    second = queue(api, type_id, A=2, B=2)
    again = api.get(f"/api/jobs/{second}").json()["parent"]
    assert again != group
    assert api.get(f"/api/jobs/{again}").json()["title"] == "adder 1.0.0"


def test_a_job_whose_worker_keeps_getting_lost_fails_after_max_tries(api: httpx.Client) -> None:
    type_id = api.post("/v6/job-types/", json={"docker_image": "", "manifest": manifest()}).json()[
        "id"
    ]
    job_id = queue(api, type_id, A=1, B=1)
    register = {"name": "node-flaky", "slots": 1}
    for attempt in range(1, 4):
        assert api.post("/api/v2/workers/register", json=register).status_code == 200
        picked = api.post("/api/v2/workers/node-flaky/pick", json={"slots": 1, "wait": 10})
        assert [r["job"] for r in picked.json()["runs"]] == [job_id], picked.text
        # the worker restarts mid-run: its run is lost
        assert api.post("/api/v2/workers/register", json=register).status_code == 200
        job = api.get(f"/v6/jobs/{job_id}/").json()
        assert job["num_exes"] == attempt
        if attempt < 3:
            assert (job["status"], job["error"]) == ("QUEUED", None)
    assert job["status"] == "FAILED"
    error = job["error"]
    assert (error["name"], error["category"], error["is_builtin"]) == ("node-lost", "SYSTEM", True)
    assert error["should_be_retried"] is True
    failures = api.get("/v6/job-types/system-failures/").json()["results"]
    assert [(f["job_type"]["id"], f["error"]["name"], f["count"]) for f in failures] == [
        (type_id, "node-lost", 1)
    ]


def test_a_job_needs_the_resources_its_manifest_declares(api: httpx.Client, sql: Sql) -> None:
    declared = manifest()
    declared["job"]["resources"] = {
        "scalar": [{"name": "CPUs", "value": 2}, {"name": "mem", "value": 512}]
    }
    type_id = api.post("/v6/job-types/", json={"docker_image": "", "manifest": declared}).json()[
        "id"
    ]
    job_id = queue(api, type_id, A=1, B=1)
    assert sql.fetchval("SELECT resources::text FROM jobs WHERE id = $1", job_id) == (
        '{"mem": 512.0, "cpus": 2.0}'
    )
    # and its environment says what it was given
    environment = api.get(f"/api/jobs/{job_id}").json()["environment"].splitlines()
    assert {"ALLOCATED_CPUS=2", "ALLOCATED_MEM=512"} <= set(environment)
