"""GET /api/v2/jobs/{id}/wait: why a job is not running, against a real server. Workers
register through the native protocol and never pick, so the planner leaves the queue as
the test builds it; runs are started through the core's own named queries."""

from typing import Any

import httpx
import pytest

from core.sql import Queries
from core.waiting import POSITION_CAP
from tests.conftest import Sql
from tests.farm import finish, ok, run, start, submit

WAITING = Queries("waiting.sql")


def wait(api: httpx.Client, job: int) -> dict[str, Any]:
    response = api.get(f"/api/v2/jobs/{job}/wait")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"state", "position", "reason"}
    return body


def register(api: httpx.Client, name: str, affinity: str = "", **more: Any) -> None:
    body = {"name": name, "affinity": affinity, **more}
    response = api.post("/api/v2/workers/register", json=body)
    assert response.status_code == 200, response.text


def test_no_worker(api: httpx.Client) -> None:
    job = submit(api, command="true")
    assert wait(api, job) == {
        "state": "WAITING",
        "position": None,
        "reason": "no worker is running",
    }


def test_stopped_workers(api: httpx.Client) -> None:
    job = submit(api, command="true")
    register(api, "w1")
    ok(api.post("/api/workers", json={"w1": {"active": False}}))
    assert wait(api, job)["reason"] == "no worker is active: the worker is stopped"


def test_no_worker_with_the_affinity(api: httpx.Client) -> None:
    register(api, "w1", "LINUX")
    job = submit(api, command="true", affinity="GPU")
    assert wait(api, job) == {
        "state": "WAITING",
        "position": None,
        "reason": "no worker has affinity GPU",
    }
    # an affinity inherited from a group counts as the job's own
    group = submit(api, title="g", affinity="GPU,NUKE")
    child = submit(api, parent=group, command="true")
    assert wait(api, child)["reason"] == "no worker has affinities GPU, NUKE"
    # the worker that has it takes it: first in line, and a free slot
    register(api, "w2", "GPU")
    assert wait(api, job) == {
        "state": "WAITING",
        "position": 0,
        "reason": "next to start: a worker has a free slot",
    }


def test_dependencies(api: httpx.Client, sql: Sql) -> None:
    a = submit(api, command="true")
    b = submit(api, command="true")
    c = submit(api, command="true", dependencies=[a, b])
    assert wait(api, c) == {
        "state": "PENDING",
        "position": None,
        "reason": f"waiting for jobs {a}, {b}",
    }
    run(sql, a)
    assert wait(api, c)["reason"] == f"waiting for job {b}"
    # a group's dependencies hold its children
    group = submit(api, title="g", dependencies=[b])
    child = submit(api, parent=group, command="true")
    assert wait(api, child) == {
        "state": "PENDING",
        "position": None,
        "reason": f"waiting for job {b}",
    }
    run(sql, b)
    assert wait(api, c)["state"] == "WAITING"
    assert wait(api, child)["state"] == "WAITING"


def test_paused_running_and_ended(api: httpx.Client, sql: Sql) -> None:
    paused = submit(api, command="true", paused=True)
    assert wait(api, paused) == {"state": "PAUSED", "position": None, "reason": "paused"}
    group = submit(api, title="g")
    child = submit(api, parent=group, command="true")
    ok(api.post("/api/pausejobs", json=[group]))
    assert wait(api, child)["reason"] == "paused"
    assert wait(api, group)["reason"] == "paused"

    job = submit(api, command="true")
    event = start(sql, job)
    assert wait(api, job) == {"state": "WORKING", "position": None, "reason": ""}
    finish(sql, event)
    assert wait(api, job) == {"state": "FINISHED", "position": None, "reason": ""}
    failed = submit(api, command="false")
    run(sql, failed, exit_code=1)
    assert wait(api, failed) == {"state": "ERROR", "position": None, "reason": ""}


