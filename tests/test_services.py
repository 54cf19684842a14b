"""Service jobs through the native API (docs/services.md) and from the config file."""

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.config import Config, DispatchConfig, GenvidConfig, GenvidSettingsConfig, ServerConfig
from tests.conftest import Sql

SERVICES = "/api/v2/services"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(
        server=ServerConfig(data_dir=str(tmp_path)),
        dispatch=DispatchConfig(interval=0.2, pick_wait=1.0),
        genvid=GenvidConfig(settings=GenvidSettingsConfig(reconcile_interval=0.2)),
    )


RENDER = {
    "name": "render-cache",
    "groups": {"cache": {"command": "cache-server", "count_init": 2, "count_max": 4}},
}


def define(api: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = api.put(SERVICES + "/", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def wait_for(api: httpx.Client, name: str, check: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        service: dict[str, Any] = api.get(f"{SERVICES}/{name}").json()
        if check(service):
            return service
        time.sleep(0.05)
    pytest.fail(f"service {name} never reached the state asked")


def test_a_service_defined_through_the_api_runs_at_its_count(api: httpx.Client, sql: Sql) -> None:
    defined = define(api, RENDER)
    assert defined["status"] == "dead"
    assert defined["groups"][0]["count"] == 0
    listing = api.get(SERVICES + "/").json()
    assert [s["name"] for s in listing["services"]] == ["render-cache"]
    assert listing["index"] >= 1
    started = api.post(f"{SERVICES}/render-cache/start").json()
    assert started["groups"][0]["count"] == 2
    wait_for(api, "render-cache", lambda s: s["groups"][0]["summary"]["queued"] == 2)
    allocations = api.get(f"{SERVICES}/render-cache/groups/cache/allocations").json()
    assert len(allocations) == 2
    assert {a["status"] for a in allocations} == {"queued"}
    # the leaves are ordinary jobs under the service's groups
    commands = {
        r["command"] for r in sql.fetch("SELECT command FROM jobs WHERE service_group IS NOT NULL")
    }
    assert commands == {"cache-server"}
    scaled = api.post(f"{SERVICES}/render-cache/groups/cache/count", json={"count": 4})
    assert scaled.json()["groups"][0]["count"] == 4
    wait_for(api, "render-cache", lambda s: s["groups"][0]["summary"]["queued"] == 4)
    api.post(f"{SERVICES}/render-cache/groups/cache/count", json={"count": 1})
    service = wait_for(api, "render-cache", lambda s: s["groups"][0]["summary"]["queued"] == 1)
    assert service["groups"][0]["summary"]["complete"] == 3


def test_a_changed_definition_applies_to_later_allocations(api: httpx.Client, sql: Sql) -> None:
    define(api, RENDER)
    api.post(f"{SERVICES}/render-cache/start")
    wait_for(api, "render-cache", lambda s: s["groups"][0]["summary"]["queued"] == 2)
    changed = {**RENDER, "groups": {"cache": {"command": "cache-server --v2", "count_max": 2}}}
    assert define(api, changed)["groups"][0]["count_max"] == 2
    api.post(f"{SERVICES}/render-cache/groups/cache/count", json={"count": 0})
    wait_for(api, "render-cache", lambda s: s["groups"][0]["summary"]["queued"] == 0)
    api.post(f"{SERVICES}/render-cache/groups/cache/count", json={"count": 1})
    wait_for(api, "render-cache", lambda s: s["groups"][0]["summary"]["queued"] == 1)
    newest = sql.fetchval(
        "SELECT j.command FROM jobs j JOIN service_allocations a ON a.job_id = j.id"
        " WHERE a.outcome IS NULL"
    )
    assert newest == "cache-server --v2"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "bad name", "groups": {"g": {"command": "x"}}},
        {"name": "svc", "groups": {}},
        {"name": "svc", "groups": {"g": {"command": ""}}},
        {"name": "svc", "groups": {"g": {"command": "x", "count_init": 3, "count_max": 2}}},
        {"name": "svc", "groups": {"g": {"command": "x", "count_max": 0}}},
        {"name": "svc", "groups": {"g": {"command": "x", "colour": "red"}}},
    ],
)
def test_bad_definitions_are_refused_and_change_nothing(
    api: httpx.Client, sql: Sql, body: dict[str, Any]
) -> None:
    before = sql.snapshot()
    response = api.put(SERVICES + "/", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["detail"]
    assert sql.snapshot() == before
    assert sql.fetchval("SELECT count(*) FROM services") == 0


def test_counts_outside_their_range_and_unknown_services_are_refused(api: httpx.Client) -> None:
    define(api, RENDER)
    api.post(f"{SERVICES}/render-cache/start")
    too_many = api.post(f"{SERVICES}/render-cache/groups/cache/count", json={"count": 5})
    assert too_many.status_code == 400
    assert "[0, 4]" in too_many.json()["detail"]
    assert (
        api.post(f"{SERVICES}/render-cache/groups/nope/count", json={"count": 1}).status_code == 400
    )
    assert api.get(f"{SERVICES}/nope").status_code == 404
    assert api.post(f"{SERVICES}/nope/start").status_code == 404


@pytest.mark.parametrize(
    ("toml", "words"),
    [
        (
            '[genvid.jobs.web.groups.web]\ncommand = "x"\ncount_init = 3\ncount_max = 2\n',
            "count_init",
        ),
        ('[genvid.jobs.web.groups.web]\ncommand = ""\n', "command"),
        ('[genvid.jobs."bad name".groups.web]\ncommand = "x"\n', "genvid.jobs"),
        ('[genvid.jobs.web.groups.web]\ncommand = "x"\ncolour = "red"\n', "colour"),
    ],
)
def test_a_bad_service_in_the_config_file_stops_the_start_up(
    tmp_path: Path, toml: str, words: str
) -> None:
    config = tmp_path / "corral.toml"
    config.write_text(toml)
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "serve", "--config", str(config), "--data-dir",
         str(tmp_path / "data")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert words in done.stderr
