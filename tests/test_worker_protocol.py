"""The native worker protocol (JSON, v1) under /api/v2/workers: register, long-poll pick,
heartbeat and finish, against the real server with its planner, periodic passes and
LISTEN/NOTIFY. The worker is simulated with plain HTTP calls."""

import concurrent.futures
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from core.config import Config, DispatchConfig
from tests.conftest import Sql
from tests.farm import get, ok, submit

V2 = "/api/v2/workers"
# pick waits stay well under the worker timeout, so a waiting worker is never taken for lost
WORKER_TIMEOUT = 3.0
PICK_WAIT = 3.0
HEARTBEAT = 0.5
PATIENCE = 30.0


@pytest.fixture
def config() -> Config:
    return Config(
        dispatch=DispatchConfig(
            interval=0.2,
            pick_wait=PICK_WAIT,
            legacy_pick_wait=0.5,
            worker_timeout=WORKER_TIMEOUT,
            heartbeat_interval=HEARTBEAT,
            timeout_interval=0.2,
            dead_worker_interval=0.2,
            retry_interval=0.1,
        )
    )


# -- a simulated worker -------------------------------------------------------------------


def register(api: httpx.Client, name: str, affinity: str = "", slots: int = 1) -> dict[str, Any]:
    response = api.post(
        f"{V2}/register", json={"protocol": 1, "name": name, "affinity": affinity, "slots": slots}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def pick(api: httpx.Client, name: str, slots: int = 1, wait: float = 0.5) -> list[dict[str, Any]]:
    response = api.post(f"{V2}/{name}/pick", json={"slots": slots, "wait": wait}, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["protocol"] == 1
    runs: list[dict[str, Any]] = body["runs"]
    assert len(runs) <= slots
    return runs


def pick_some(api: httpx.Client, name: str, slots: int = 1) -> list[dict[str, Any]]:
    """Pick until at least one run comes, as a worker loops; fails after PATIENCE."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        runs = pick(api, name, slots, wait=1.0)
        if runs:
            return runs
    pytest.fail(f"worker {name} got no run in {PATIENCE} s")


def heartbeat(
    api: httpx.Client, name: str, outputs: dict[int, str] | None = None, **machine: Any
) -> dict[int, dict[str, Any]]:
    runs = [{"event": e, "output": o} for e, o in (outputs or {}).items()]
    response = api.post(f"{V2}/{name}/heartbeat", json={"runs": runs, **machine})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["protocol"] == 1
    return {a["event"]: a for a in body["runs"]}


def finish(api: httpx.Client, name: str, event: int, exit_code: int, output: str = "") -> str:
    response = api.post(
        f"{V2}/{name}/finish", json={"event": event, "exit_code": exit_code, "output": output}
    )
    assert response.status_code == 200, response.text
    result: str = response.json()["result"]
    return result


def run_once(api: httpx.Client, name: str, exit_code: int = 0) -> int:
    """Pick one run, finish it; the job id."""
    (run,) = pick_some(api, name)
    assert finish(api, name, run["event"], exit_code) in {"FINISHED", "ERROR", "RETRY"}
    job: int = run["job"]
    return job


# -- looking at the farm ------------------------------------------------------------------


def wait_until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    pytest.fail(f"never happened within {PATIENCE} s: {what}")


def worker_row(api: httpx.Client, name: str) -> dict[str, Any]:
    response = api.get("/api/workers")
    assert response.status_code == 200, response.text
    rows = [w for w in response.json() if w["name"] == name]
    assert len(rows) == 1, f"worker {name} listed {len(rows)} times"
    return rows[0]


def events_of(api: httpx.Client, job: int) -> list[dict[str, Any]]:
    response = api.get("/api/events", params={"job": job})
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()
    return events


def event(api: httpx.Client, job: int, event_id: int) -> dict[str, Any]:
    found = [e for e in events_of(api, job) if e["id"] == event_id]
    assert len(found) == 1, f"event {event_id} of job {job}: {found}"
    return found[0]


def log_of(api: httpx.Client, job: int) -> str:
    response = api.get(f"/api/jobs/{job}/log")
    assert response.status_code == 200, response.text
    text: str = response.json()
    return text


def state(api: httpx.Client, job: int) -> str:
    value: str = get(api, job)["state"]
    return value


# -- register -----------------------------------------------------------------------------


def test_register_answers_intervals_and_lists_the_worker_with_its_rules(
    api: httpx.Client,
) -> None:
    answer = register(api, "node-a", affinity="LINUX,GPU;LINUX", slots=2)
    assert answer["protocol"] == 1
    assert answer["name"] == "node-a"
    assert answer["pick_wait"] == PICK_WAIT
    assert answer["worker_timeout"] == WORKER_TIMEOUT
    # the config's: a big farm heartbeats less often
    assert answer["heartbeat_interval"] == HEARTBEAT

    row = worker_row(api, "node-a")
    assert row["affinity"] == "LINUX,GPU\nLINUX"
    assert row["state"] == "WAITING"
    assert row["active"] == 1
    assert row["ip"] == "127.0.0.1"


def test_registered_slots_are_shown_in_the_worker_listing(api: httpx.Client, sql: Sql) -> None:
    register(api, "node-a", affinity="LINUX", slots=2)
    register(api, "node-b", slots=5)
    assert sql.fetchval("SELECT slots FROM workers WHERE name = 'node-a'") == 2
    assert worker_row(api, "node-a").get("slots") == 2
    assert worker_row(api, "node-b").get("slots") == 5


def test_register_again_replaces_the_rules(api: httpx.Client) -> None:
    register(api, "node-a", affinity="LINUX,GPU;LINUX")
    register(api, "node-a", affinity="WIN")
    assert worker_row(api, "node-a")["affinity"] == "WIN"


# -- pick ---------------------------------------------------------------------------------


def test_pick_on_an_idle_farm_waits_and_answers_no_runs(api: httpx.Client) -> None:
    register(api, "node-a")
    began = time.monotonic()
    response = api.post(f"{V2}/node-a/pick", json={"slots": 1, "wait": 0.5})
    elapsed = time.monotonic() - began
    assert response.status_code == 200, response.text
    assert response.json() == {"protocol": 1, "runs": [], "results": []}
    # it waited (a lower bound, not a speed requirement)
    assert elapsed >= 0.45


def test_pick_with_a_ready_job_returns_everything_needed_to_run_it(api: httpx.Client) -> None:
    register(api, "node-a")
    job = submit(
        api,
        title="frame 1",
        command="render -f 1 'a b'",
        dir="/shots/sq010",
        environment="A=1\nB=2",
        user="bob",
        progress_pattern="#%percent",
        timeout=60,
    )
    (run,) = pick_some(api, "node-a")
    assert set(run) == {
        "event", "job", "title", "command", "dir", "environment", "user",
        "progress_pattern", "timeout",
    }  # fmt: skip
    assert run["job"] == job
    assert run["title"] == "frame 1"
    assert run["command"] == "render -f 1 'a b'"
    assert run["dir"] == "/shots/sq010"
    assert run["environment"] == "A=1\nB=2"
    assert run["user"] == "bob"
    assert run["progress_pattern"] == "#%percent"
    assert run["timeout"] == 60

    assert event(api, job, run["event"])["state"] == "WORKING"
    assert event(api, job, run["event"])["worker"] == "node-a"
    shown = get(api, job)
    assert shown["state"] == "WORKING"
    assert shown["worker"] == "node-a"
    # handed over once: the next pick does not deliver it again
    assert pick(api, "node-a", wait=0.3) == []


def test_a_job_submitted_while_a_pick_waits_goes_to_that_pick(api: httpx.Client, sql: Sql) -> None:
    register(api, "node-a")
    result: dict[str, Any] = {}

    def waiting_pick() -> None:
        try:
            result["response"] = api.post(
                f"{V2}/node-a/pick", json={"slots": 1, "wait": 2.0}, timeout=60
            )
        except Exception as exc:  # surfaced below
            result["error"] = exc

    thread = threading.Thread(target=waiting_pick)
    thread.start()
    wait_until(
        lambda: sql.fetchval("SELECT wanted FROM workers WHERE name = 'node-a'") == 1,
        "the pick waits",
    )
    job = submit(api, title="late", command="echo late")
    thread.join(timeout=PATIENCE)
    assert not thread.is_alive(), "the pick never answered"
    assert "error" not in result, result.get("error")
    response: httpx.Response = result["response"]
    assert response.status_code == 200, response.text
    runs = response.json()["runs"]
    assert [r["job"] for r in runs] == [job]
    assert event(api, job, runs[0]["event"])["state"] == "WORKING"
    assert state(api, job) == "WORKING"


def test_pick_with_three_slots_delivers_up_to_three_runs_at_once(api: httpx.Client) -> None:
    register(api, "node-a", slots=3)
    jobs = [submit(api, title=f"f{i}", command=f"echo {i}") for i in range(4)]
    runs = pick_some(api, "node-a", slots=3)
    assert len(runs) == 3
    picked = [r["job"] for r in runs]
    assert len(set(picked)) == 3
    assert set(picked) <= set(jobs)
    assert len({r["event"] for r in runs}) == 3
    for r in runs:
        assert state(api, r["job"]) == "WORKING"
        assert event(api, r["job"], r["event"])["state"] == "WORKING"
    # only one is left: a pick for three gets that one
    rest = pick_some(api, "node-a", slots=3)
    assert [r["job"] for r in rest] == sorted(set(jobs) - set(picked))


# -- affinity -----------------------------------------------------------------------------


def test_a_worker_never_receives_a_job_outside_its_rules(api: httpx.Client) -> None:
    register(api, "gpu-node", affinity="GPU")
    linux = submit(api, title="linux", command="echo linux", affinity="LINUX", priority=5000)
    gpu = submit(api, title="gpu", command="echo gpu", affinity="GPU")
    runs = pick_some(api, "gpu-node", slots=2)
    assert [r["job"] for r in runs] == [gpu]
    assert finish(api, "gpu-node", runs[0]["event"], 0) == "FINISHED"
    for _ in range(3):
        assert pick(api, "gpu-node", slots=2, wait=0.3) == []
    assert state(api, linux) == "WAITING"
    assert events_of(api, linux) == []


def test_rule_order_comes_before_priority_and_unaffiliated_jobs_come_last(
    api: httpx.Client,
) -> None:
    free = submit(api, title="free", command="echo free", priority=3000)
    linux = submit(api, title="linux", command="echo linux", affinity="LINUX", priority=2000)
    gpu = submit(api, title="gpu", command="echo gpu", affinity="GPU", priority=1000)
    gpu_low = submit(api, title="gpu low", command="echo gpu", affinity="GPU", priority=500)
    register(api, "node-a", affinity="GPU;LINUX")
    order = [run_once(api, "node-a") for _ in range(4)]
    assert order == [gpu, gpu_low, linux, free]


def test_a_job_fitting_the_first_rule_as_a_subset_ranks_with_that_rule(
    api: httpx.Client,
) -> None:
    # "LINUX" is a subset of the first rule "LINUX,GPU", so both jobs fit rule 1 and
    # priority decides between them; the job without affinity still comes last
    free = submit(api, title="free", command="echo free", priority=3000)
    both = submit(api, title="both", command="echo both", affinity="LINUX,GPU", priority=1000)
    linux = submit(api, title="linux", command="echo linux", affinity="LINUX", priority=2000)
    alien = submit(api, title="alien", command="echo x", affinity="LINUX,GPU,WIN", priority=9000)
    register(api, "node-a", affinity="LINUX,GPU;LINUX")
    order = [run_once(api, "node-a") for _ in range(3)]
    assert order == [linux, both, free]
    assert pick(api, "node-a", wait=0.3) == []
    assert state(api, alien) == "WAITING"


def test_a_worker_without_rules_takes_only_jobs_without_affinity(api: httpx.Client) -> None:
    linux = submit(api, title="linux", command="echo linux", affinity="LINUX", priority=5000)
    free = submit(api, title="free", command="echo free")
    register(api, "plain")
    runs = pick_some(api, "plain", slots=2)
    assert [r["job"] for r in runs] == [free]
    assert finish(api, "plain", runs[0]["event"], 0) == "FINISHED"
    assert pick(api, "plain", slots=2, wait=0.3) == []
    assert state(api, linux) == "WAITING"


# -- hierarchical priority ----------------------------------------------------------------


def test_delivery_follows_hierarchical_priority_then_id(api: httpx.Client) -> None:
    low_group = submit(api, title="A", priority=10)
    a_high = submit(api, parent=low_group, title="a-high", command="echo", priority=100)
    a_low = submit(api, parent=low_group, title="a-low", command="echo", priority=1)
    root = submit(api, title="R", command="echo", priority=15)
    high_group = submit(api, title="B", priority=20)
    b_first = submit(api, parent=high_group, title="b1", command="echo", priority=5)
    b_second = submit(api, parent=high_group, title="b2", command="echo", priority=5)
    register(api, "node-a")
    order = [run_once(api, "node-a") for _ in range(5)]
    assert order == [b_first, b_second, root, a_high, a_low]
    assert get(api, high_group)["state"] == "FINISHED"
    assert get(api, low_group)["state"] == "FINISHED"


# -- heartbeat ----------------------------------------------------------------------------


def test_heartbeat_output_goes_to_the_log_and_the_answer_is_continue(api: httpx.Client) -> None:
    register(api, "node-a")
    job = submit(api, title="t", command="render")
    (run,) = pick_some(api, "node-a")
    answers = heartbeat(api, "node-a", {run["event"]: "line 1\n"})
    assert answers == {run["event"]: {"event": run["event"], "action": "continue", "reason": ""}}
    heartbeat(api, "node-a", {run["event"]: "línea 2 ✓\n"})
    heartbeat(api, "node-a", {run["event"]: ""})
    assert log_of(api, job) == "line 1\nlínea 2 ✓\n"


def test_heartbeat_progress_with_percent_split_across_two_heartbeats(api: httpx.Client) -> None:
    register(api, "node-a")
    job = submit(api, title="t", command="render", progress_pattern="#%percent")
    (run,) = pick_some(api, "node-a")
    heartbeat(api, "node-a", {run["event"]: "frame #10\n"})
    assert get(api, job)["progress"] == pytest.approx(0.10)
    heartbeat(api, "node-a", {run["event"]: "frame #4"})
    heartbeat(api, "node-a", {run["event"]: "2 done\n"})
    assert get(api, job)["progress"] == pytest.approx(0.42)
    # output without a figure leaves the progress as it was
    heartbeat(api, "node-a", {run["event"]: "writing file\n"})
    assert get(api, job)["progress"] == pytest.approx(0.42)


def test_heartbeat_progress_split_across_three_heartbeats(api: httpx.Client) -> None:
    # a worker flushing in small pieces: the match spans more than the last chunk
    register(api, "node-a")
    job = submit(api, title="t", command="render", progress_pattern="Progress: %percent%")
    (run,) = pick_some(api, "node-a")
    for piece in ("Progress: ", "4", "2%\n"):
        assert heartbeat(api, "node-a", {run["event"]: piece})[run["event"]]["action"] == "continue"
    assert log_of(api, job) == "Progress: 42%\n"
    assert get(api, job)["progress"] == pytest.approx(0.42)


def test_heartbeat_progress_with_a_one_pattern(api: httpx.Client) -> None:
    register(api, "node-a")
    job = submit(api, title="t", command="render", progress_pattern="progress=%one;")
    (run,) = pick_some(api, "node-a")
    heartbeat(api, "node-a", {run["event"]: "progress=0.25; progress=0.5;\n"})
    assert get(api, job)["progress"] == pytest.approx(0.5)
    heartbeat(api, "node-a", {run["event"]: "progress=.75;\n"})
    assert get(api, job)["progress"] == pytest.approx(0.75)


def test_heartbeat_machine_figures_show_in_the_worker_listing(api: httpx.Client) -> None:
    register(api, "node-a")
    answers = heartbeat(api, "node-a", cpu=[12.5, 50, 0], free_memory=1024, total_memory=4096)
    assert answers == {}
    row = worker_row(api, "node-a")
    assert row["cpu"] == "[12.5,50,0]"
    assert row["free_memory"] == 1024
    assert row["total_memory"] == 4096
    # a heartbeat without figures keeps the last ones
    heartbeat(api, "node-a")
    assert worker_row(api, "node-a")["cpu"] == "[12.5,50,0]"


def test_idle_heartbeats_arriving_together_each_record_their_own_figures(
    api: httpx.Client, sql: Sql
) -> None:
    # written together in batches: each worker must still get its own figures, and an
    # unknown name among them its 404
    names = [f"node-{i}" for i in range(40)]
    for name in names:
        register(api, name)
    sql.execute("UPDATE workers SET state = 'TIMEOUT' WHERE name = 'node-7'")

    def beat(name: str) -> int:
        index = int(name.split("-")[1]) if name != "ghost" else 0
        response = api.post(
            f"{V2}/{name}/heartbeat", json={"cpu": [index], "free_memory": index}, timeout=60
        )
        return response.status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=41) as pool:
        statuses = dict(zip([*names, "ghost"], pool.map(beat, [*names, "ghost"]), strict=True))
    assert statuses == {**dict.fromkeys(names, 200), "ghost": 404}
    rows = {r["name"]: r for r in sql.fetch("SELECT name, cpu, free_memory, state FROM workers")}
    for i, name in enumerate(names):
        assert (list(rows[name]["cpu"]), rows[name]["free_memory"]) == ([i], i), name
    assert rows["node-7"]["state"] == "WAITING"
    assert "ghost" not in rows


@pytest.mark.parametrize(
    ("operation", "reason"),
    [
        ("pause", "paused"),
        ("reset", "reset"),
        ("delete", "deleted"),
        ("stop worker", "worker stopped"),
    ],
)
def test_heartbeat_tells_to_stop_and_why(api: httpx.Client, operation: str, reason: str) -> None:
    register(api, "node-a")
    job = submit(api, title="t", command="render")
    (run,) = pick_some(api, "node-a")
    assert heartbeat(api, "node-a", {run["event"]: "go\n"})[run["event"]]["action"] == "continue"
    if operation == "pause":
        ok(api.post("/api/pausejobs", json=[job]))
    elif operation == "reset":
        ok(api.post("/api/resetjobs", json=[job]))
    elif operation == "delete":
        ok(api.request("DELETE", "/api/jobs", json=[job]))
    else:
        ok(api.post("/api/stopworkers", json=["node-a"]))
    answer = heartbeat(api, "node-a", {run["event"]: "more\n"})[run["event"]]
    assert answer == {"event": run["event"], "action": "stop", "reason": reason}
    if operation == "delete":
        assert api.get(f"/api/jobs/{job}").status_code == 404
    else:
        assert state(api, job) == ("PAUSED" if operation == "pause" else "WAITING")
        assert event(api, job, run["event"])["state"] == "CANCELED"
    # the worker is free again (or stopped)
    assert worker_row(api, "node-a")["state"] == "WAITING"


def test_a_stopped_worker_gets_no_runs_until_started_again(api: httpx.Client) -> None:
    register(api, "node-a")
    ok(api.post("/api/stopworkers", json=["node-a"]))
    job = submit(api, title="t", command="render")
    # a stopped worker's pick waits and gets nothing
    for _ in range(3):
        assert pick(api, "node-a", wait=0.3) == []
    assert worker_row(api, "node-a")["active"] == 0
    assert state(api, job) == "WAITING"
    ok(api.post("/api/startworkers", json=["node-a"]))
    (run,) = pick_some(api, "node-a")
    assert run["job"] == job


def test_registering_again_requeues_the_runs_of_an_earlier_life(api: httpx.Client) -> None:
    register(api, "node-a")
    job = submit(api, title="t", command="render")
    (run,) = pick_some(api, "node-a")
    register(api, "node-a")
    assert state(api, job) == "WAITING"
    assert event(api, job, run["event"])["state"] == "CANCELED"
    answer = heartbeat(api, "node-a", {run["event"]: "old life"})[run["event"]]
    assert answer["action"] == "stop"
    assert answer["reason"] == "worker restarted"
    (again,) = pick_some(api, "node-a")
    assert again["job"] == job
    assert again["event"] != run["event"]


# -- finish -------------------------------------------------------------------------------


def test_finish_with_exit_zero_finishes_the_job_and_updates_the_group(
    api: httpx.Client,
) -> None:
    register(api, "node-a")
    group = submit(api, title="shot")
    frames = [submit(api, parent=group, title=f"f{i}", command="render") for i in range(2)]
    (run,) = pick_some(api, "node-a")
    assert get(api, group)["working"] == 1
    assert finish(api, "node-a", run["event"], 0) == "FINISHED"
    assert state(api, run["job"]) == "FINISHED"
    assert get(api, run["job"])["progress"] == 1.0
    assert event(api, run["job"], run["event"])["state"] == "FINISHED"
    shown = get(api, group)
    assert (shown["finished"], shown["total_finished"], shown["working"]) == (1, 1, 0)
    assert shown["progress"] == pytest.approx(0.5)
    assert worker_row(api, "node-a")["finished"] == 1

    (other,) = pick_some(api, "node-a")
    assert {run["job"], other["job"]} == set(frames)
    assert finish(api, "node-a", other["event"], 0) == "FINISHED"
    assert get(api, group)["state"] == "FINISHED"
    assert get(api, group)["total_finished"] == 2
    assert worker_row(api, "node-a")["finished"] == 2


def test_finish_with_a_failure_and_no_retry_is_an_error(api: httpx.Client) -> None:
    register(api, "node-a")
    group = submit(api, title="shot")
    job = submit(api, parent=group, title="f", command="render", retry=0)
    (run,) = pick_some(api, "node-a")
    assert finish(api, "node-a", run["event"], 1) == "ERROR"
    assert state(api, job) == "ERROR"
    assert get(api, job)["run_done"] == 1
    assert event(api, job, run["event"])["state"] == "ERROR"
    assert get(api, group)["state"] == "ERROR"
    assert get(api, group)["errors"] == 1
    row = worker_row(api, "node-a")
    assert (row["finished"], row["error"]) == (0, 1)


def test_finish_with_retries_requeues_until_the_retries_are_spent(api: httpx.Client) -> None:
    register(api, "node-a")
    job = submit(api, title="flaky", command="render", retry=2)
    events: list[int] = []
    for attempt in (1, 2):
        (run,) = pick_some(api, "node-a")
        assert run["job"] == job
        events.append(run["event"])
        assert finish(api, "node-a", run["event"], 1) == "RETRY"
        shown = get(api, job)
        assert shown["state"] == "WAITING"
        assert shown["run_done"] == attempt
    (run,) = pick_some(api, "node-a")
    assert run["job"] == job
    events.append(run["event"])
    assert finish(api, "node-a", run["event"], 1) == "ERROR"
    shown = get(api, job)
    assert shown["state"] == "ERROR"
    assert shown["run_done"] == 3
    assert len(set(events)) == 3
    assert [event(api, job, e)["state"] for e in events] == ["ERROR"] * 3
    assert pick(api, "node-a", wait=0.3) == []


def test_finish_of_a_run_paused_meanwhile_is_ignored(api: httpx.Client) -> None:
    register(api, "node-a")
    job = submit(api, title="t", command="render")
    (run,) = pick_some(api, "node-a")
    ok(api.post("/api/pausejobs", json=[job]))
    before = get(api, job)
    assert before["state"] == "PAUSED"
    assert finish(api, "node-a", run["event"], 0) == "IGNORED"
    after = get(api, job)
    assert after == before
    assert event(api, job, run["event"])["state"] == "CANCELED"
    assert worker_row(api, "node-a")["finished"] == 0


def test_finish_with_output_appends_it_to_the_log(api: httpx.Client) -> None:
    register(api, "node-a")
    job = submit(api, title="t", command="render")
    (run,) = pick_some(api, "node-a")
    heartbeat(api, "node-a", {run["event"]: "start\n"})
    assert finish(api, "node-a", run["event"], 0, output="end ✓\n") == "FINISHED"
    assert log_of(api, job) == "start\nend ✓\n"


def pick_reporting(
    api: httpx.Client, name: str, finished: list[dict[str, Any]], wait: float = 0.5
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A pick that reports ended runs first; the runs it brings and the results."""
    response = api.post(
        f"{V2}/{name}/pick", json={"slots": 1, "wait": wait, "finished": finished}, timeout=60
    )
    assert response.status_code == 200, response.text
    body = response.json()
    return body["runs"], body["results"]


def test_a_pick_reports_the_ended_runs_and_brings_the_next_one(api: httpx.Client) -> None:
    register(api, "node-a")
    group = submit(api, title="shot")
    first, second = (submit(api, parent=group, title=f"f{i}", command="r") for i in range(2))
    (run,) = pick_some(api, "node-a")
    assert run["job"] == first
    runs, results = pick_reporting(
        api, "node-a", [{"event": run["event"], "exit_code": 0, "output": "done\n"}], wait=5
    )
    assert results == [{"event": run["event"], "result": "FINISHED"}]
    assert [r["job"] for r in runs] == [second]
    assert state(api, first) == "FINISHED"
    assert log_of(api, first) == "done\n"
    assert event(api, first, run["event"])["state"] == "FINISHED"
    assert state(api, second) == "WORKING"
    assert get(api, group)["total_finished"] == 1
    assert worker_row(api, "node-a")["finished"] == 1


def test_a_pick_ending_runs_with_exit_zero_ends_them_as_finish_does(
    api: httpx.Client, sql: Sql
) -> None:
    # no output: the ends go in the pick's own statement
    register(api, "node-a", slots=3)
    group = submit(api, title="shot")
    jobs = [submit(api, parent=group, title=f"f{i}", command="r") for i in range(3)]
    runs = pick_some(api, "node-a", slots=3)
    while len(runs) < 3:
        runs += pick_some(api, "node-a", slots=3 - len(runs))
    first, paused, last = (next(r for r in runs if r["job"] == j) for j in jobs)
    ok(api.post("/api/pausejobs", json=[paused["job"]]))
    register(api, "node-b")
    # another worker's run is not this worker's to end
    _, results = pick_reporting(api, "node-b", [{"event": last["event"], "exit_code": 0}])
    assert results == [{"event": last["event"], "result": "IGNORED"}]
    assert state(api, last["job"]) == "WORKING"

    reported = [
        {"event": first["event"], "exit_code": 0},
        {"event": first["event"], "exit_code": 0},
        {"event": paused["event"], "exit_code": 0},
    ]
    runs, results = pick_reporting(api, "node-a", reported)
    assert runs == []
    assert results == [
        {"event": first["event"], "result": "FINISHED"},
        {"event": first["event"], "result": "IGNORED"},
        {"event": paused["event"], "result": "IGNORED"},
    ]
    assert state(api, first["job"]) == "FINISHED"
    assert get(api, first["job"])["progress"] == 1.0
    assert get(api, first["job"])["run_done"] == 1
    ended = event(api, first["job"], first["event"])
    assert ended["state"] == "FINISHED"
    assert sql.fetchval("SELECT exit_code FROM events WHERE id = $1", first["event"]) == 0
    assert ended["duration"] >= 0
    assert get(api, paused["job"])["state"] == "PAUSED"
    shown = get(api, group)
    assert (shown["total_finished"], shown["working"]) == (1, 1)
    row = worker_row(api, "node-a")
    assert (row["finished"], row["error"], row["state"]) == (1, 0, "WORKING")

    _, results = pick_reporting(api, "node-a", [{"event": last["event"], "exit_code": 0}])
    assert results == [{"event": last["event"], "result": "FINISHED"}]
    row = worker_row(api, "node-a")
    assert (row["finished"], row["state"]) == (2, "WAITING")
    assert sql.fetchval("SELECT current_event FROM workers WHERE name = 'node-a'") is None
    assert get(api, group)["total_finished"] == 2


def test_a_pick_reports_failures_and_repeats_in_order_like_finish(api: httpx.Client) -> None:
    register(api, "node-a", slots=2)
    flaky = submit(api, title="flaky", command="r", retry=1)
    broken = submit(api, title="broken", command="r", retry=0)
    runs = pick_some(api, "node-a", slots=2)
    while len(runs) < 2:
        runs += pick_some(api, "node-a", slots=1)
    by_job = {r["job"]: r["event"] for r in runs}
    reported = [
        {"event": by_job[flaky], "exit_code": 3},
        {"event": by_job[broken], "exit_code": 1},
        # the same exit again, and a run that is not this worker's
        {"event": by_job[broken], "exit_code": 1},
        {"event": 2**63 - 1, "exit_code": 0},
    ]
    _, results = pick_reporting(api, "node-a", reported)
    assert results == [
        {"event": by_job[flaky], "result": "RETRY"},
        {"event": by_job[broken], "result": "ERROR"},
        {"event": by_job[broken], "result": "IGNORED"},
        {"event": 2**63 - 1, "result": "IGNORED"},
    ]
    assert state(api, broken) == "ERROR"
    assert get(api, flaky)["run_done"] == 1


def test_a_pick_reporting_runs_for_an_unknown_worker_is_a_404_and_changes_nothing(
    api: httpx.Client,
) -> None:
    register(api, "node-a")
    job = submit(api, title="t", command="r")
    (run,) = pick_some(api, "node-a")
    response = api.post(
        f"{V2}/ghost/pick", json={"finished": [{"event": run["event"], "exit_code": 0}]}
    )
    assert response.status_code == 404, response.text
    assert "ghost" in response.json()["detail"]
    assert state(api, job) == "WORKING"


# -- timeouts and lost workers ------------------------------------------------------------


def test_a_run_past_its_timeout_is_stopped_and_the_job_fails(api: httpx.Client) -> None:
    register(api, "node-a")
    job = submit(api, title="slow", command="sleep 100", timeout=1, retry=0)
    (run,) = pick_some(api, "node-a")
    answer: dict[str, Any] = {}
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        answer = heartbeat(api, "node-a", {run["event"]: "."})[run["event"]]
        if answer["action"] == "stop":
            break
        time.sleep(0.3)
    assert answer["action"] == "stop", "the timeout pass never stopped the run"
    assert "timeout" in answer["reason"]
    assert event(api, job, run["event"])["state"] == "TIMEOUT"
    assert state(api, job) == "ERROR"
    # the worker's late report of the killed process changes nothing
    assert finish(api, "node-a", run["event"], -9) == "IGNORED"
    assert state(api, job) == "ERROR"


def test_a_silent_worker_is_lost_and_its_job_goes_to_another(api: httpx.Client) -> None:
    register(api, "node-a")
    job = submit(api, title="t", command="render")
    (run,) = pick_some(api, "node-a")
    assert state(api, job) == "WORKING"
    wait_until(lambda: worker_row(api, "node-a")["state"] == "TIMEOUT", "node-a times out")
    assert state(api, job) == "WAITING"
    assert event(api, job, run["event"])["state"] == "TIMEOUT"

    register(api, "node-b")
    (again,) = pick_some(api, "node-b")
    assert again["job"] == job
    assert again["event"] != run["event"]
    assert get(api, job)["worker"] == "node-b"
    # node-a coming back is told to drop its old run
    assert heartbeat(api, "node-a", {run["event"]: "late"})[run["event"]]["action"] == "stop"
    assert finish(api, "node-a", run["event"], 0) == "IGNORED"
    assert finish(api, "node-b", again["event"], 0) == "FINISHED"
    assert state(api, job) == "FINISHED"


# -- dependencies -------------------------------------------------------------------------


def test_a_pending_job_waits_for_its_dependency_to_finish_through_the_protocol(
    api: httpx.Client,
) -> None:
    register(api, "node-a", slots=2)
    first = submit(api, title="sim", command="simulate")
    second = submit(api, title="render", command="render", dependencies=[first], priority=9000)
    assert state(api, second) == "PENDING"
    runs = pick_some(api, "node-a", slots=2)
    assert [r["job"] for r in runs] == [first]
    assert pick(api, "node-a", slots=2, wait=0.3) == []
    assert state(api, second) == "PENDING"
    assert finish(api, "node-a", runs[0]["event"], 0) == "FINISHED"
    assert state(api, second) == "WAITING"
    (run,) = pick_some(api, "node-a", slots=2)
    assert run["job"] == second


# -- bad input ----------------------------------------------------------------------------


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status_code"] == status
    detail: str = body["detail"]
    return detail


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("pick", {"slots": 1, "wait": 0}),
        ("heartbeat", {"runs": []}),
        ("finish", {"event": 1, "exit_code": 0}),
    ],
)
def test_an_unregistered_worker_gets_404(
    api: httpx.Client, sql: Sql, route: str, body: dict[str, Any]
) -> None:
    detail = _error(api.post(f"{V2}/ghost/{route}", json=body), 404)
    assert "ghost" in detail
    assert sql.fetchval("SELECT count(*) FROM workers") == 0


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("register", {"name": 5}, "name"),
        ("register", {"name": "n", "slots": 0}, "slots"),
        ("register", {"name": "n", "affinity": ["GPU"]}, "affinity"),
        ("node-a/pick", {"slots": "many"}, "slots"),
        ("node-a/pick", {"slots": 1, "wait": -1}, "wait"),
        ("node-a/heartbeat", {"runs": [{"event": "x"}]}, "event"),
        ("node-a/heartbeat", {"cpu": "busy"}, "cpu"),
        ("node-a/heartbeat", {"free_memory": -5}, "free_memory"),
        ("node-a/finish", {"event": 1, "exit_code": "boom"}, "exit_code"),
        ("node-a/finish", {"exit_code": 0}, "event"),
    ],
)
def test_wrong_types_are_a_400_naming_the_field(
    api: httpx.Client, route: str, body: dict[str, Any], field: str
) -> None:
    register(api, "node-a")
    detail = _error(api.post(f"{V2}/{route}", json=body), 400)
    assert field in detail


