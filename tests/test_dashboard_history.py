"""What the page shows over time: when a job last wrote output (each log chunk keeps its
arrival time), log windows that never cut a character in two, and the farm sampled by the
minute for the farm view's history."""

import asyncio
import math
import time
from pathlib import Path

import httpx
import pytest

from core.config import Config, DashboardConfig, ServerConfig
from core.dashboard import Dashboard
from core.db import Database
from core.logs import Logs
from tests.conftest import Sql
from tests.farm import append_log, finish, start, submit, until


@pytest.fixture
def config(tmp_path: Path) -> Config:
    # the server samples as it starts, then not again while a test runs
    return Config(
        server=ServerConfig(data_dir=str(tmp_path)),
        dashboard=DashboardConfig(sample_interval=3600),
    )


def test_a_jobs_last_output_is_its_newest_chunks_time(api: httpx.Client, sql: Sql) -> None:
    group = submit(api, title="shot")
    quiet, talking = (submit(api, title=t, command="x", parent=group) for t in ("q", "t"))
    start(sql, quiet)
    start(sql, talking)
    assert api.get(f"/api/v2/jobs/{talking}/log").json()["last_output"] is None
    before = time.time()
    append_log(sql, talking, b"frame 1 of 2\n")
    first = api.get(f"/api/v2/jobs/{talking}/log").json()["last_output"]
    assert before - 1 <= first <= time.time() + 1
    append_log(sql, talking, b"frame 2 of 2\n")
    second = api.get(f"/api/v2/jobs/{talking}/log").json()["last_output"]
    assert second >= first
    page = api.get("/api/v2/jobs", params={"parent": group}).json()
    # only the running leaf with output is listed
    assert page["last_output"] == {str(talking): second}
    # each append is its own chunk, with its own time
    assert sql.fetchval("SELECT count(*) FROM job_logs WHERE job_id = $1", talking) == 2


def test_a_log_window_holds_whole_characters(api: httpx.Client, sql: Sql) -> None:
    job = submit(api, title="t", command="x")
    event = start(sql, job)

    def window(**params: int) -> tuple[int, int, str]:
        w = api.get(f"/api/v2/jobs/{job}/log", params=params).json()
        return w["start"], w["end"], w["text"]

    # "é" is c3 a9: its second byte has not arrived yet, so the window stops before it
    append_log(sql, job, b"ab\xc3")
    assert window(start=0) == (0, 2, "ab")
    append_log(sql, job, b"\xa9cd\xe2\x82\xac!")
    assert window(start=2) == (2, 10, "\u00e9cd\u20ac!")
    # a window ending at the log's end that would begin inside "€" begins after it
    assert window(limit=2) == (9, 10, "!")
    # and the one before it ends there: together they are the log, nothing replaced
    assert window(end=9, limit=4) == (5, 9, "d\u20ac")
    # a start inside a character (a reader's own) moves past it
    assert window(start=7, limit=4) == (9, 10, "!")
    # a character the log never completes (the run has ended) is shown as it is
    append_log(sql, job, b"\xe2\x82")
    assert window(start=10) == (10, 10, "")
    finish(sql, event, 0)
    assert window(start=10) == (10, 12, "\ufffd")


def test_the_farm_is_sampled_once_a_minute_and_old_samples_go(
    api: httpx.Client, sql: Sql, database_url: str
) -> None:
    # the server's own pass, as it started
    until(lambda: sql.fetchval("SELECT count(*) FROM farm_samples") == 1, what="a sample")
    sql.execute("DELETE FROM farm_samples")
    for i in range(3):
        submit(api, title=f"queued {i}", command="x", affinity="NOBODY")
    minute = math.floor(time.time() / 60) * 60
    sql.execute(
        "INSERT INTO farm_samples (minute, queued, busy, slots) VALUES ($1, 9, 9, 9)",
        minute - 2 * 86400,
    )

    async def sample_twice() -> tuple[bool, bool]:
        # two server processes sampling the same minute: one row
        a = await Database.connect(database_url)
        b = await Database.connect(database_url)
        try:
            first = Dashboard(a, Logs(a)), Dashboard(b, Logs(b))
            wrote = await asyncio.gather(*(d.sample(86400) for d in first))
            return wrote[0], wrote[1]
        finally:
            await a.close()
            await b.close()

    wrote = asyncio.run(sample_twice())
    samples = sql.fetch("SELECT minute, queued FROM farm_samples ORDER BY minute")
    if samples[-1]["minute"] != minute:
        # the minute turned between the two reads of the clock
        minute = samples[-1]["minute"]
    assert sorted(wrote) == [False, True]
    assert [(r["minute"], r["queued"]) for r in samples] == [(minute, 3)]
    history = api.get("/api/v2/farm").json()["history"]
    assert history == [{"at": minute, "queued": 3, "busy": 0, "slots": 0}]
