"""Placement: jobs tagged `pool:<name>`, `app:<name>` and `retry-elsewhere` go only to the
workers the `placement` plugin lets take them, through the real dispatch: real
`corral worker` processes (`--pool`, `--apps`) and the native worker protocol against a
real server; which runs count as failed on a worker, read by the dispatch queries; the
plugin's decisions on their own; and switching it off."""

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.config import Config, DispatchConfig, ServerConfig
from core.hookspecs import FarmView, JobView, WorkerView
from core.placement import app_tag, pool_tag
from core.plugins import Plugins
from core.sql import Queries
from plugins.placement import RETRY_ELSEWHERE, PlacementPlugin, PlacementSettings
from tests.conftest import ServerThread, Sql
from tests.farm import start
from tests.processes import CORRAL, Processes

V2 = "/api/v2/workers"
DISPATCH = Queries("dispatch.sql")
RUNS = Queries("runs.sql")


@pytest.fixture
def config(tmp_path: Path) -> Config:
    # a pick that finds nothing answers soon, and a retry is ready at once
    return Config(
        server=ServerConfig(data_dir=str(tmp_path)),
        dispatch=DispatchConfig(interval=0.2, pick_wait=0.5, retry_interval=0.2),
    )


def until(what: str, check: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not {what} after {seconds} s")
        time.sleep(0.1)


def submit(api: httpx.Client, title: str, *tags: str, command: str = "true", **more: Any) -> int:
    job = {"title": title, "command": command, "tags": list(tags), **more}
    response = api.put("/api/jobs", json=job)
    assert response.status_code == 200, response.text
    job_id: int = response.json()
    return job_id


def state(api: httpx.Client, job_id: int) -> str:
    return str(api.get(f"/api/jobs/{job_id}").json()["state"])


def runs(sql: Sql, job_id: int) -> list[tuple[str, str]]:
    """(worker, event state) of each run of a job, in order."""
    rows = sql.fetch("SELECT worker, state FROM events WHERE job_id = $1 ORDER BY id", job_id)
    return [(r["worker"], r["state"]) for r in rows]


def register(api: httpx.Client, name: str, **fields: Any) -> None:
    response = api.post(f"{V2}/register", json={"name": name, **fields})
    assert response.status_code == 200, response.text


def pick(api: httpx.Client, name: str) -> list[int]:
    """The jobs of the runs a one-slot pick of `name` gets."""
    response = api.post(f"{V2}/{name}/pick", json={"slots": 1, "wait": 0.5})
    assert response.status_code == 200, response.text
    return [run["job"] for run in response.json()["runs"]]


def end(api: httpx.Client, name: str, job_id: int, exit_code: int) -> str:
    """The run of `job_id` on `name` exits with `exit_code`; what became of the job."""
    events = api.get("/api/events", params={"worker": name}).json()
    [event] = [e["id"] for e in events if e["job_id"] == job_id and e["state"] == "WORKING"]
    response = api.post(f"{V2}/{name}/finish", json={"event": event, "exit_code": exit_code})
    assert response.status_code == 200, response.text
    result: str = response.json()["result"]
    return result


# --- real `corral worker` processes -----------------------------------------------------


def test_a_pool_job_waits_for_a_worker_of_its_pool(
    api: httpx.Client, sql: Sql, processes: Processes
) -> None:
    base = str(api.base_url).rstrip("/")
    processes.worker(base, "b-1", more=["--pool", "b"])
    for_a = submit(api, "for pool a", pool_tag("a"))
    for_b = submit(api, "for pool b", pool_tag("b"))
    # the pool-b worker takes the later job: it was offered the earlier one and passed it
    until("run on b-1", lambda: state(api, for_b) == "FINISHED")
    assert runs(sql, for_b) == [("b-1", "FINISHED")]
    assert state(api, for_a) == "WAITING"
    assert runs(sql, for_a) == [], "a pool-b worker never ran it"
    untagged = submit(api, "anywhere")
    until("run on b-1", lambda: state(api, untagged) == "FINISHED")

    processes.worker(base, "a-1", more=["--pool", "a"])
    until("run on a-1", lambda: state(api, for_a) == "FINISHED")
    assert runs(sql, for_a) == [("a-1", "FINISHED")]
    pools = sql.fetch("SELECT name, pool FROM workers ORDER BY name")
    assert [(r["name"], r["pool"]) for r in pools] == [("a-1", "a"), ("b-1", "b")]


def test_an_app_job_goes_to_a_worker_running_the_app(
    api: httpx.Client, sql: Sql, processes: Processes
) -> None:
    base = str(api.base_url).rstrip("/")
    processes.worker(base, "maya-1", more=["--apps", "maya,houdini"])
    comp = submit(api, "comp", app_tag("nuke"))
    anim = submit(api, "anim", app_tag("maya"))
    until("run on maya-1", lambda: state(api, anim) == "FINISHED")
    assert state(api, comp) == "WAITING"
    assert runs(sql, comp) == []

    processes.worker(base, "nuke-1", more=["--apps", " nuke , comp "])
    until("run on nuke-1", lambda: state(api, comp) == "FINISHED")
    assert runs(sql, comp) == [("nuke-1", "FINISHED")]
    apps = sql.fetch("SELECT name, apps FROM workers ORDER BY name")
    assert [(r["name"], r["apps"]) for r in apps] == [
        ("maya-1", ["houdini", "maya"]),
        ("nuke-1", ["comp", "nuke"]),
    ]


def test_a_job_that_failed_on_a_worker_runs_again_only_elsewhere(
    api: httpx.Client, sql: Sql, processes: Processes, tmp_path: Path
) -> None:
    base = str(api.base_url).rstrip("/")
    processes.worker(base, "w1")
    marker = tmp_path / "failed-once"
    # the first run fails, a later one succeeds, wherever they run
    command = f"if [ -f {marker} ]; then exit 0; fi; touch {marker}; exit 3"
    flaky = submit(api, "flaky", RETRY_ELSEWHERE, command=command, retry=1)
    until("failed once", lambda: runs(sql, flaky) == [("w1", "ERROR")])
    until("queued again", lambda: state(api, flaky) == "WAITING")
    # w1 goes on taking work, the later job, but not the one it failed
    after = submit(api, "after")
    until("run on w1", lambda: state(api, after) == "FINISHED")
    assert runs(sql, flaky) == [("w1", "ERROR")]
    assert state(api, flaky) == "WAITING"

    processes.worker(base, "w2")
    until("run on w2", lambda: state(api, flaky) == "FINISHED")
    assert runs(sql, flaky) == [("w1", "ERROR"), ("w2", "FINISHED")]


def test_without_the_tag_a_failed_job_may_run_again_on_the_same_worker(
    api: httpx.Client, sql: Sql, processes: Processes, tmp_path: Path
) -> None:
    processes.worker(str(api.base_url).rstrip("/"), "w1")
    marker = tmp_path / "failed-once"
    command = f"if [ -f {marker} ]; then exit 0; fi; touch {marker}; exit 3"
    flaky = submit(api, "flaky", command=command, retry=1)
    until("finished", lambda: state(api, flaky) == "FINISHED")
    assert runs(sql, flaky) == [("w1", "ERROR"), ("w1", "FINISHED")]


def test_corral_worker_refuses_an_overlong_pool_or_app() -> None:
    for option in ("--pool", "--apps"):
        result = subprocess.run(
            [*CORRAL, "worker", option, "x" * 256],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2, option
        assert "255 characters at most" in result.stderr


# --- the native worker protocol ---------------------------------------------------------


def test_pools_any_of_several_and_untagged_jobs_anywhere(api: httpx.Client) -> None:
    register(api, "a-1", pool="a")
    register(api, "c-1", pool="c")
    register(api, "none-1")
    a_or_b = submit(api, "a or b", pool_tag("a"), pool_tag("b"))
    assert pick(api, "c-1") == []
    assert pick(api, "none-1") == [], "a worker of no pool is in none of them"
    assert pick(api, "a-1") == [a_or_b]
    for_none = submit(api, "the pool-less workers", pool_tag(""))
    assert pick(api, "c-1") == []
    assert pick(api, "none-1") == [for_none]
    anywhere = submit(api, "anywhere")
    assert pick(api, "c-1") == [anywhere]


def test_apps_the_app_or_any_and_every_app_a_job_names(api: httpx.Client) -> None:
    register(api, "maya-1", apps=["maya"])
    register(api, "legacy")
    register(api, "nuke-1", apps=["nuke", "houdini"], slots=2)
    register(api, "star-1", apps=["*"])
    comp = submit(api, "comp", app_tag("nuke"))
    assert pick(api, "maya-1") == []
    assert pick(api, "legacy") == [], "a worker naming no apps runs none"
    assert pick(api, "nuke-1") == [comp]
    both = submit(api, "both", app_tag("nuke"), app_tag("maya"))
    assert pick(api, "maya-1") == []
    assert pick(api, "nuke-1") == [], "it runs nuke but not maya"
    assert pick(api, "star-1") == [both]


def test_retry_elsewhere_skips_the_workers_it_failed_on_not_those_it_was_lost_on(
    api: httpx.Client,
) -> None:
    for name in ("w1", "w2", "w3"):
        register(api, name)
    job = submit(api, "flaky", RETRY_ELSEWHERE, retry=3)
    assert pick(api, "w1") == [job]
    assert end(api, "w1", job, 3) == "RETRY"
    assert pick(api, "w1") == []
    assert pick(api, "w2") == [job]
    # w2 restarts: the run is lost with it, not failed there
    register(api, "w2")
    assert state(api, job) == "WAITING"
    assert pick(api, "w1") == []
    assert pick(api, "w2") == [job]
    assert end(api, "w2", job, 3) == "RETRY"
    assert pick(api, "w1") == []
    assert pick(api, "w2") == []
    assert pick(api, "w3") == [job]
    assert end(api, "w3", job, 3) == "RETRY"
    # no worker left that it has not failed on: it waits
    for name in ("w1", "w2", "w3"):
        assert pick(api, name) == []
    assert state(api, job) == "WAITING"
    register(api, "w4")
    assert pick(api, "w4") == [job]
    assert end(api, "w4", job, 0) == "FINISHED"
    assert state(api, job) == "FINISHED"


def test_registering_again_keeps_the_pool_and_apps_unless_given(
    api: httpx.Client, sql: Sql
) -> None:
    def placed() -> tuple[str, list[str]]:
        row = sql.fetch("SELECT pool, apps FROM workers WHERE name = 'w'")[0]
        return row["pool"], row["apps"]

    register(api, "w")
    assert placed() == ("", [])
    register(api, "w", pool="farm-2", apps=["nuke", "maya", "nuke"])
    assert placed() == ("farm-2", ["maya", "nuke"])
    register(api, "w", affinity="LINUX")
    assert placed() == ("farm-2", ["maya", "nuke"])
    register(api, "w", apps=["*"])
    assert placed() == ("farm-2", ["*"])
    register(api, "w", pool="", apps=[])
    assert placed() == ("", [])


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"pool": "p" * 256}, "$.pool"),
        ({"apps": ["nuke,maya"]}, "$.apps[0]"),
        ({"apps": [""]}, "$.apps[0]"),
        ({"apps": "nuke"}, "$.apps"),
    ],
)
def test_a_bad_pool_or_apps_is_refused(
    api: httpx.Client, sql: Sql, fields: dict[str, Any], named: str
) -> None:
    response = api.post(f"{V2}/register", json={"name": "w", **fields})
    assert response.status_code == 400, response.text
    assert named in response.json()["detail"]
    assert sql.fetchval("SELECT count(*) FROM workers") == 0