@pytest.mark.parametrize("huge", [2**63, 2**64, 10**30])
def test_huge_event_ids_are_refused_not_a_500(api: httpx.Client, huge: int) -> None:
    register(api, "node-a")
    hb = api.post(f"{V2}/node-a/heartbeat", json={"runs": [{"event": huge, "output": "x"}]})
    assert 400 <= hb.status_code < 500, hb.text
    fin = api.post(f"{V2}/node-a/finish", json={"event": huge, "exit_code": 0})
    assert 400 <= fin.status_code < 500, fin.text


@pytest.mark.parametrize(
    "figures",
    [{"free_memory": 2**63}, {"total_memory": 2**64 - 1}, {"free_memory": 10**30}],
)
def test_huge_memory_figures_are_refused_not_a_500(
    api: httpx.Client, figures: dict[str, int]
) -> None:
    register(api, "node-a")
    response = api.post(f"{V2}/node-a/heartbeat", json={"runs": [], **figures})
    assert 400 <= response.status_code < 500, response.text
    (field,) = figures
    assert field in response.json()["detail"]


def test_the_largest_event_id_is_an_unknown_run(api: httpx.Client) -> None:
    register(api, "node-a")
    biggest = 2**63 - 1
    answers = heartbeat(api, "node-a", {biggest: "x"})
    assert answers[biggest]["action"] == "stop"
    assert finish(api, "node-a", biggest, 0) == "IGNORED"


def test_heartbeat_for_an_unknown_event_answers_stop(api: httpx.Client) -> None:
    register(api, "node-a")
    register(api, "node-b")
    job = submit(api, title="t", command="render")
    (run,) = pick_some(api, "node-a")
    answers = heartbeat(api, "node-b", {run["event"]: "not mine", 424242: "nobody's"})
    assert answers[run["event"]]["action"] == "stop"
    assert answers[424242]["action"] == "stop"
    # node-b's words changed nothing for node-a's run
    assert log_of(api, job) == ""
    assert heartbeat(api, "node-a", {run["event"]: ""})[run["event"]]["action"] == "continue"
    assert state(api, job) == "WORKING"