def test_busy_workers_and_the_queue_ahead(api: httpx.Client, sql: Sql) -> None:
    register(api, "w1")
    register(api, "w2")
    jobs = [submit(api, command="true") for _ in range(4)]
    start(sql, jobs[0], "w1")
    start(sql, jobs[1], "w2")
    assert wait(api, jobs[2]) == {
        "state": "WAITING",
        "position": 0,
        "reason": "all 2 workers busy",
    }
    assert wait(api, jobs[3]) == {
        "state": "WAITING",
        "position": 1,
        "reason": "all 2 workers busy; 1 job ahead",
    }
    # a higher priority goes first, whenever it was submitted
    urgent = submit(api, command="true", priority=5000)
    assert wait(api, urgent)["position"] == 0
    assert wait(api, jobs[2])["position"] == 1
    assert wait(api, jobs[3])["position"] == 2


def test_rule_order_before_priority(api: httpx.Client) -> None:
    # the worker prefers GPU jobs (its first rule), then jobs with no affinity
    register(api, "w1", "GPU")
    plain = submit(api, command="true", priority=9000)
    gpu = [submit(api, command="true", affinity="GPU") for _ in range(3)]
    assert wait(api, gpu[0])["position"] == 0
    assert wait(api, gpu[2])["position"] == 2
    assert wait(api, plain)["position"] == 3
    # another worker takes the plain job first, having no GPU rule
    register(api, "w2")
    assert wait(api, plain)["position"] == 0


def test_policies_say_why(api: httpx.Client) -> None:
    register(api, "w1", pool="render")
    pooled = submit(api, command="true", tags=["pool:comp"])
    assert wait(api, pooled) == {
        "state": "WAITING",
        "position": None,
        "reason": "runs in pool 'comp'; w1 is in 'render'",
    }
    ok(api.post("/api/workers", json={"w1": {"active": False}}))
    register(api, "w2", resources={"gpus": 1})
    big = submit(api, command="true", resources={"gpus": 4})
    assert wait(api, big)["reason"] == "needs 4 gpus; w2 has 1 free"


def test_deep_queue_is_counted_up_to_the_cap(api: httpx.Client) -> None:
    register(api, "w1")
    jobs = [{"command": "true"} for _ in range(POSITION_CAP + 50)]
    response = api.post("/api/v2/jobs/bulk", json={"jobs": jobs}, timeout=120)
    assert response.status_code == 200, response.text
    ids = response.json()["ids"]
    assert wait(api, ids[POSITION_CAP - 1])["position"] == POSITION_CAP - 1
    assert wait(api, ids[POSITION_CAP])["reason"] == "10000 jobs ahead"
    last = wait(api, ids[-1])
    assert last == {
        "state": "WAITING",
        "position": POSITION_CAP,
        "reason": "more than 10,000 ahead",
    }


def test_counting_walks_the_ready_index(api: httpx.Client, sql: Sql) -> None:
    """The counts are ranges of jobs_ready cut short by their limit, never a scan of the
    queue nor of the table."""
    jobs = [{"command": "true"} for _ in range(3000)]
    # finished jobs before the queue, which a walk of the primary key would read
    for _ in range(3):
        run(sql, submit(api, command="true"))
    assert api.post("/api/v2/jobs/bulk", json={"jobs": jobs}, timeout=120).status_code == 200
    sql.execute("ANALYZE jobs")
    for (job,) in sql.fetch("SELECT id FROM jobs WHERE id IN (4, 1500, 3003)"):
        ahead = WAITING["count_ahead"]
        plan = _plan(sql, ahead, [], [1000], job, 100)
        assert plan.count("Limit") == 1, plan
        assert plan.count("Index Only Scan using jobs_ready") == 1, plan
        plan = _plan(sql, WAITING["count_set"], [], 100)
        assert plan.count("Index Only Scan using jobs_ready") == 1, plan


def _plan(sql: Sql, query: str, *args: Any) -> str:
    return "\n".join(r[0] for r in sql.fetch("EXPLAIN " + query, *args))


@pytest.mark.parametrize("job", [999_999, 1])
def test_unknown_job(api: httpx.Client, job: int) -> None:
    response = api.get(f"/api/v2/jobs/{job}/wait")
    assert response.status_code == 404
    assert response.json() == {"status_code": 404, "detail": f"no such job: {job}"}


def test_bad_id(api: httpx.Client) -> None:
    assert api.get("/api/v2/jobs/0/wait").status_code == 400
    assert api.get("/api/v2/jobs/x/wait").status_code in (400, 404)
