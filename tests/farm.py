"""Helpers for tests: submit through the real API, drive runs through the core's own
named queries (the worker protocols build on the same ones)."""

from typing import Any

import httpx

from core.sql import Queries
from tests.conftest import Sql

RUNS = Queries("runs.sql")
WORKERS = Queries("workers.sql")
LOGS = Queries("logs.sql")


def submit(api: httpx.Client, **fields: Any) -> int:
    response = api.put("/api/jobs", json=fields)
    assert response.status_code == 200, response.text
    job_id = response.json()
    assert isinstance(job_id, int)
    return job_id


def get(api: httpx.Client, job_id: int) -> dict[str, Any]:
    response = api.get(f"/api/jobs/{job_id}")
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


def ok(response: httpx.Response) -> None:
    """A Coalition operation succeeded: 200 and the body `1`."""
    assert response.status_code == 200, response.text
    assert response.json() == 1


def start(sql: Sql, job_id: int, worker: str = "node-1") -> int:
    """Run `job_id` on `worker`; the event id."""
    sql.execute(WORKERS["register"], worker, "127.0.0.1", 1)
    event = sql.fetchval(RUNS["start_run"], job_id, worker)
    assert event is not None, f"job {job_id} could not start"
    return int(event)


def finish(sql: Sql, event: int, exit_code: int = 0) -> None:
    next_state = "FINISHED" if exit_code == 0 else "ERROR"
    assert sql.fetchval(RUNS["finish_run"], event, exit_code, next_state) is not None


def run(sql: Sql, job_id: int, exit_code: int = 0, worker: str = "node-1") -> None:
    finish(sql, start(sql, job_id, worker), exit_code)


def append_log(sql: Sql, job_id: int, data: bytes) -> None:
    sql.fetchval(LOGS["append"], job_id, data)
