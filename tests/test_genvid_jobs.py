"""The Genvid face's jobs: service jobs kept at their counts by the reconcile pass, against
a real server, with workers speaking the native protocol over HTTP (docs/genvid.md)."""

import base64
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.config import (
    Config,
    DispatchConfig,
    GenvidConfig,
    GenvidSettingsConfig,
    ServerConfig,
    ServiceConfig,
    ServiceGroupConfig,
)
from tests.conftest import ServerThread, Sql

V2 = "/api/v2/workers"
PATIENCE = 30.0


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(
        server=ServerConfig(data_dir=str(tmp_path)),
        dispatch=DispatchConfig(
            interval=0.2, pick_wait=2.0, worker_timeout=3.0, dead_worker_interval=0.2
        ),
        genvid=GenvidConfig(
            settings=GenvidSettingsConfig(reconcile_interval=0.2),
            jobs={
                "web": ServiceConfig(
                    groups={
                        "web": ServiceGroupConfig(command="serve web", count_init=2, count_max=3)
                    }
                ),
                "game": ServiceConfig(
                    autostart=True,
                    groups={
                        "game": ServiceGroupConfig(command="serve game", count_init=1, count_max=2),
                        "api": ServiceGroupConfig(command="serve api", count_init=0, count_max=1),
                    },
                ),
            },
        ),
    )


# -- helpers --------------------------------------------------------------------------------


def wait_until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    pytest.fail(f"never happened within {PATIENCE} s: {what}")


def jobs(api: httpx.Client) -> dict[str, dict[str, Any]]:
    response = api.get("/v1/jobs")
    assert response.status_code == 200, response.text
    return {j["name"]: j for j in response.json()}


def group(api: httpx.Client, job: str = "web", name: str = "web") -> dict[str, Any]:
    found: dict[str, Any] = next(g for g in jobs(api)[job]["taskGroups"] if g["name"] == name)
    return found


def summary(api: httpx.Client, job: str = "web", name: str = "web") -> dict[str, int]:
    counts: dict[str, int] = group(api, job, name)["summary"]
    return counts


def register(api: httpx.Client, name: str, slots: int = 4) -> None:
    response = api.post(f"{V2}/register", json={"name": name, "slots": slots})
    assert response.status_code == 200, response.text


def pick(api: httpx.Client, name: str, slots: int = 4) -> list[dict[str, Any]]:
    response = api.post(f"{V2}/{name}/pick", json={"slots": slots, "wait": 0.5}, timeout=30)
    assert response.status_code == 200, response.text
    runs: list[dict[str, Any]] = response.json()["runs"]
    return runs


def pick_n(api: httpx.Client, name: str, n: int) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    wait_until(lambda: len(runs.__iadd__(pick(api, name, n - len(runs)))) >= n, f"{n} runs")
    return runs


def heartbeat(api: httpx.Client, name: str, outputs: dict[int, str]) -> dict[int, dict[str, Any]]:
    runs = [{"event": e, "output": o} for e, o in outputs.items()]
    response = api.post(f"{V2}/{name}/heartbeat", json={"runs": runs})
    assert response.status_code == 200, response.text
    return {a["event"]: a for a in response.json()["runs"]}


def finish(api: httpx.Client, name: str, event: int, exit_code: int) -> None:
    response = api.post(f"{V2}/{name}/finish", json={"event": event, "exit_code": exit_code})
    assert response.status_code == 200, response.text


def environment(run: dict[str, Any]) -> dict[str, str]:
    lines = [line for line in run["environment"].split("\n") if line]
    return dict(line.split("=", 1) for line in lines)


