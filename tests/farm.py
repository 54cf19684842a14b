"""Helpers for tests: submit through the real API, drive runs through the core's own
named queries (the worker protocols build on the same ones)."""

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import httpx

from core import migrate
from core.db import Database
from core.sql import Queries
from core.tokens import Role, Tokens
from tests.conftest import Sql

T = TypeVar("T")
RUNS = Queries("runs.sql")
WORKERS = Queries("workers.sql")
LOGS = Queries("logs.sql")


def with_tokens(url: str, action: Callable[[Tokens], Awaitable[T]]) -> T:
    """Run `action` on a fresh `Tokens` over the database at `url` (its own cache, the
    schema made first), as `corral token` does beside a running server."""

    async def go() -> T:
        db = await Database.connect(url, min_size=1, max_size=1)
        try:
            await db.read(migrate.apply)
            return await action(Tokens(db))
        finally:
            await db.close()

    return asyncio.run(go())


def create_token(url: str, name: str, role: Role) -> tuple[int, str]:
    """A token made as `corral token create` makes it: its id and its secret."""
    return with_tokens(url, lambda t: t.create(name, role))


def role_tokens(url: str, roles: Mapping[str, Role]) -> dict[str, str]:
    """A token for each name of `roles`, with the role given: name -> secret."""
    return {name: create_token(url, name, role)[1] for name, role in roles.items()}


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


def try_start(sql: Sql, job_id: int, worker: str = "node-1") -> int | None:
    """Run `job_id` on `worker` if it may start now; the event id, or None."""
    sql.execute(WORKERS["contact"], worker, "127.0.0.1", None, None, None)
    rows = sql.fetch(RUNS["start_runs"], [job_id], [worker], [False])
    return int(rows[0]["event"]) if rows else None


def start(sql: Sql, job_id: int, worker: str = "node-1") -> int:
    """Run `job_id` on `worker`; the event id."""
    event = try_start(sql, job_id, worker)
    assert event is not None, f"job {job_id} could not start"
    return event


def try_finish(sql: Sql, event: int, exit_code: int = 0) -> bool:
    """End the run `event` as its process exiting would (no retry); False if the run was
    no longer current."""
    state = "FINISHED" if exit_code == 0 else "ERROR"
    ended = sql.fetchval(RUNS["end_run"], event, exit_code, state, 0.0, state, "", None, None)
    return ended is not None


def finish(sql: Sql, event: int, exit_code: int = 0) -> None:
    assert try_finish(sql, event, exit_code), f"run {event} was not current"


def run(sql: Sql, job_id: int, exit_code: int = 0, worker: str = "node-1") -> None:
    finish(sql, start(sql, job_id, worker), exit_code)


def append_log(sql: Sql, job_id: int, data: bytes) -> None:
    sql.fetchval(LOGS["append"], job_id, data)


class AsRole:
    """Requests to a server, each with the token of a role (`None`: no token)."""

    def __init__(self, base: str, tokens: dict[str, str]) -> None:
        self._base = base
        self._tokens = tokens

    def __call__(self, method: str, path: str, role: str | None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._tokens[role]}"} if role else {}
        return httpx.request(method, self._base + path, headers=headers, **kw)

    def status(self, method: str, path: str, role: str | None, **kw: Any) -> int:
        return self(method, path, role, **kw).status_code


def until(
    predicate: Callable[[], T | None], timeout: float = 60.0, what: str = "the condition"
) -> T:
    """The first truthy value of `predicate`, polled until `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value: {value!r}")
        time.sleep(0.1)
