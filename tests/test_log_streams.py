"""stdout and stderr kept apart: a real `corral worker` sends each chunk with its stream,
the server stores both with their offsets (migration 0010), `core.logs.Logs` reads either
stream by byte range, and the Coalition log still shows both merged in arrival order.
Also the wire of the native protocol (chunks, old-style `output`, bounds) and the file of
logger levels the worker keeps for a service run (GENVID_LOGGERS_FILE)."""

import asyncio
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from api.native import workers as wire
from core.config import Config, DispatchConfig, LimitsConfig, ServerConfig
from core.db import Database
from core.errors import Invalid, NotFound
from core.logs import Logs, Stream, StreamRead
from core.runs import Assignment, RunStatus
from core.sql import Queries
from tests.conftest import Sql
from tests.farm import get, ok, submit
from tests.processes import Processes
from worker import protocol as p
from worker.agent import LOGGERS_VARIABLE, write_loggers

V2 = "/api/v2/workers"
LOGS = Queries("logs.sql")
PATIENCE = 60.0
# small enough to test the bound cheaply; the real worker's output below stays under it
MAX_CHUNK = 4096


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(
        server=ServerConfig(data_dir=str(tmp_path)),
        limits=LimitsConfig(max_log_chunk=MAX_CHUNK),
        dispatch=DispatchConfig(interval=0.2, pick_wait=2.0, legacy_pick_wait=0.5),
    )


