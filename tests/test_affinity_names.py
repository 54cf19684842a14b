"""Affinity names as Coalition allows them: any text but ',' ';' and line breaks, trimmed,
spaces inside kept ("windows project"), through slots, jobs, worker rules and a real
`corral worker`."""

import time

import httpx

from tests.farm import get, ok, submit
from tests.processes import Processes


def test_a_name_with_spaces_names_a_slot_a_job_and_a_rule(api: httpx.Client) -> None:
    ok(api.post("/api/affinities", json={"2": "  windows project  ", "3": "GPU"}))
    assert api.get("/api/affinities").json() == {"2": "windows project", "3": "GPU"}
    job = submit(api, title="t", command="echo", affinity=" windows project ,GPU")
    assert get(api, job)["affinity"] == "windows project,GPU"
    register = {"name": "node-1", "affinity": "windows project, GPU;LINUX"}
    assert api.post("/api/v2/workers/register", json=register).status_code == 200
    [worker] = api.get("/api/workers").json()
    assert worker["affinity"] == "windows project,GPU\nLINUX"
    ok(api.post("/api/workers", json={"node-1": {"affinity": "big render farm\r\nGPU"}}))
    assert api.get("/api/workers").json()[0]["affinity"] == "big render farm\nGPU"
    where = api.get("/api/jobs/where", params={"where_clause": "affinity like '%dows pro%'"})
    assert [j["id"] for j in where.json()] == [job]


def test_a_real_worker_with_such_rules_runs_the_jobs_that_fit_them(
    processes: Processes,
) -> None:
    server = processes.serve(["--data-dir", str(processes.logs / "data")])
    server.wait_ready()
    api = httpx.Client(base_url=server.url, timeout=30)
    # submitted first, so the worker would take it first if "windows" fitted its rules
    apart = submit(api, title="windows only", command="echo no", affinity="windows")
    fits = submit(api, title="project", command="echo yes", affinity="windows project")
    processes.worker(server.url, "node-win", affinity="windows project,GPU;LINUX")
    deadline = time.monotonic() + 60
    while get(api, fits)["state"] != "FINISHED":
        assert time.monotonic() < deadline, get(api, fits)
        time.sleep(0.2)
    assert api.get(f"/api/jobs/{fits}/log").json().strip().endswith("yes")
    assert get(api, apart)["state"] == "WAITING"
    [worker] = api.get("/api/workers").json()
    assert worker["affinity"] == "windows project,GPU\nLINUX"
