"""`GET /metrics`: parsed with prometheus_client's own parser, its figures against the API
and against what a real worker did."""

from collections import Counter
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.metrics import PROCESS
from tests.conftest import Sql
from tests.farm import run, start, submit

V2 = "/api/v2/workers"
Key = tuple[str, tuple[tuple[str, str], ...]]


def scrape(api: httpx.Client) -> dict[Key, float]:
    answer = api.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def by_state(figures: dict[Key, float], family: str) -> dict[str, int]:
    return {
        dict(labels)["state"]: int(v) for (name, labels), v in figures.items() if name == family
    }


def mine(name: str, **labels: str) -> Key:
    return name, tuple(sorted({"process": PROCESS, **labels}.items()))


def test_jobs_and_workers_by_state_are_the_farms_as_the_api_shows_it(
    api: httpx.Client, sql: Sql
) -> None:
    group = submit(api, title="shot", command="")
    frames = [submit(api, title=f"f{i}", command="true", parent=group) for i in range(4)]
    inner = submit(api, title="inner", command="", parent=group)
    submit(api, title="deep", command="true", parent=inner)
    alone = submit(api, title="alone", command="true")
    api.post("/api/pausejobs", json=[inner])
    run(sql, frames[0])
    run(sql, frames[1], exit_code=1)
    start(sql, frames[2], worker="node-2")
    run(sql, alone)
    api.post("/api/stopworkers", json=["node-1"])
    figures = scrape(api)
    shown: Counter[str] = Counter()
    for listed in ("/api/jobs", f"/api/jobs/{group}/children", f"/api/jobs/{inner}/children"):
        shown.update(j["state"] for j in api.get(listed).json() if j["command"])
    # a paused leaf is WAITING with its pause: the figures count base states
    shown["WAITING"] += shown.pop("PAUSED", 0)
    assert by_state(figures, "corral_jobs") == {
        "WAITING": 2, "WORKING": 1, "PENDING": 0, "FINISHED": 2, "ERROR": 1
    }  # fmt: skip
    assert {k: v for k, v in by_state(figures, "corral_jobs").items() if v} == dict(shown)
    assert by_state(figures, "corral_workers") == {"WORKING": 1, "STOPPED": 1}


def test_runs_picks_heartbeats_and_requests_are_counted_for_this_process(
    api: httpx.Client,
) -> None:
    before = scrape(api)
    ok = submit(api, title="ok", command="true")
    bad = submit(api, title="bad", command="false")
    register(api, "node-1")
    for job, exit_code in ((ok, 0), (bad, 3)):
        [picked] = pick(api, "node-1")
        assert picked["job"] == job
        beat = api.post(f"{V2}/node-1/heartbeat", json={"runs": [{"event": picked["event"]}]})
        assert beat.status_code == 200, beat.text
        ended = api.post(
            f"{V2}/node-1/finish", json={"event": picked["event"], "exit_code": exit_code}
        )
        assert ended.status_code == 200, ended.text
    after = scrape(api)

    def grew(key: Key) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew(mine("corral_runs_started_total")) == 2
    assert grew(mine("corral_runs_finished_total")) == 1
    assert grew(mine("corral_runs_failed_total")) == 1
    assert grew(mine("corral_pick_seconds_count")) == 2
    assert 1 <= grew(mine("corral_dispatch_pass_seconds_count")) <= 2
    assert grew(mine("corral_heartbeats_total")) == 2
    # the scrape before is a request of its own route, answered 200; a refusal counts too
    requests = "corral_http_requests_total"
    assert grew(mine(requests, method="GET", route="/metrics", status="200")) == 1
    assert grew(mine(requests, method="POST", route=f"{V2}/{{name}}/pick", status="200")) == 2
    assert api.get("/api/jobs/999999").status_code == 404
    last = scrape(api)
    key = mine(requests, method="GET", route="/api/jobs/{job_id}", status="404")
    assert last.get(key, 0.0) - after.get(key, 0.0) == 1


def register(api: httpx.Client, name: str) -> None:
    answer = api.post(f"{V2}/register", json={"protocol": 1, "name": name, "slots": 1})
    assert answer.status_code == 200, answer.text


def pick(api: httpx.Client, name: str) -> list[dict[str, Any]]:
    for _ in range(30):
        answer = api.post(f"{V2}/{name}/pick", json={"slots": 1, "wait": 1.0}, timeout=30)
        assert answer.status_code == 200, answer.text
        runs: list[dict[str, Any]] = answer.json()["runs"]
        if runs:
            return runs
    pytest.fail(f"{name} got no run")