def started(api: httpx.Client, job: str = "web") -> dict[str, Any]:
    response = api.post(f"/v1/jobs/start/{job}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def update(api: httpx.Client, count: int, job: str = "web", name: str = "web") -> httpx.Response:
    return api.post("/v1/jobs/updatecounts", json={"jobID": job, "taskGroup": name, "count": count})


# -- the list -------------------------------------------------------------------------------


def test_configured_jobs_are_listed_dead_with_counts_zero_sorted_by_name(api: httpx.Client) -> None:
    response = api.get("/v1/jobs")
    assert response.status_code == 200
    listed = response.json()
    assert [j["name"] for j in listed] == ["game", "web"]
    assert [g["name"] for g in listed[0]["taskGroups"]] == ["api", "game"]
    zero = {"queued": 0, "starting": 0, "running": 0, "complete": 0, "failed": 0, "lost": 0}
    assert listed[1] == {
        "name": "web",
        "status": "dead",
        "autostart": False,
        "byCluster": False,
        "taskGroups": [{"name": "web", "count": 0, "countInit": 2, "countMax": 3, "summary": zero}],
    }
    assert listed[0]["autostart"] is True
    assert int(response.headers["waitIndex"]) >= 1
    assert response.headers["X-Nomad-Index"] == response.headers["waitIndex"]


def test_start_sets_the_initial_counts_and_the_allocations_follow(api: httpx.Client) -> None:
    answer = started(api)
    assert answer["taskGroups"][0]["count"] == 2
    assert answer["status"] == "pending"
    wait_until(lambda: summary(api)["queued"] == 2, "two queued allocations")
    assert jobs(api)["web"]["status"] == "pending"
    register(api, "node-1")
    runs = pick_n(api, "node-1", 2)
    assert {r["command"] for r in runs} == {"serve web"}
    assert summary(api)["starting"] == 2
    assert jobs(api)["web"]["status"] == "running"
    heartbeat(api, "node-1", {r["event"]: "" for r in runs})
    assert summary(api) == {
        "queued": 0, "starting": 0, "running": 2, "complete": 0, "failed": 0, "lost": 0
    }  # fmt: skip
    # starting a live job changes nothing
    again = started(api)
    assert again["taskGroups"][0]["count"] == 2
    assert again["taskGroups"][0]["summary"]["running"] == 2


def test_a_run_hands_the_task_its_allocation_and_names(api: httpx.Client, sql: Sql) -> None:
    started(api)
    register(api, "node-1")
    runs = pick_n(api, "node-1", 2)
    allocs = {r["alloc"] for r in sql.fetch("SELECT id::text AS alloc FROM service_allocations")}
    for run in runs:
        env = environment(run)
        assert env["NOMAD_JOB_NAME"] == "web"
        assert env["NOMAD_GROUP_NAME"] == env["NOMAD_TASK_NAME"] == "web"
        assert env["NOMAD_ALLOC_ID"] in allocs
        assert run["loggers"] == {}
    assert {environment(r)["NOMAD_ALLOC_ID"] for r in runs} == allocs


def test_an_exited_allocation_is_replaced_and_counted(api: httpx.Client) -> None:
    started(api)
    register(api, "node-1")
    first, second = pick_n(api, "node-1", 2)
    finish(api, "node-1", first["event"], 0)
    finish(api, "node-1", second["event"], 3)
    wait_until(lambda: summary(api)["complete"] == 1 and summary(api)["failed"] == 1, "counted")
    wait_until(lambda: summary(api)["queued"] == 2, "two replacements queued")
    replacements = pick_n(api, "node-1", 2)
    assert {r["job"] for r in replacements}.isdisjoint({first["job"], second["job"]})


# how long after the last failure the group's next allocation may start
HOLD = (
    "SELECT g.hold_until - max(a.ended) FROM service_groups g JOIN service_allocations a"
    " ON a.group_id = g.id WHERE g.name = 'web' AND a.outcome = 'failed' GROUP BY g.hold_until"
)


def test_failures_in_a_row_wait_longer_before_their_replacement(
    api: httpx.Client, sql: Sql
) -> None:
    started(api)
    update(api, -1)
    register(api, "node-1")
    (run,) = pick_n(api, "node-1", 1)
    finish(api, "node-1", run["event"], 1)
    # the first failure of a streak is replaced at once
    wait_until(lambda: summary(api)["failed"] == 1 and summary(api)["queued"] == 1, "replaced")
    assert sql.fetchval("SELECT hold_until FROM service_groups WHERE name = 'web'") == 0
    (run,) = pick_n(api, "node-1", 1)
    finish(api, "node-1", run["event"], 1)
    wait_until(lambda: summary(api)["failed"] == 2 and summary(api)["queued"] == 1, "queued")
    # the second in a row waits 2 s, and its replacement does not start before
    assert sql.fetchval(HOLD) == pytest.approx(2.0)
    assert sql.fetchval("SELECT streak FROM service_groups WHERE name = 'web'") == 2
    (run,) = pick_n(api, "node-1", 1)
    started_at = sql.fetchval("SELECT start FROM events WHERE id = $1", run["event"])
    hold = sql.fetchval("SELECT hold_until FROM service_groups WHERE name = 'web'")
    assert started_at >= hold
    finish(api, "node-1", run["event"], 1)
    wait_until(lambda: summary(api)["failed"] == 3, "third failure")
    assert sql.fetchval(HOLD) == pytest.approx(4.0)


def test_a_lost_worker_loses_its_allocations_and_they_are_replaced_elsewhere(
    api: httpx.Client,
) -> None:
    started(api)
    register(api, "node-1")
    runs = pick_n(api, "node-1", 2)
    heartbeat(api, "node-1", {r["event"]: "" for r in runs})
    register(api, "node-2")
    # node-1 falls silent; past the worker timeout its allocations are lost
    replacements: list[dict[str, Any]] = []

    def replaced() -> bool:
        replacements.extend(pick(api, "node-2", 2))
        heartbeat(api, "node-2", {r["event"]: "" for r in replacements})
        return len(replacements) == 2

    wait_until(replaced, "both allocations replaced on node-2")
    wait_until(lambda: summary(api)["running"] == 2, "two running")
    assert summary(api)["lost"] == 2
    assert summary(api)["failed"] == 0
    # the lost runs are over for good: node-1 is told to stop them
    answers = heartbeat(api, "node-1", {r["event"]: "" for r in runs})
    assert {a["action"] for a in answers.values()} == {"stop"}


def test_a_worker_registering_again_loses_its_allocations(api: httpx.Client) -> None:
    started(api)
    register(api, "node-1")
    pick_n(api, "node-1", 2)
    register(api, "node-1")
    wait_until(lambda: summary(api)["lost"] == 2, "two lost")
    wait_until(lambda: summary(api)["queued"] == 2, "two queued again")


# -- scaling --------------------------------------------------------------------------------


def test_updatecounts_adds_a_delta_and_zero_sets_zero(api: httpx.Client) -> None:
    started(api)
    register(api, "node-1")
    runs = pick_n(api, "node-1", 2)
    heartbeat(api, "node-1", {r["event"]: "" for r in runs})
    response = update(api, 1)
    assert response.status_code == 200, response.text
    assert response.json()["taskGroups"][0]["count"] == 3
    more = pick_n(api, "node-1", 1)
    answer = update(api, -2).json()
    assert answer["taskGroups"][0]["count"] == 1
    # the surplus goes: starting ones before running ones
    wait_until(lambda: summary(api)["complete"] == 2, "two stopped")
    answers = heartbeat(api, "node-1", {r["event"]: "" for r in [*runs, *more]})
    stopped = {e for e, a in answers.items() if a["action"] == "stop"}
    assert more[0]["event"] in stopped
    assert len(stopped) == 2
    assert summary(api)["running"] == 1
    assert update(api, 0).json()["taskGroups"][0]["count"] == 0
    wait_until(lambda: jobs(api)["web"]["status"] == "dead", "dead at count 0")
    assert summary(api)["complete"] == 3
    # a dead job starts again at its initial counts
    assert started(api)["taskGroups"][0]["count"] == 2


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"jobID": "web", "taskGroup": "web", "count": 4}, 400, "[0, 3]"),
        ({"jobID": "web", "taskGroup": "web", "count": -3}, 400, "[0, 3]"),
        ({"jobID": "web", "taskGroup": "web", "count": 1.5}, 400, "count"),
        ({"jobID": "web", "taskGroup": "web", "count": "1"}, 400, "count"),
        ({"jobID": "web", "count": 1}, 400, "taskGroup"),
        ({"taskGroup": "web", "count": 1}, 400, "jobID"),
        ({"jobID": "web", "taskGroup": "nope", "count": 1}, 400, "nope"),
        ({"jobID": "nope", "taskGroup": "web", "count": 1}, 404, "nope"),
    ],
)
def test_updatecounts_refusals_change_nothing(
    api: httpx.Client, sql: Sql, body: dict[str, Any], status: int, words: str
) -> None:
    started(api)
    before = sql.fetch("SELECT * FROM service_groups ORDER BY id")
    response = api.post("/v1/jobs/updatecounts", json=body)
    assert response.status_code == status, response.text
    assert words in response.text
    assert response.json()["status_code"] == status
    assert sql.fetch("SELECT * FROM service_groups ORDER BY id") == before