@pytest.fixture
def unplaced(tmp_path: Path, database_url: str) -> Iterator[httpx.Client]:
    config = Config(
        server=ServerConfig(data_dir=str(tmp_path)),
        dispatch=DispatchConfig(interval=0.2, pick_wait=0.5),
        plugins={"placement": {"enabled": False}},
    )
    with ServerThread(config, database_url) as base, httpx.Client(base_url=base) as client:
        yield client


def test_switched_off_the_tags_place_nothing(unplaced: httpx.Client) -> None:
    api = unplaced
    register(api, "b-1", pool="b", apps=["maya"])
    placed = submit(api, "for pool a", pool_tag("a"), app_tag("nuke"), RETRY_ELSEWHERE, retry=1)
    assert pick(api, "b-1") == [placed]
    assert end(api, "b-1", placed, 3) == "RETRY"
    assert pick(api, "b-1") == [placed], "back on the worker it failed on"


# --- which runs count as failed on a worker ---------------------------------------------


def test_failed_on_counts_failures_and_timeouts_not_lost_or_stopped_runs(sql: Sql) -> None:
    job = sql.fetchval(
        "INSERT INTO jobs (title, command, prio_path, retry) VALUES ('j', 'true', '{1000}', 9)"
        " RETURNING id"
    )

    def failed_on() -> list[str] | None:
        """What both pages of the ready queue read of the job: the first, and one after
        a job before it."""
        [top] = sql.fetch(DISPATCH["ready_top"], [], 10)
        [after] = sql.fetch(DISPATCH["ready_after"], [], 10, [1000], 0)
        assert top["id"] == after["id"] == job
        assert top["failed_on"] == after["failed_on"]
        found: list[str] | None = top["failed_on"]
        return found

    def ended(worker: str, event_state: str, reason: str, exit_code: int | None) -> None:
        """A run on `worker` ends as `event_state`, and the job waits to run again."""
        event = start(sql, job, worker)
        row = sql.fetchval(
            RUNS["end_run"], event, exit_code, "WAITING", 0.0, event_state, reason, None, None
        )
        assert row is not None

    def stopped(worker: str, event_state: str, reason: str) -> None:
        """A run on `worker` stopped as the server stops runs it did not fail."""
        start(sql, job, worker)
        sql.fetch(RUNS["interrupt_runs"], [job], [], event_state, reason)

    assert failed_on() is None, "a job that has not run is not even looked at"
    stopped("lost", "TIMEOUT", "worker lost")
    stopped("paused", "CANCELED", "paused")
    assert failed_on() is None, "stopped runs are not runs done"
    ended("fine", "FINISHED", "", 0)
    assert failed_on() is None, "none of its runs failed"
    ended("crashed", "ERROR", "", 3)
    ended("slow", "TIMEOUT", "ran longer than its timeout of 5 s", None)
    ended("crashed", "ERROR", "", 1)
    stopped("restarted", "CANCELED", "worker restarted")
    stopped("forgot", "TIMEOUT", "its worker stopped reporting it")
    assert sorted(failed_on() or []) == ["crashed", "slow"]


