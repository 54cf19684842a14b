"""The Genvid face's events (`/v1/events` and its results feed) against a real server and
database: the stored set and its soft errors, refusals that keep the previous set, the
feed's positions and resets (through the real server's core, and with a stepped clock for
its idle rule), access."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar

from core.config import Config, ServerConfig
from core.documents import Result, ResultsFeed
from core.service import Core
from tests.conftest import ServerThread, Sql
from tests.farm import AsRole, create_token

EVENTS_FILE = {
    "version": "1.0.0",
    "maps": [{"id": "clicks", "source": "userinput", "where": {"key": ["click"]}}],
    "reductions": [{"id": "count", "where": {"key": ["clicks"]}, "value": ["$count"]}],
}


def file(key: str, content: object) -> dict[str, str]:
    return {"key": key, "value": content if isinstance(content, str) else json.dumps(content)}


def refused(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status_code"] == status
    detail: str = body["detail"]
    return detail


def stored(sql: Sql) -> Any:
    text = sql.fetchval("SELECT body::text FROM documents WHERE name = 'genvid.events'")
    return None if text is None else json.loads(text)


class Served:
    """A server in this process, with its core at hand (the results feed's producer)."""

    def __init__(self, base: str, core: Core) -> None:
        self.client = httpx.Client(base_url=base)
        self.core = core


@pytest.fixture
def served(config: Config, database_url: str) -> Iterator[Served]:
    thread = ServerThread(config, database_url)
    with thread as base:
        app: Litestar = thread.app
        core: Core = app.state.core
        served = Served(base, core)
        yield served
        served.client.close()


# -- definitions ------------------------------------------------------------------------------


def test_at_first_there_are_no_definitions(api: httpx.Client, sql: Sql) -> None:
    answer = api.get("/v1/events")
    assert answer.status_code == 200
    assert answer.json() == {"errors": "", "mapreduce": []}
    assert stored(sql) is None


def test_a_post_replaces_the_whole_set_and_answers_the_stored_document(
    api: httpx.Client, sql: Sql
) -> None:
    first = {"mapreduce": [file("game", EVENTS_FILE), file("chat", EVENTS_FILE)]}
    answer = api.post("/v1/events", json=first)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"errors": "", **first}
    assert api.get("/v1/events").json() == {"errors": "", **first}
    # the value comes back as the very string sent
    assert api.get("/v1/events").json()["mapreduce"][0]["value"] == json.dumps(EVENTS_FILE)

    second = {"mapreduce": [file("other", EVENTS_FILE)]}
    assert api.post("/v1/events", json=second).json() == {"errors": "", **second}
    assert api.get("/v1/events").json() == {"errors": "", **second}
    assert stored(sql) == {"errors": "", **second}
    assert api.post("/v1/events", json={"mapreduce": []}).json() == {"errors": "", "mapreduce": []}


def test_a_sent_errors_force_and_unknown_fields_are_ignored(api: httpx.Client) -> None:
    body = {"errors": "mine", "later": True, "mapreduce": [{**file("game", EVENTS_FILE), "x": 1}]}
    answer = api.post("/v1/events?force=true", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"errors": "", "mapreduce": [file("game", EVENTS_FILE)]}


def test_a_file_lacking_maps_or_reductions_is_stored_with_its_problem_in_errors(
    api: httpx.Client,
) -> None:
    body = {
        "mapreduce": [
            file("good", EVENTS_FILE),
            file("empty", {}),
            file("half", {"maps": [], "reductions": "none"}),
        ]
    }
    answer = api.post("/v1/events", json=body)
    assert answer.status_code == 200, answer.text
    errors = (
        "empty: maps is missing\nempty: reductions is missing\nhalf: reductions is not an array"
    )
    assert answer.json() == {"errors": errors, **body}
    assert api.get("/v1/events").json() == {"errors": errors, **body}


def test_a_wrong_shape_or_a_value_that_is_not_an_object_is_400_and_the_set_stays(
    api: httpx.Client, sql: Sql
) -> None:
    kept = {"mapreduce": [file("game", EVENTS_FILE)]}
    api.post("/v1/events", json=kept)
    game = 'events file "game":'
    cases: list[tuple[object, str]] = [
        ({"mapreduce": [file("game", "[1, 2]")]}, f"{game} the value is not a JSON object"),
        ({"mapreduce": [file("game", "{broken")]}, f"{game} the value is not JSON"),
        ({"mapreduce": [file("game", "12")]}, f"{game} the value is not a JSON object"),
        ({"mapreduce": [file("ok", {}), file("bad", '"text"')]}, '"bad"'),
        ({"mapreduce": [{"key": "game", "value": {"maps": []}}]}, "$.mapreduce[0].value"),
        ({"mapreduce": [{"key": "game"}]}, "value"),
        ({"mapreduce": [{"value": "{}"}]}, "key"),
        ({"mapreduce": [file("", {})]}, "$.mapreduce[0].key"),
        ({"mapreduce": [file("a", {}), file("a", {})]}, 'the key "a" is given twice'),
        ({"mapreduce": {"game": "{}"}}, "$.mapreduce"),
        ({"mapreduce": ["{}"]}, "$.mapreduce[0]"),
        ({}, "mapreduce"),
        ([], "object"),
    ]  # fmt: skip
    for body, named in cases:
        assert named in refused(api.post("/v1/events", json=body), 400), body
    for raw in (b"", b"{nope", b"null"):
        refused(api.post("/v1/events", content=raw), 400)
    assert api.get("/v1/events").json() == {"errors": "", **kept}
    assert stored(sql) == {"errors": "", **kept}