def test_updatecounts_of_a_job_not_started_is_refused(api: httpx.Client) -> None:
    response = update(api, 1)
    assert response.status_code == 400
    assert "not started" in response.json()["detail"]


def test_stop_zeroes_the_counts_and_ends_the_allocations_complete(api: httpx.Client) -> None:
    started(api)
    register(api, "node-1")
    runs = pick_n(api, "node-1", 1)
    response = api.post("/v1/jobs/stop/web")
    assert response.status_code == 200
    assert response.json()["taskGroups"][0]["count"] == 0
    wait_until(lambda: jobs(api)["web"]["status"] == "dead", "dead")
    assert summary(api)["complete"] == 2
    assert heartbeat(api, "node-1", {runs[0]["event"]: ""})[runs[0]["event"]]["action"] == "stop"
    assert api.post("/v1/jobs/stop/web").status_code == 200
    assert api.post("/v1/jobs/stop/nope").status_code == 404
    assert api.post("/v1/jobs/start/nope").status_code == 404
    assert update(api, 1).status_code == 400


def test_startall_starts_the_autostart_jobs_and_stopall_stops_all(api: httpx.Client) -> None:
    listed = api.post("/v1/jobs/startall").json()
    assert {j["name"]: j["status"] for j in listed} == {"game": "pending", "web": "dead"}
    assert api.get("/v1/job/game/summary").json()["taskGroups"][1]["count"] == 1
    assert api.get("/v1/job/nope/summary").status_code == 404
    stopped = api.post("/v1/jobs/stopall").json()
    assert all(g["count"] == 0 for j in stopped for g in j["taskGroups"])


