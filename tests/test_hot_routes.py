"""The worker protocol's hot routes (api/hot.py) answer as the Litestar routes they stand
in front of: the same conversation with a server that serves them hot and one that serves
the Litestar app alone, on one database, gets the same answers, refusals included."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.config import Config, LimitsConfig, ServerConfig
from tests.conftest import ServerThread
from tests.farm import create_token, submit

V2 = "/api/v2/workers"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(
        server=ServerConfig(data_dir=str(tmp_path)), limits=LimitsConfig(max_body_bytes=64_000)
    )


@pytest.fixture
def both(config: Config, database_url: str) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    with (
        ServerThread(config, database_url) as hot_url,
        ServerThread(config, database_url, hot=False) as plain_url,
        httpx.Client(base_url=hot_url, timeout=30) as hot,
        httpx.Client(base_url=plain_url, timeout=30) as plain,
    ):
        yield hot, plain


def answer(response: httpx.Response) -> tuple[int, str, Any]:
    return response.status_code, response.headers["content-type"], response.json()


def conversation(api: httpx.Client, worker: str) -> list[tuple[int, str, Any]]:
    """A worker's life on the protocol, with a mistake at each step; ids made relative to
    the job and run the server handed out, so two servers' answers compare."""
    said: list[tuple[int, str, Any]] = []

    def post(path: str, **kwargs: Any) -> Any:
        said.append(answer(api.post(f"{V2}/{worker}/{path}", **kwargs)))
        return said[-1][2]

    post("heartbeat", json={})
    post("pick", json={"slots": 1, "wait": 0})
    api.post(f"{V2}/register", json={"name": worker, "slots": 1}).raise_for_status()
    post("heartbeat", json={"cpu": "busy"})
    post("heartbeat", json={"cpu": [50, 12], "free_memory": "900", "extra": 1})
    post("heartbeat", content=b"{not json")
    post("heartbeat", content=b"")
    # "1" stands for 1, as on every native route
    post("heartbeat", json={"cpu": ["50", 12.5], "free_memory": "900"})
    job = submit(api, title=f"for {worker}", command="true")
    picked = post("pick", json={"slots": "1", "wait": 5})
    [run] = picked["runs"]
    assert run["job"] == job
    event = run["event"]
    post("heartbeat", json={"runs": [{"event": event, "output": "frame 1\n"}]})
    post("heartbeat", json={"runs": [{"event": event + 1000}]})
    post("finish", json={"event": event, "exit_code": "x"})
    post("finish", json={"event": event, "exit_code": 0})
    post("finish", json={"event": event, "exit_code": 0})
    post("pick", json={"slots": 1, "wait": 0, "finished": [{"event": event, "exit_code": 0}]})
    # the body limit is the app's, whichever route reads the body
    post("heartbeat", json={"runs": [{"event": event, "output": "x" * 70_000}]})
    return [_relative(said_, job, event) for said_ in said]


def _relative(said: tuple[int, str, Any], job: int, event: int) -> tuple[int, str, Any]:
    status, media_type, body = said
    if isinstance(body, dict):
        for run in body.get("runs", []):
            if "job" in run:
                run["job"] -= job
            run["event"] = run["event"] - event
        for result in body.get("results", []):
            result["event"] -= event
    return status, media_type, body


def test_a_worker_protocol_conversation_gets_the_same_answers_hot_and_through_litestar(
    both: tuple[httpx.Client, httpx.Client],
) -> None:
    hot, plain = both
    hot_said = conversation(hot, "hot-node")
    plain_said = conversation(plain, "plain-node")
    assert hot_said == [
        (s, t, b.replace("plain-node", "hot-node") if isinstance(b, str) else _renamed(b))
        for s, t, b in plain_said
    ]
    statuses = [s for s, _, _ in hot_said]
    assert statuses == [404, 404, 400, 400, 400, 400, 200, 200, 200, 200, 400, 200, 200, 200, 413]
    assert hot_said[0][2]["detail"] == "worker 'hot-node' is not registered"
    assert hot_said[2][2]["detail"] == "Expected `array | null`, got `str` - at `$.cpu`"
    assert hot_said[9][2]["runs"] == [{"event": 1000, "action": "stop", "reason": "unknown run"}]
    assert [r["result"] for r in (hot_said[11][2], hot_said[12][2])] == ["FINISHED", "IGNORED"]


def _renamed(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: _renamed(v) for k, v in body.items()}
    if isinstance(body, list):
        return [_renamed(v) for v in body]
    return body.replace("plain-node", "hot-node") if isinstance(body, str) else body