# -- the results feed --------------------------------------------------------------------------


def test_with_no_producer_the_feed_stays_empty_at_counter_0(api: httpx.Client) -> None:
    for counter in ("0", "5", "000", "99999999999999999999999999999999"):
        answer = api.get(f"/v1/events/results/{counter}")
        assert answer.status_code == 200, counter
        assert answer.json() == {"counter": 0, "messages": []}


def test_a_counter_that_is_not_digits_is_404(api: httpx.Client) -> None:
    for counter in ("abc", "-1", "1.5", "+3", "%C2%B2", "1e3"):
        refused(api.get(f"/v1/events/results/{counter}"), 404)
    refused(api.get("/v1/events/results"), 404)
    refused(api.post("/v1/events/results/0", json={}), 405)


def test_messages_appended_through_the_core_are_read_after_the_counter(served: Served) -> None:
    served.core.event_results.append(Result(value="a"), Result(value="b", error="oops"))
    get = served.client.get
    assert get("/v1/events/results/0").json() == {
        "counter": 2,
        "messages": [{"error": "", "value": "a"}, {"error": "oops", "value": "b"}],
    }
    assert get("/v1/events/results/1").json() == {
        "counter": 2,
        "messages": [{"error": "oops", "value": "b"}],
    }
    # at the end: nothing new
    assert get("/v1/events/results/2").json() == {"counter": 2, "messages": []}
    served.core.event_results.append(Result(value="c"))
    assert get("/v1/events/results/2").json() == {
        "counter": 3,
        "messages": [{"error": "", "value": "c"}],
    }
    # past the end means a reset: every message from 0
    assert get("/v1/events/results/7").json()["messages"] == [
        {"error": "", "value": "a"},
        {"error": "oops", "value": "b"},
        {"error": "", "value": "c"},
    ]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_feed_is_emptied_after_5_s_without_a_request() -> None:
    clock = Clock()
    feed = ResultsFeed(clock)
    feed.append(Result(value="a"), Result(value="b"))
    clock.now += 4.9
    assert feed.read(0) == (2, [Result(value="a"), Result(value="b")])
    clock.now += 4.9
    # read 4.9 s ago: still there
    feed.append(Result(value="c"))
    assert feed.read(2) == (3, [Result(value="c")])
    clock.now += 5.1
    # nobody read for 5.1 s: emptied, counter 0; a reader's old counter is past the end
    assert feed.read(3) == (0, [])
    feed.append(Result(value="d"))
    assert feed.read(3) == (1, [Result(value="d")])


def test_messages_appended_while_nobody_reads_are_dropped_after_5_s() -> None:
    clock = Clock()
    feed = ResultsFeed(clock)
    clock.now += 6
    feed.append(Result(value="late"))
    clock.now += 1
    assert feed.read(0) == (1, [Result(value="late")])
    clock.now += 6
    feed.append(Result(value="later"))
    clock.now += 6
    assert feed.read(0) == (0, [])


def test_the_feed_keeps_its_newest_messages_and_their_positions() -> None:
    feed = ResultsFeed(Clock())
    feed.append(*[Result(value=str(n)) for n in range(ResultsFeed.LIMIT + 5)])
    end, messages = feed.read(0)
    assert end == ResultsFeed.LIMIT + 5
    assert len(messages) == ResultsFeed.LIMIT
    assert messages[0] == Result(value="5")
    assert feed.read(end - 1) == (end, [Result(value=str(end - 1))])


# -- access ----------------------------------------------------------------------------------


def test_reads_need_a_reader_and_writes_a_user_or_admin_token(
    tmp_path: Path, database_url: str
) -> None:
    roles = ("admin", "user", "worker")
    tokens = {role: create_token(database_url, role, role)[1] for role in roles}
    config = Config(server=ServerConfig(data_dir=str(tmp_path)))
    with ServerThread(config, database_url) as base:
        call = AsRole(base, tokens).status

        for path in ("/v1/events", "/v1/events/results/0"):
            assert [call("GET", path, r) for r in (None, "worker", "user", "admin")] == [
                401,
                403,
                200,
                200,
            ]
        body = {"mapreduce": []}
        assert [call("POST", "/v1/events", r, json=body) for r in (None, "worker")] == [401, 403]
        assert [call("POST", "/v1/events", r, json=body) for r in ("user", "admin")] == [200, 200]