# -- the jobs index -------------------------------------------------------------------------


def test_a_poll_at_the_current_index_waits_for_a_change(api: httpx.Client) -> None:
    index = int(api.get("/v1/jobs").headers["waitIndex"])
    answers: list[httpx.Response] = []
    poll = threading.Thread(
        target=lambda: answers.append(api.get("/v1/jobs", headers={"waitIndex": str(index)}))
    )
    poll.start()
    time.sleep(0.5)
    assert not answers, "the poll answered before any change"
    started(api)
    poll.join(timeout=PATIENCE)
    (answer,) = answers
    assert int(answer.headers["waitIndex"]) > index
    assert {j["name"]: j["taskGroups"][0]["count"] for j in answer.json()}["web"] == 2


def test_a_poll_below_the_index_answers_at_once_and_wait_bounds_a_hold(api: httpx.Client) -> None:
    index = int(api.get("/v1/jobs").headers["waitIndex"])
    assert api.get("/v1/jobs", params={"index": index - 1}).headers["waitIndex"] == str(index)
    held = api.get("/v1/jobs", params={"index": index, "wait": "300ms"})
    assert held.status_code == 200
    assert held.headers["waitIndex"] == str(index)


@pytest.mark.parametrize(
    ("params", "headers"),
    [({"index": "-1"}, {}), ({"index": "x"}, {}), ({}, {"WAITINDEX": "1.5"}), ({"wait": "5y"}, {})],
)
def test_bad_poll_parameters_are_refused(
    api: httpx.Client, params: dict[str, str], headers: dict[str, str]
) -> None:
    response = api.get("/v1/jobs", params=params, headers=headers)
    assert response.status_code == 400, response.text