# --- the plugin's decisions -------------------------------------------------------------


def view(*tags: str, failed_on: frozenset[str] = frozenset()) -> JobView:
    return JobView(
        id=1, parent=0, title="t", user="", priority=0, prio_path=(0,),
        affinities=frozenset(), tags=frozenset(tags), retry=1, run_done=1, timeout=0,
        failed_on=failed_on,
    )  # fmt: skip


def node(pool: str = "", *apps: str, name: str = "w") -> WorkerView:
    return WorkerView(name=name, rules=(), slots=1, running=0, pool=pool, apps=frozenset(apps))


FARM = FarmView(running_by_tag={}, running_by_user={}, running=0)


@pytest.mark.parametrize(
    ("job", "worker", "held"),
    [
        (view(), node(), None),
        (view("nuke", "heavy"), node("b", "maya"), None),
        (view(pool_tag("a")), node("a"), None),
        (view(pool_tag("a")), node("b"), "runs in pool 'a'; w is in 'b'"),
        (view(pool_tag("a")), node(), "runs in pool 'a'; w is in no pool"),
        (view(pool_tag("b"), pool_tag("a")), node("b"), None),
        (view(pool_tag("b"), pool_tag("a")), node("c"), "runs in pool 'a' or 'b'; w is in 'c'"),
        (view(pool_tag("")), node(), None),
        (view(app_tag("nuke")), node("", "nuke", "maya"), None),
        (view(app_tag("nuke")), node("", "*"), None),
        (view(app_tag("nuke")), node("", "maya"), "needs app 'nuke'; w does not run it"),
        (view(app_tag("nuke")), node(), "needs app 'nuke'; w does not run it"),
        (
            view(app_tag("nuke"), app_tag("maya")),
            node("", "nuke"),
            "needs app 'maya'; w does not run it",
        ),
        (view(RETRY_ELSEWHERE, failed_on=frozenset({"w"})), node(), "failed on w before"),
        (view(RETRY_ELSEWHERE, failed_on=frozenset({"v"})), node(), None),
        (view(failed_on=frozenset({"w"})), node(), None),
        (view(pool_tag("a"), app_tag("nuke")), node("a", "*"), None),
    ],
)  # fmt: skip
def test_the_plugin_holds_a_job_back_from_workers_it_does_not_place_it_on(
    job: JobView, worker: WorkerView, held: str | None
) -> None:
    plugin = PlacementPlugin(PlacementSettings())
    assert plugin.corral_admit(job=job, worker=worker, farm=FARM) == held


def test_the_plugin_is_on_by_default_and_can_be_switched_off() -> None:
    job, worker = view(pool_tag("a")), node("b")
    assert Plugins({}).enabled("placement")
    assert Plugins({}).hook.corral_admit(job=job, worker=worker, farm=FARM) == [
        "runs in pool 'a'; w is in 'b'"
    ]
    off = Plugins({"placement": {"enabled": False}})
    assert not off.enabled("placement")
    assert off.hook.corral_admit(job=job, worker=worker, farm=FARM) == []
