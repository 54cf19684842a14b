"""The change feed (`GET /api/v2/changes`, Server-Sent Events) on its own: fed by the
database's NOTIFY, so a change made through one server process reaches the subscribers of
another on the same database; coalesced, so a burst of changes is a handful of messages."""

import asyncio
import json
import threading
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from core.changes import CHANNEL, INTERVAL
from tests.conftest import Sql
from tests.farm import create_token, submit
from tests.processes import Processes, Served


class Feed:
    """A subscriber of a server's change feed, reading in a thread: every message's
    tables, and the fields of the stream (`retry`)."""

    def __init__(self, base: str, headers: dict[str, str] | None = None) -> None:
        self.messages: list[tuple[float, list[str]]] = []
        self.fields: list[str] = []
        self.status = 0
        self._stop = threading.Event()
        self._opened = threading.Event()
        self._client = httpx.Client(base_url=base, timeout=httpx.Timeout(5, read=None))
        self._thread = threading.Thread(target=self._read, args=(headers or {},), daemon=True)
        self._thread.start()
        assert self._opened.wait(30), "the change feed did not answer"

    def _read(self, headers: dict[str, str]) -> None:
        try:
            self._messages(headers)
        except (httpx.HTTPError, RuntimeError):
            # the stream cut by close() or by the server's exit: what came is kept
            self._opened.set()

    def _messages(self, headers: dict[str, str]) -> None:
        with self._client.stream("GET", "/api/v2/changes", headers=headers) as response:
            self.status = response.status_code
            self.content_type = response.headers.get("content-type", "")
            self._opened.set()
            if response.status_code != 200:
                response.read()
                return
            for line in response.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith("data: "):
                    self.messages.append((time.monotonic(), json.loads(line[6:])["tables"]))
                elif line:
                    self.fields.append(line)

    def wait(self, count: int, timeout: float = 30) -> list[tuple[float, list[str]]]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            assert time.monotonic() < deadline, f"{len(self.messages)} messages, not {count}"
            time.sleep(0.05)
        return self.messages

    def quiet(self, seconds: float = 1.5) -> int:
        """Wait until no message came for `seconds`; how many came."""
        seen = -1
        while seen != len(self.messages):
            seen = len(self.messages)
            time.sleep(seconds)
        return seen

    def close(self) -> None:
        self._stop.set()
        self._client.close()


def two_servers(processes: Processes, database_url: str, tmp_path: Path) -> list[Served]:
    data = tmp_path / "data"
    servers = [
        processes.serve(["--database-url", database_url, "--data-dir", str(data)]) for _ in range(2)
    ]
    for server in servers:
        server.wait_ready()
    return servers


def test_a_change_through_one_process_reaches_a_subscriber_of_another(
    processes: Processes, database_url: str, tmp_path: Path
) -> None:
    first, second = two_servers(processes, database_url, tmp_path)
    feed = Feed(second.url)
    try:
        assert feed.status == 200
        assert feed.content_type.startswith("text/event-stream")
        # first the reconnection delay, then "read everything": a page that was away
        # (a server restart) learns it may have missed changes
        (_, tables), *_ = feed.wait(1)
        assert tables == ["jobs", "workers"]
        assert feed.fields[0] == "retry: 1000"
        feed.quiet()
        before = len(feed.messages)
        with httpx.Client(base_url=first.url) as api:
            submit(api, title="made through the first process")
        _, tables = feed.wait(before + 1)[before]
        assert tables == ["jobs"]
        before = feed.quiet()
        with httpx.Client(base_url=first.url) as api:
            response = api.post(
                "/api/v2/workers/register", json={"name": "node-feed", "affinity": "", "slots": 1}
            )
            assert response.status_code == 200, response.text
        assert "workers" in feed.wait(before + 1)[before][1]
    finally:
        feed.close()


def burst(url: str, ids: list[int]) -> None:
    """One change per transaction: as many NOTIFYs as changes."""

    async def go() -> None:
        conn = await asyncpg.connect(url)
        try:
            for job_id in ids:
                await conn.execute("UPDATE jobs SET priority = priority + 1 WHERE id = $1", job_id)
        finally:
            await conn.close()

    asyncio.run(go())


def test_a_burst_of_changes_arrives_as_a_handful_of_messages(
    processes: Processes, database_url: str, tmp_path: Path
) -> None:
    first, second = two_servers(processes, database_url, tmp_path)
    with httpx.Client(base_url=first.url) as api:
        response = api.post(
            "/api/v2/jobs/bulk",
            json={"jobs": [{"title": f"job {i}"} for i in range(2000)]},
        )
        assert response.status_code == 200, response.text
        ids = response.json()["ids"]
    feeds = [Feed(first.url), Feed(second.url)]
    try:
        for feed in feeds:
            feed.wait(1)
            feed.quiet()
        before = [len(feed.messages) for feed in feeds]
        started = time.monotonic()
        burst(database_url, ids)
        elapsed = time.monotonic() - started
        for feed, had in zip(feeds, before, strict=True):
            feed.quiet()
            arrived = feed.messages[had:]
            assert arrived, "the burst was not told"
            assert all(tables == ["jobs"] for _, tables in arrived)
            # one message per INTERVAL at most while the burst lasts, and the one that
            # tells its end: never one per change
            assert len(arrived) <= elapsed / INTERVAL + 2, (len(arrived), elapsed)
            assert len(arrived) < len(ids) / 20
    finally:
        for feed in feeds:
            feed.close()


@pytest.fixture
def secured(processes: Processes, database_url: str, tmp_path: Path) -> tuple[Served, str]:
    secret = create_token(database_url, "wrangler", "user")[1]
    server = processes.serve(["--database-url", database_url, "--data-dir", str(tmp_path / "d")])
    return server, secret


def test_the_feed_needs_a_token_once_tokens_exist(secured: tuple[Served, str]) -> None:
    server, secret = secured
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{server.url}/api/v2/me").status_code == 401:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.1)
    refused = Feed(server.url)
    assert refused.status == 401
    refused.close()
    feed = Feed(server.url, {"Authorization": f"Bearer {secret}"})
    try:
        assert feed.status == 200
        assert feed.wait(1)[0][1] == ["jobs", "workers"]
    finally:
        feed.close()


def listeners(sql: Sql) -> int:
    """The connections of this database that listen for changes."""
    count: int = sql.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = $1",
        f'LISTEN "{CHANNEL}"',
    )
    return count


def test_a_server_listens_for_changes_only_while_a_page_is_open(
    processes: Processes, database_url: str, tmp_path: Path, sql: Sql
) -> None:
    server = processes.serve(["--database-url", database_url, "--data-dir", str(tmp_path / "d")])
    server.wait_ready()
    with httpx.Client(base_url=server.url) as api:
        submit(api, title="no page is open")
    # the dispatch's own listener is on another channel
    assert listeners(sql) == 0
    feed = Feed(server.url)
    try:
        deadline = time.monotonic() + 30
        while listeners(sql) != 1:
            assert time.monotonic() < deadline, "no listener while a page is open"
            time.sleep(0.05)
        # the page learns of a change made once it listens, and of none it missed before
        feed.quiet()
        before = len(feed.messages)
        with httpx.Client(base_url=server.url) as api:
            submit(api, title="a page is open")
        assert feed.wait(before + 1)[before][1] == ["jobs"]
        assert feed.messages[0][1] == ["jobs", "workers"]
    finally:
        feed.close()