def test_a_poll_wakes_on_a_change_made_through_another_server_process(
    api: httpx.Client, config: Config, database_url: str
) -> None:
    index = int(api.get("/v1/jobs").headers["waitIndex"])
    answers: list[httpx.Response] = []
    poll = threading.Thread(
        target=lambda: answers.append(
            api.get("/v1/jobs", params={"index": index}, timeout=PATIENCE)
        )
    )
    poll.start()
    with ServerThread(config, database_url) as other, httpx.Client(base_url=other) as second:
        time.sleep(0.5)
        assert not answers
        assert second.post("/v1/jobs/start/web").status_code == 200
        poll.join(timeout=PATIENCE)
    (answer,) = answers
    assert int(answer.headers["waitIndex"]) > index
    assert jobs(api)["web"]["taskGroups"][0]["count"] == 2


# -- logs and loggers -----------------------------------------------------------------------


def test_log_meta_lists_a_declared_logs_allocations_newest_first(api: httpx.Client) -> None:
    declared = [{"id": "web", "job": "web", "logLevel": True}, {"id": "err", "job": "web",
                "fileName": "stderr"}]  # fmt: skip
    response = api.post("/v1/log/logs", json=declared)
    assert response.status_code == 200, response.text
    assert response.json() == [
        {"id": "err", "job": "web", "group": "web", "task": "web", "fileName": "stderr",
         "logLevel": False},
        {"id": "web", "job": "web", "group": "web", "task": "web", "fileName": "stdout",
         "logLevel": True},
    ]  # fmt: skip
    assert api.get("/v1/log/logs").json() == response.json()
    assert api.get("/v1/log/meta/web").json() == []
    started(api)
    wait_until(lambda: len(api.get("/v1/log/meta/web").json()) == 2, "two allocations")
    meta = api.get("/v1/log/meta/web").json()
    assert {m["status"] for m in meta} == {"pending"}
    assert meta[0]["createTime"] >= meta[1]["createTime"]
    assert meta[0]["createTime"].endswith("Z")
    assert {m["jobName"] for m in meta} == {"web"}
    assert {m["logLevel"] for m in meta} == {True}
    assert api.get("/v1/log/meta/nope").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        [{"id": "", "job": "web"}],
        [{"id": "a", "job": "web"}, {"id": "a", "job": "web"}],
        [{"id": "a"}],
        [{"id": "a", "job": "web", "fileName": "stdin"}],
        [{"id": "a", "job": "web", "logLevel": "yes"}],
        {"id": "a", "job": "web"},
    ],
)
def test_bad_log_declarations_are_refused_and_store_nothing(api: httpx.Client, body: Any) -> None:
    api.post("/v1/log/logs", json=[{"id": "kept", "job": "web"}])
    response = api.post("/v1/log/logs", json=body)
    assert response.status_code == 400, response.text
    assert [e["id"] for e in api.get("/v1/log/logs").json()] == ["kept"]