def test_a_chunked_body_is_read_whole(both: tuple[httpx.Client, httpx.Client]) -> None:
    hot, _ = both
    hot.post(f"{V2}/register", json={"name": "chunked", "slots": 1}).raise_for_status()
    parts = [b'{"cpu": [1', b", 2]", b', "free_memory": 5}']
    beat = hot.post(f"{V2}/chunked/heartbeat", content=iter(parts))
    assert beat.request.headers["transfer-encoding"] == "chunked"
    assert answer(beat) == (200, "application/json", {"protocol": 1, "runs": []})
    workers = {w["name"]: w for w in hot.get("/api/workers").json()}
    assert workers["chunked"]["free_memory"] == 5


def test_tokens_are_checked_as_the_app_checks_them(config: Config, database_url: str) -> None:
    _, node = create_token(database_url, "node-a", "worker")
    _, user = create_token(database_url, "ana", "user")
    _, admin = create_token(database_url, "root", "admin")
    with ServerThread(config, database_url) as url, httpx.Client(base_url=url) as api:

        def beat(worker: str, secret: str | None) -> tuple[int, str, Any]:
            headers = {} if secret is None else {"Authorization": f"Bearer {secret}"}
            return answer(api.post(f"{V2}/{worker}/heartbeat", json={}, headers=headers))

        api.post(
            f"{V2}/register", json={"name": "node-a"}, headers={"Authorization": f"Bearer {node}"}
        ).raise_for_status()
        assert beat("node-a", node) == (200, "application/json", {"protocol": 1, "runs": []})
        assert beat("node-a", admin)[0] == 200
        refused = {
            "no token": beat("node-a", None),
            "unknown token": beat("node-a", "not-a-token"),
            "user token": beat("node-a", user),
            "another worker": beat("node-b", node),
        }
    details = {k: (s, b["detail"].split(":")[0]) for k, (s, _, b) in refused.items()}
    assert details == {
        "no token": (401, "this server needs an API token"),
        "unknown token": (401, "the token is unknown or revoked"),
        "user token": (403, "a user token may not speak the worker protocol"),
        "another worker": (403, "this worker token belongs to 'node-a', not 'node-b'"),
    }


def legacy_conversation(api: httpx.Client, host: str) -> list[tuple[int, str, str, str]]:
    """A legacy Coalition worker's requests, form bodies and query strings, mistakes
    included; the job's id and the host's name written J and H, so that answers compare."""
    said: list[tuple[int, str, str, str]] = []
    job = 0

    def post(path: str, **kwargs: Any) -> None:
        response = api.post(f"/workers/{path}", **kwargs)
        text = response.text.replace(f"({job}, ", "(J, ")
        error = response.headers.get("x-corral-error", "")
        said.append((response.status_code, response.headers["content-type"], text, error))

    post("pickjob", data={})
    post("pickjob", data={"hostname": host, "free_memory": "lots"})
    post("pickjob", data={"hostname": host, "load": "[12.5, 3]"})
    job = submit(api, title=f"for {host}", command="echo 'hi'", environment="A=x\nB=y")
    post("pickjob", params={"hostname": host})
    post("heartbeat", data={"hostname": host, "jobId": str(job), "log": "aGkK"})
    post("heartbeat", data={"hostname": host, "jobId": str(job), "log": "a"})
    post("heartbeat", data={"hostname": host})
    # multipart is Litestar's to read
    post("heartbeat", files={"x": ("x", b"")}, data={"hostname": host, "jobId": str(job)})
    post("endjob", data={"hostname": host, "jobId": str(job), "errorCode": "zero"})
    post("endjob", data={"hostname": host, "jobId": str(job), "errorCode": "0"})
    post("endjob", data={"hostname": host, "jobId": str(job), "errorCode": "0"})
    post("heartbeat", data={"hostname": host, "jobId": str(job)})
    return [(s, t, text.replace(host, "H"), e) for s, t, text, e in said]


def test_a_legacy_worker_conversation_gets_the_same_answers_hot_and_through_litestar(
    both: tuple[httpx.Client, httpx.Client],
) -> None:
    hot, plain = both
    hot_said = legacy_conversation(hot, "hot-host")
    assert hot_said == legacy_conversation(plain, "plain-host")
    text = "text/plain; charset=utf-8"
    assert [(s, t) for s, t, _, _ in hot_said] == [(400, text)] * 2 + [(200, text)] * 3 + [
        (400, text)
    ] * 2 + [(200, text), (400, text)] + [(200, text)] * 3
    assert [answer for _, _, answer, _ in hot_said] == [
        "hostname is required, and numbers must be numbers",
        "hostname is required, and numbers must be numbers",
        "(-1, '', '', '', None)",
        "(J, \"echo 'hi'\", '', '', 'A=x\\\\nB=y')",
        "true",
        "log is not base64",
        "hostname and jobId are required",
        "true",
        "hostname, jobId and errorCode are required",
        "1",
        "1",
        "false",
    ]