def until(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + PATIENCE
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not {what} after {PATIENCE} s")
        time.sleep(0.05)


# -- reading through core.logs ------------------------------------------------------------


def _logs(url: str, read: Callable[[Logs], Any]) -> Any:
    async def go() -> Any:
        db = await Database.connect(url, min_size=1, max_size=1)
        try:
            return await read(Logs(db))
        finally:
            await db.close()

    return asyncio.run(go())


def read_stream(url: str, job: int, stream: Stream, start: int, limit: int) -> StreamRead:
    found: StreamRead = _logs(url, lambda logs: logs.read_stream(job, stream, start, limit))
    return found


def read_merged(url: str, job: int, start: int, limit: int) -> StreamRead:
    found: StreamRead = _logs(url, lambda logs: logs.read_merged(job, start, limit))
    return found


def stream_size(url: str, job: int, stream: Stream) -> int:
    size: int = _logs(url, lambda logs: logs.size(job, stream))
    return size


def check_ranges(url: str, job: int, stream: Stream, expected: bytes, sql: Sql) -> None:
    """Every read of `stream` answers the bytes written to it at that range: at the
    chunks' own edges, inside them, across them and past the end."""
    edges = [
        r["stream_offset"]
        for r in sql.fetch(
            "SELECT stream_offset FROM job_logs WHERE job_id = $1 AND stream = $2", job, stream
        )
    ]
    size = len(expected)
    starts = {0, 1, 5, size // 2, size - 1, size, size + 10, *edges, *(e + 1 for e in edges)}
    for start in sorted(s for s in starts if s >= 0):
        for limit in (0, 1, 7, 100, size, 10**12):
            read = read_stream(url, job, stream, start, limit)
            assert read.data == expected[start : start + limit], (stream, start, limit)
            assert read.start == min(start, size)
            assert read.size == size
    assert stream_size(url, job, stream) == size


def check_offsets(sql: Sql, job: int) -> None:
    """The chunks tile the merged log and each stream: no gap, no overlap."""
    rows = sql.fetch(
        "SELECT byte_offset, stream, stream_offset, length(data) AS n FROM job_logs"
        " WHERE job_id = $1 ORDER BY byte_offset",
        job,
    )
    merged = 0
    by_stream = {"stdout": 0, "stderr": 0}
    for r in rows:
        assert r["n"] > 0
        assert r["byte_offset"] == merged
        assert r["stream_offset"] == by_stream[r["stream"]]
        merged += r["n"]
        by_stream[r["stream"]] += r["n"]
    sizes = sql.fetchval("SELECT (log_size, stderr_size) FROM jobs WHERE id = $1", job)
    assert tuple(sizes) == (merged, by_stream["stderr"])


def log_of(api: httpx.Client, job: int) -> str:
    response = api.get(f"/api/jobs/{job}/log")
    assert response.status_code == 200, response.text
    text: str = response.json()
    return text


# -- a real worker ------------------------------------------------------------------------

# Writes both streams in a known order: each write waits until the test has seen it in
# the job's log (a file named after the step), so the order of arrival is the order of
# writing. A character is split across two writes of stdout with stderr between them.
# Then a burst on both streams with no waiting, whose interleaving is the pipes' to decide.
WRITER = r"""
import pathlib, sys, time
acks = pathlib.Path(sys.argv[1])
out, err = sys.stdout.buffer, sys.stderr.buffer

def write(step, stream, data):
    stream.write(data)
    stream.flush()
    for _ in range(6000):
        if (acks / str(step)).exists():
            return
        time.sleep(0.05)
    sys.exit(3)

write(0, out, b"out 1\n")
write(1, err, b"err 1: 40%\n")
write(2, out, b"half \xc3")
write(3, err, "err 2 \u2713\n".encode())
write(4, out, b"\xa9 done\n")
for i in range(40):
    out.write(b"burst out %d\n" % i)
    err.write(b"burst err %d\n" % i)
    if i % 7 == 0:
        out.flush()
        err.flush()
"""

# what the log shows after each step (the half character waits in the worker for its end)
STEPS = [
    "out 1\n",
    "out 1\nerr 1: 40%\n",
    "out 1\nerr 1: 40%\nhalf ",
    "out 1\nerr 1: 40%\nhalf err 2 ✓\n",
    "out 1\nerr 1: 40%\nhalf err 2 ✓\né done\n",
]
BURST_OUT = "".join(f"burst out {i}\n" for i in range(40))
BURST_ERR = "".join(f"burst err {i}\n" for i in range(40))
STDOUT = ("out 1\nhalf é done\n" + BURST_OUT).encode()
STDERR = ("err 1: 40%\nerr 2 ✓\n" + BURST_ERR).encode()


def test_a_real_worker_keeps_the_streams_apart_and_the_merged_log_in_arrival_order(
    api: httpx.Client, sql: Sql, database_url: str, processes: Processes, tmp_path: Path
) -> None:
    script, acks = tmp_path / "writer.py", tmp_path / "acks"
    script.write_text(WRITER)
    acks.mkdir()
    job = submit(
        api,
        title="two streams",
        command=f"{sys.executable} {script} {acks}",
        progress_pattern="%percent%",
    )
    processes.worker(str(api.base_url).rstrip("/"), "node-1")

    for step, shown in enumerate(STEPS):

        def logged(shown: str = shown) -> bool:
            return log_of(api, job) == shown

        until(f"at step {step}", logged)
        if step == 1:
            # progress is read from the merged log: stderr told it
            assert get(api, job)["progress"] == pytest.approx(0.4)
        (acks / str(step)).touch()
    until("finished", lambda: get(api, job)["state"] in ("FINISHED", "ERROR"))
    assert get(api, job)["state"] == "FINISHED"

    # each stream is exactly what was written to it, read at any range
    check_offsets(sql, job)
    check_ranges(database_url, job, "stdout", STDOUT, sql)
    check_ranges(database_url, job, "stderr", STDERR, sql)
    chunks = sql.fetch(
        "SELECT stream, count(*) AS n FROM job_logs WHERE job_id = $1 GROUP BY stream", job
    )
    assert {r["stream"]: r["n"] > 2 for r in chunks} == {"stdout": True, "stderr": True}

    # the merged log: the steps in their order, then the burst as some interleaving that
    # keeps each stream's own order
    merged = log_of(api, job)
    assert merged.startswith(STEPS[-1])
    burst = merged[len(STEPS[-1]) :].splitlines(keepends=True)
    assert "".join(line for line in burst if line.startswith("burst out")) == BURST_OUT
    assert "".join(line for line in burst if line.startswith("burst err")) == BURST_ERR
    assert len(merged.encode()) == len(STDOUT) + len(STDERR)
    # and the merged log read by range is the same bytes
    whole = merged.encode()
    for start in (0, 3, 17, len(whole) // 2, len(whole) - 1, len(whole)):
        for limit in (1, 50, 10**9):
            read = read_merged(database_url, job, start, limit)
            assert read.data == whole[start : start + limit]
            assert read.size == len(whole)


# -- the protocol, with a simulated worker ------------------------------------------------


def register(api: httpx.Client, name: str, slots: int = 1) -> None:
    response = api.post(f"{V2}/register", json={"name": name, "slots": slots})
    assert response.status_code == 200, response.text


def pick_runs(api: httpx.Client, name: str, count: int = 1) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    deadline = time.monotonic() + PATIENCE
    while len(runs) < count:
        assert time.monotonic() < deadline, f"{name} got {len(runs)} runs of {count}"
        response = api.post(
            f"{V2}/{name}/pick", json={"slots": count - len(runs), "wait": 1}, timeout=30
        )
        assert response.status_code == 200, response.text
        runs += response.json()["runs"]
    return runs


def beat(api: httpx.Client, name: str, *runs: dict[str, Any]) -> httpx.Response:
    return api.post(f"{V2}/{name}/heartbeat", json={"runs": list(runs)})


def out(data: str) -> dict[str, str]:
    return {"stream": "stdout", "data": data}


def err(data: str) -> dict[str, str]:
    return {"stream": "stderr", "data": data}


def test_chunks_and_old_style_output_land_in_their_streams(
    api: httpx.Client, sql: Sql, database_url: str
) -> None:
    register(api, "node-a")
    job = submit(api, title="t", command="render", progress_pattern="%percent%")
    (run,) = pick_runs(api, "node-a")
    event = run["event"]

    # chunks in arrival order; neighbours of one stream and empty ones are fine
    answer = beat(
        api,
        "node-a",
        {"event": event, "chunks": [out("a1\n"), err("e1\n"), err(""), out("a2 "), out("é\n")]},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["runs"] == [{"event": event, "action": "continue", "reason": ""}]
    # an old worker's output is stdout
    assert beat(api, "node-a", {"event": event, "output": "old\n"}).status_code == 200
    # both: the output comes first; progress split across the streams is read merged
    both = {"event": event, "output": "o3 2", "chunks": [err("5%\n")]}
    assert beat(api, "node-a", both).status_code == 200
    assert get(api, job)["progress"] == pytest.approx(0.25)
    # the end brings the rest
    response = api.post(
        f"{V2}/node-a/finish",
        json={"event": event, "exit_code": 0, "chunks": [err("bye\n"), out("end\n")]},
    )
    assert response.json()["result"] == "FINISHED", response.text

    assert log_of(api, job) == "a1\ne1\na2 é\nold\no3 25%\nbye\nend\n"
    stdout, stderr = "a1\na2 é\nold\no3 2end\n".encode(), b"e1\n5%\nbye\n"
    check_offsets(sql, job)
    check_ranges(database_url, job, "stdout", stdout, sql)
    check_ranges(database_url, job, "stderr", stderr, sql)
    # one row per run of one stream: "a2 " and "é\n" were joined
    streams = sql.fetch("SELECT stream FROM job_logs WHERE job_id = $1 ORDER BY byte_offset", job)
    assert [r["stream"] for r in streams] == [
        "stdout", "stderr", "stdout", "stdout", "stdout", "stderr", "stderr", "stdout",
    ]  # fmt: skip


def test_a_pick_reporting_ends_with_chunks_logs_them(api: httpx.Client, database_url: str) -> None:
    register(api, "node-a")
    job = submit(api, title="t", command="render")
    (run,) = pick_runs(api, "node-a")
    ended = {"event": run["event"], "exit_code": 0, "chunks": [err("warn\n"), out("done\n")]}
    response = api.post(f"{V2}/node-a/pick", json={"wait": 0, "finished": [ended]}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["results"] == [{"event": run["event"], "result": "FINISHED"}]
    assert log_of(api, job) == "warn\ndone\n"
    assert read_stream(database_url, job, "stderr", 0, 100).data == b"warn\n"
    assert read_stream(database_url, job, "stdout", 0, 100).data == b"done\n"


def snapshot(sql: Sql) -> dict[str, list[tuple[Any, ...]]]:
    """Every row, the logs and the log sizes included."""
    rows = sql.snapshot()
    rows["job_logs"] = [tuple(r) for r in sql.fetch("SELECT * FROM job_logs ORDER BY 1, 2")]
    return rows


def refused(response: httpx.Response, *words: str) -> None:
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    for word in words:
        assert word in detail, detail


def test_bad_chunks_are_a_400_that_changes_nothing(api: httpx.Client, sql: Sql) -> None:
    register(api, "node-a", slots=2)
    first, second = submit(api, title="a", command="r"), submit(api, title="b", command="r")
    runs = pick_runs(api, "node-a", 2)
    by_job = {r["job"]: r["event"] for r in runs}
    a, b = by_job[first], by_job[second]
    assert beat(api, "node-a", {"event": a, "chunks": [err("before\n")]}).status_code == 200
    before = snapshot(sql)

    # an unknown stream, an unknown field, a chunk without data
    refused(
        beat(api, "node-a", {"event": a, "chunks": [{"stream": "stdlog", "data": "x"}]}), "stream"
    )
    refused(beat(api, "node-a", {"event": a, "chunks": [{**out("x"), "fd": 1}]}), "fd")
    refused(beat(api, "node-a", {"event": a, "chunks": [{"stream": "stdout"}]}), "data")
    # over the bound: the streams count together, with old-style output
    half = MAX_CHUNK // 2
    over = [out("x" * half), err("y" * (half + 1))]
    refused(
        beat(api, "node-a", {"event": a, "chunks": over}),
        f"{MAX_CHUNK + 1} bytes",
        f"at most {MAX_CHUNK} bytes",
    )
    refused(
        beat(api, "node-a", {"event": a, "output": "x" * half, "chunks": over[1:]}),
        f"{MAX_CHUNK + 1} bytes",
    )
    # one run over the bound refuses the others of the request too
    refused(
        beat(api, "node-a", {"event": a, "chunks": [out("fine\n")]}, {"event": b, "chunks": over}),
        "bytes",
    )
    # too many chunks
    many = [out("x"), err("y")] * 2049
    refused(beat(api, "node-a", {"event": a, "chunks": many}), "chunks")
    # the same at the end of a run, with finish and with a pick
    refused(
        api.post(f"{V2}/node-a/finish", json={"event": a, "exit_code": 0, "chunks": over}),
        "bytes",
    )
    refused(
        api.post(
            f"{V2}/node-a/finish",
            json={"event": a, "exit_code": 0, "chunks": [{"stream": "stdin", "data": "x"}]},
        ),
        "stream",
    )
    ends = [
        {"event": a, "exit_code": 0, "chunks": [out("fine\n")]},
        {"event": b, "exit_code": 0, "chunks": over},
    ]
    refused(api.post(f"{V2}/node-a/pick", json={"wait": 0, "finished": ends}), "bytes")
    assert snapshot(sql) == before

    # at the bound exactly, it goes in
    exact = [out("x" * half), err("y" * half)]
    answer = beat(api, "node-a", {"event": a, "chunks": exact})
    assert answer.json()["runs"][0]["action"] == "continue", answer.text
    assert log_of(api, first) == "before\n" + "x" * half + "y" * half


def test_a_reset_empties_both_streams(api: httpx.Client, sql: Sql, database_url: str) -> None:
    register(api, "node-a")
    job = submit(api, title="t", command="r", retry=0)
    (run,) = pick_runs(api, "node-a")
    beat(api, "node-a", {"event": run["event"], "chunks": [out("one\n"), err("two\n")]})
    ok(api.post("/api/resetjobs", json=[job]))
    assert stream_size(database_url, job, "stderr") == 0
    assert stream_size(database_url, job, "stdout") == 0
    assert read_stream(database_url, job, "stderr", 0, 100) == StreamRead(0, b"", 0)
    # the next run's output starts both streams from 0 again
    (run,) = pick_runs(api, "node-a")
    beat(api, "node-a", {"event": run["event"], "chunks": [err("again\n"), out("new\n")]})
    check_offsets(sql, job)
    assert read_stream(database_url, job, "stderr", 0, 100).data == b"again\n"
    assert read_stream(database_url, job, "stdout", 0, 100).data == b"new\n"
    assert log_of(api, job) == "again\nnew\n"


def test_reads_of_unknown_jobs_streams_and_ranges_are_refused(
    api: httpx.Client, database_url: str
) -> None:
    job = submit(api, title="t", command="r")
    assert read_stream(database_url, job, "stdout", 0, 10) == StreamRead(0, b"", 0)
    with pytest.raises(NotFound):
        read_stream(database_url, job + 1, "stdout", 0, 10)
    with pytest.raises(NotFound):
        stream_size(database_url, job + 1, "stderr")
    with pytest.raises(NotFound):
        read_merged(database_url, job + 1, 0, 10)
    with pytest.raises(Invalid):
        read_stream(database_url, job, "stdlog", 0, 10)  # type: ignore[arg-type]
    with pytest.raises(Invalid):
        read_stream(database_url, job, "stdout", -1, 10)
    with pytest.raises(Invalid):
        read_stream(database_url, job, "stdout", 0, -1)
    # a start or limit past any size is the end
    assert read_stream(database_url, job, "stdout", 2**63 - 1, 2**63 - 1).start == 0


def _scans(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if plan.get("Relation Name") == "job_logs":
        yield plan
    for child in plan.get("Plans", []):
        yield from _scans(child)


def test_a_stream_read_scans_only_the_chunks_of_its_range(api: httpx.Client, sql: Sql) -> None:
    # 2,000 chunks of 10 bytes in each stream, and another job's beside them
    jobs = [submit(api, title=f"t{i}", command="r") for i in range(2)]
    for job in jobs:
        for _ in range(10):
            streams = ["stdout", "stderr"] * 200
            data = [f"{s[3:]}-{i:06d}\n".encode() for i, s in enumerate(streams)]
            sql.execute(LOGS["append_chunks"], job, streams, data, None, None)
    sql.execute("ANALYZE job_logs")
    job = jobs[0]
    # 100 bytes from inside a chunk of 11 bytes: 10 chunks overlap
    plan = sql.fetchval(
        "EXPLAIN (ANALYZE, FORMAT JSON) " + LOGS["read_stream"], job, "stderr", 10_005, 100
    )
    scans = list(_scans(json.loads(plan)[0]["Plan"]))
    assert scans
    for scan in scans:
        assert scan["Node Type"] in ("Index Scan", "Index Only Scan"), scan["Node Type"]
        assert scan["Index Name"] == "job_logs_stream"
    # the chunk holding the start is found once, then the 11 of the range are read
    assert sum(s["Actual Rows"] * s["Actual Loops"] for s in scans) <= 12
    merged = sql.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + LOGS["read_merged"], job, 20_005, 100)
    scans = list(_scans(json.loads(merged)[0]["Plan"]))
    assert all(s["Index Name"] == "job_logs_pkey" for s in scans)
    assert sum(s["Actual Rows"] * s["Actual Loops"] for s in scans) <= 12


# -- the loggers file ---------------------------------------------------------------------
#
# No part of the server gives an assignment loggers yet outside a service run, so the
# worker's side is tested on its own: the file writing, the wire both ways, and a real
# `corral worker` process against a scripted server that hands it runs with loggers.


def test_the_loggers_file_is_replaced_whole(tmp_path: Path) -> None:
    path = write_loggers(str(tmp_path), {"app": "info"})
    assert Path(path).parent == tmp_path
    assert json.loads(Path(path).read_text()) == {"app": "info"}
    first = os.stat(path).st_ino
    # a reader holding the old file keeps reading the old map
    with open(path) as held:
        write_loggers(str(tmp_path), {"app": "debug", "net": "warning"})
        assert json.loads(held.read()) == {"app": "info"}
    assert json.loads(Path(path).read_text()) == {"app": "debug", "net": "warning"}
    assert os.stat(path).st_ino != first
    assert sorted(os.listdir(tmp_path)) == ["loggers.json"]


def test_loggers_cross_the_wire_both_ways_and_stay_out_when_unset() -> None:
    def assignment(loggers: dict[str, str] | None = None) -> Assignment:
        return Assignment(7, 3, "t", "c", "", "", "u", "", 0, loggers=loggers)

    given = wire.Run.of(assignment(loggers={"app": "debug"}))
    assert msgspec.json.decode(msgspec.json.encode(given), type=p.Assignment).loggers == {
        "app": "debug"
    }
    plain = msgspec.json.encode(wire.Run.of(assignment()))
    assert b"loggers" not in plain
    assert msgspec.json.decode(plain, type=p.Assignment).loggers is None

    status = RunStatus(7, "continue", loggers={"app": "error"})
    answer = wire.RunAnswer(event=7, action="continue", loggers=status.loggers or msgspec.UNSET)
    assert msgspec.json.decode(msgspec.json.encode(answer), type=p.RunAnswer).loggers == {
        "app": "error"
    }
    bare = msgspec.json.encode(wire.RunAnswer(event=7, action="continue"))
    assert msgspec.json.decode(bare, type=p.RunAnswer).loggers is None

    # what the worker sends, the server reads (it refuses unknown fields)
    sent = p.Heartbeat(runs=[p.RunHeartbeat(event=7, chunks=[p.Chunk(stream="stderr", data="x")])])
    read = msgspec.json.decode(msgspec.json.encode(sent), type=wire.Heartbeat)
    assert read.runs[0].chunks == [wire.Chunk(stream="stderr", data="x")]
    ended = p.Finish(event=7, exit_code=0, chunks=[p.Chunk(stream="stdout", data="y")])
    assert msgspec.json.decode(msgspec.json.encode(ended), type=wire.Finish).chunks == [
        wire.Chunk(stream="stdout", data="y")
    ]
    pick = p.Pick(slots=1, finished=[p.Ended(event=7, exit_code=1)])
    assert msgspec.json.decode(msgspec.json.encode(pick), type=wire.Pick).finished[0].chunks == []


class Scripted:
    """A server speaking the native protocol from a script: it hands out the runs it is
    given, answers heartbeats with each run's current loggers (or stop), and keeps what
    the worker sent."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queued: list[dict[str, Any]] = []
        self.loggers: dict[int, dict[str, str]] = {}
        self.stop: set[int] = set()
        self.chunks: dict[int, list[tuple[str, str]]] = {}
        self.ends: dict[int, int] = {}
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                answer = scripted.answer(self.path.rsplit("/", 1)[-1], body)
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()

    def _ended(self, ended: dict[str, Any]) -> None:
        self._keep(ended["event"], ended.get("chunks", []))
        self.ends[ended["event"]] = ended["exit_code"]

    def _keep(self, event: int, chunks: list[dict[str, str]]) -> None:
        self.chunks.setdefault(event, []).extend((c["stream"], c["data"]) for c in chunks)

    def answer(self, verb: str, body: dict[str, Any]) -> dict[str, Any]:
        if verb == "register":
            return {
                "protocol": 1,
                "name": body["name"],
                "heartbeat_interval": 0.2,
                "pick_wait": 0.5,
                "worker_timeout": 60.0,
            }
        if verb == "pick":
            with self.lock:
                for ended in body.get("finished", []):
                    self._ended(ended)
                runs, self.queued = self.queued[: body["slots"]], self.queued[body["slots"] :]
            if not runs:
                time.sleep(0.2)
            return {"protocol": 1, "runs": runs, "results": []}
        if verb == "heartbeat":
            answers = []
            with self.lock:
                for run in body["runs"]:
                    event = run["event"]
                    self._keep(event, run.get("chunks", []))
                    answer: dict[str, Any] = {"event": event, "action": "continue"}
                    if event in self.stop:
                        answer = {"event": event, "action": "stop", "reason": "scripted"}
                    elif event in self.loggers:
                        answer["loggers"] = self.loggers[event]
                    answers.append(answer)
            return {"protocol": 1, "runs": answers}
        assert verb == "finish", verb
        with self.lock:
            self._ended(body)
        return {"protocol": 1, "result": "FINISHED"}

    def give(self, event: int, command: str, loggers: dict[str, str] | None = None) -> None:
        run: dict[str, Any] = {
            "event": event,
            "job": event,
            "title": f"run {event}",
            "command": command,
            "dir": "",
            "environment": "",
            "user": "",
            "progress_pattern": "",
            "timeout": 0,
        }
        if loggers is not None:
            run["loggers"] = loggers
            self.loggers[event] = loggers
        with self.lock:
            self.queued.append(run)

    def text(self, event: int, stream: str) -> str:
        with self.lock:
            return "".join(d for s, d in self.chunks.get(event, []) if s == stream)

    def ended(self, event: int) -> bool:
        with self.lock:
            return event in self.ends


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    server = Scripted()
    yield server
    server.close()


# Prints the loggers file each time it changes (stdout), its path (stderr), and exits
# once it has seen `levels` different versions.
WATCHER = r"""
import os, sys, time
path = os.environ.get("GENVID_LOGGERS_FILE")
if path is None:
    print("no loggers file")
    sys.exit(0)
print(path, file=sys.stderr, flush=True)
seen = []
for _ in range(6000):
    text = open(path).read()
    if not seen or text != seen[-1]:
        seen.append(text)
        print(text, flush=True)
    if len(seen) == int(sys.argv[1]):
        sys.exit(0)
    time.sleep(0.05)
sys.exit(3)
"""


def test_a_service_run_gets_its_loggers_file_kept_current_then_removed(
    scripted: Scripted, processes: Processes, tmp_path: Path
) -> None:
    script = tmp_path / "watch.py"
    script.write_text(WATCHER)
    scripted.give(1, f"{sys.executable} {script} 2", loggers={"app": "info"})
    scripted.give(2, f"{sys.executable} {script} 1")
    processes.worker(scripted.url, "node-x")
    # the first version is in the file at the start
    until("the file read", lambda: scripted.text(1, "stdout") == '{"app":"info"}\n')
    # the server tells new levels: the file is rewritten, and the task sees them
    with scripted.lock:
        scripted.loggers[1] = {"app": "debug", "net": "warning"}
    until("both ended", lambda: scripted.ended(1) and scripted.ended(2))
    assert scripted.ends == {1: 0, 2: 0}
    assert scripted.text(1, "stdout") == '{"app":"info"}\n{"app":"debug","net":"warning"}\n'
    path = Path(scripted.text(1, "stderr").strip())
    assert path.name == "loggers.json"
    until("its directory removed", lambda: not path.parent.exists())
    # a run without loggers has no such file
    assert scripted.text(2, "stdout") == "no loggers file\n"
    assert LOGGERS_VARIABLE == "GENVID_LOGGERS_FILE"


# Ignores SIGTERM, says so on stderr with its pid, and would run for ten minutes.
STUBBORN = r"""
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print(os.getpid(), file=sys.stderr, flush=True)
for _ in range(6000):
    print("alive", flush=True)
    time.sleep(0.1)
"""


def _gone(pid: int) -> bool:
    """Dead: no such process, or a zombie waiting for whoever inherited it to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


@pytest.mark.parametrize(
    ("prefix", "exit_code"),
    [
        # the leader itself ignores SIGTERM: SIGKILL after the grace
        ("exec ", -9),
        # the shell goes at SIGTERM, its child ignoring it still holds the pipes
        ("", -15),
    ],
)
def test_a_stopped_run_loses_its_whole_process_group(
    scripted: Scripted, processes: Processes, tmp_path: Path, prefix: str, exit_code: int
) -> None:
    script = tmp_path / "stubborn.py"
    script.write_text(STUBBORN)
    scripted.give(1, f"{prefix}{sys.executable} {script}; echo unreachable")
    processes.worker(scripted.url, "node-x")
    until("running", lambda: "alive" in scripted.text(1, "stdout"))
    pid = int(scripted.text(1, "stderr").split()[0])
    with scripted.lock:
        scripted.stop.add(1)
    until("ended", lambda: scripted.ended(1))
    assert scripted.ends[1] == exit_code
    until("the stubborn process dead", lambda: _gone(pid))
    assert "unreachable" not in scripted.text(1, "stdout")