def test_log_fs_reads_frames_by_offset_and_origin(api: httpx.Client) -> None:
    started(api)
    update(api, -1)
    register(api, "node-1")
    (run,) = pick_n(api, "node-1", 1)
    alloc = environment(run)["NOMAD_ALLOC_ID"]
    heartbeat(api, "node-1", {run["event"]: "line 1\n"})
    heartbeat(api, "node-1", {run["event"]: "line 2\n"})
    url = f"/v1/log/fs/{alloc}/web/stdout"
    frame = api.get(url).json()
    assert frame == {
        "File": "alloc/logs/web.stdout.0",
        "Offset": 14,
        "Data": base64.b64encode(b"line 1\nline 2\n").decode(),
    }
    # a tail loop feeds the offset back and gets no gaps and no repeats
    assert base64.b64decode(api.get(url, params={"offset": 7}).json()["Data"]) == b"line 2\n"
    past = api.get(url, params={"offset": 99}).json()
    assert past["Data"] == ""
    assert past["Offset"] == 14
    tail = api.get(url, params={"origin": "end", "offset": 7}).json()
    assert base64.b64decode(tail["Data"]) == b"line 2\n"
    whole = api.get(url, params={"origin": "end", "offset": 10**12}).json()
    assert base64.b64decode(whole["Data"]) == b"line 1\nline 2\n"
    plain = api.get(url, params={"plain": "true", "offset": 7})
    assert plain.text == "line 2\n"
    assert plain.headers["content-type"].startswith("text/plain")
    empty = api.get(f"/v1/log/fs/{alloc}/web/stderr").json()
    assert empty["Data"] == ""
    assert empty["Offset"] == 0
    # the group's name works as the task's
    assert api.get(f"/v1/log/fs/{alloc}/nope/stdout").status_code == 404
    assert api.get("/v1/log/fs/00000000-0000-0000-0000-000000000000/web/stdout").status_code == 404
    assert api.get("/v1/log/fs/not-a-uuid/web/stdout").status_code == 404
    for bad in ({"origin": "middle"}, {"offset": "-1"}, {"offset": "x"}):
        assert api.get(url, params=bad).status_code == 400
    assert api.get(f"/v1/log/fs/{alloc}/web/stdin").status_code == 400


def test_logger_levels_reach_a_run_at_start_and_while_it_runs(api: httpx.Client) -> None:
    assert api.get("/v1/log/defaults").json() == {}
    assert api.post("/v1/log/defaults/leaf", json={"leaf": "debug"}).json() == {"leaf": "debug"}
    assert api.post("/v1/log/defaults/net.io", json={"x": "WARN"}).json() == {
        "leaf": "debug", "net.io": "warning"
    }  # fmt: skip
    started(api)
    update(api, -1)
    register(api, "node-1")
    (run,) = pick_n(api, "node-1", 1)
    env = environment(run)
    assert env["GENVID_LOG_LEVEL_LEAF"] == "debug"
    assert env["GENVID_LOG_LEVEL_NET_IO"] == "warning"
    assert run["loggers"] == {"leaf": "debug", "net.io": "warning"}
    alloc = env["NOMAD_ALLOC_ID"]
    assert api.get(f"/v1/log/allocs/{alloc}").json() == {"leaf": "", "net.io": ""}
    changed = api.post(f"/v1/log/allocs/{alloc}/leaf", json={"leaf": "error"})
    assert changed.json() == {"leaf": "error", "net.io": ""}
    answer = heartbeat(api, "node-1", {run["event"]: ""})[run["event"]]
    assert answer["loggers"] == {"leaf": "error", "net.io": "warning"}
    assert api.post(f"/v1/log/allocs/{alloc}/leaf", json="").json() == {"leaf": "", "net.io": ""}
    assert api.post("/v1/log/defaults/net.io", json={"net.io": ""}).json() == {"leaf": "debug"}
    answer = heartbeat(api, "node-1", {run["event"]: ""})[run["event"]]
    assert answer["loggers"] == {"leaf": "debug"}


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/log/defaults/leaf", {"leaf": "loud"}, 400),
        ("/v1/log/defaults/leaf", {"a": "info", "b": "info"}, 400),
        ("/v1/log/defaults/leaf", {"leaf": 3}, 400),
        ("/v1/log/defaults/bad%20name", {"x": "info"}, 400),
        ("/v1/log/allocs/00000000-0000-0000-0000-000000000000/leaf", {"leaf": "info"}, 404),
    ],
)
def test_bad_logger_requests_are_refused(
    api: httpx.Client, path: str, body: Any, status: int
) -> None:
    response = api.post(path, json=body)
    assert response.status_code == status, response.text
    assert api.get("/v1/log/defaults").json() == {}
