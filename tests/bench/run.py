"""`make bench`: start a server on its own embedded PostgreSQL, run the workloads, and
write docs/benchmarks.md with the figures and the machine they came from.

    python -m tests.bench.run [--quick] [--only w6|legacy]

Workloads measured:
- W1 throughput: jobs completed per second (pick + finish) by N simulated workers, and
  the CPU each job costs the server, PostgreSQL and the client (tests.bench.cpu);
- W2 depth: one worker's pick latency with a deep queue (10% of it waiting on
  dependencies), and the server's memory after each depth;
- W3 heartbeats: thousands of idle workers heartbeating every 5 s (tests.bench.heartbeats);
- W4 submit: jobs accepted per second, one PUT /api/jobs each (with its CPU per job) and
  through the bulk path;
- W5 replicas: W1 against one server process and against two on the same PostgreSQL;
- W6 listing: how fast the job listings answer on big farms (tests.bench.listing);
- legacy: simulated Coalition workers on the legacy protocol (tests.bench.legacy), jobs/s
  and the CPU per job;
- the physical limit beside them: pgbench performing the minimal SQL of a job's life
  (claim one queued row with SKIP LOCKED, complete it) on the same PostgreSQL.

Beside the report: PNG plots (tests.bench.plots, the `bench` optional dependencies), and
the hand-kept profile findings of docs/bench-profile.md copied into it.
"""

import argparse
import asyncio
import contextlib
import os
import platform
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import msgspec
import pgserver

from core.embedded import EmbeddedPostgres
from tests.bench import cpu, listing
from tests.bench.heartbeats import Result as Heartbeats
from tests.bench.loadgen import Http, worker
from tests.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "docs" / "benchmarks.md"
PROFILE = ROOT / "docs" / "bench-profile.md"
PLOTS = {"w1": "bench-w1.png", "w2": "bench-w2.png", "w3": "bench-w3.png"}
# W2's groups: 100 frames, the last DEPENDENT each waiting for FAN_IN earlier ones
GROUP = 100
DEPENDENT = 10
FAN_IN = 9
PGBENCH_SCRIPT = """\
UPDATE bench_jobs SET state = 'WORKING'
 WHERE id = (SELECT id FROM bench_jobs WHERE state = 'WAITING'
              ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id \\gset
UPDATE bench_jobs SET state = 'FINISHED' WHERE id = :id;
"""


@dataclass
class Costed:
    """A workload's rate and what each job cost in CPU (ms), from /proc over its window:
    the server process (its replicas included), PostgreSQL's processes, the client."""

    workers: int
    rate: float
    server_ms: float
    postgres_ms: float
    client_ms: float

    @property
    def total_ms(self) -> float:
        """The scheduler's share: the server's and PostgreSQL's."""
        return self.server_ms + self.postgres_ms


@dataclass
class Depth:
    queued: int
    p50: float
    p99: float
    # the server process's resident memory after the picks, and its peak so far (MB)
    rss: float
    peak: float


@dataclass
class Figures:
    machine: dict[str, str]
    idle: tuple[float, float]
    depth: list[Depth]
    throughput: list[Costed]
    # the legacy Coalition worker protocol, at 16 and 200 workers
    legacy: list[Costed]
    pgbench: list[tuple[int, float]]
    put: Costed
    bulk_rate: float
    # (servers, workers, jobs/s)
    replicas: list[tuple[int, int, float]]
    heartbeats: Heartbeats
    listed: listing.Listings
    # the server's memory once every workload has run (MB): (rss, peak)
    final_memory: tuple[float, float]
    seconds: float = 0.0
    plots: dict[str, Path] = field(default_factory=dict)


class Server:
    def __init__(self, database_url: str, data: Path, log: str = "serve.log") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--port", str(self.port),
             "--database-url", database_url],
            stdout=(data / log).open("wb"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while True:
            try:
                # a small answer whatever the queue holds
                status = httpx.get(f"{self.url}/api/affinities").status_code
            except httpx.TransportError:
                status = 0
            if status == 200:
                return
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"the server did not start (last answer: {status or 'none'})")
            time.sleep(0.2)

    def memory(self) -> tuple[float, float]:
        """Resident memory now and at its peak (MB), from /proc; zeros where there is none."""
        status = Path(f"/proc/{self.process.pid}/status")
        if not status.exists():
            return 0.0, 0.0
        fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)

        def mb(name: str) -> float:
            return int(fields.get(name, "0 kB").split()[0]) / 1024

        return mb("VmRSS"), mb("VmHWM")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def queue(url: str, jobs: int) -> float:
    """Queue zero-length jobs through the bulk path; jobs accepted per second."""
    batch = 5000
    with httpx.Client(base_url=url, timeout=300) as client:
        start = time.perf_counter()
        for first in range(0, jobs, batch):
            specs = [
                {"title": f"j{i}", "command": "true"}
                for i in range(first, min(first + batch, jobs))
            ]
            response = client.post("/api/v2/jobs/bulk", json={"parent": 0, "jobs": specs})
            response.raise_for_status()
        return jobs / (time.perf_counter() - start)


async def put_rate(url: str, jobs: int, connections: int = 10) -> float:
    """Jobs accepted per second, one PUT /api/jobs each, over a few keep-alive connections."""
    port = int(url.rsplit(":", 1)[1])
    body = msgspec.json.encode({"title": "put", "command": "true"})

    async def one_connection(count: int) -> None:
        http = await Http.open("127.0.0.1", port)
        try:
            for _ in range(count):
                await http.put("/api/jobs", body)
        finally:
            http.close()

    start = time.perf_counter()
    await asyncio.gather(*(one_connection(jobs // connections) for _ in range(connections)))
    return jobs // connections * connections / (time.perf_counter() - start)


def fill(url: str, database_url: str, depth: int) -> None:
    """Queue groups of 100 frames until `depth` jobs are queued (waiting or pending):
    priorities spread over ten values, half the groups needing the affinity LINUX, and in
    each group the last 10 frames waiting for 9 earlier frames each (10% of the queue)."""
    queued = httpx.get(
        f"{url}/api/jobs/count/where/",
        params={"where_clause": "state IN ('WAITING', 'PENDING')"},
        timeout=300,
    ).json()
    groups = max(0, -(-(depth - queued) // GROUP))
    asyncio.run(_fill(url, database_url, groups))


async def _fill(url: str, database_url: str, groups: int, connections: int = 4) -> None:
    # a few groups at once: the server's Python and PostgreSQL's triggers take turns on the
    # two cores, and one connection leaves one of them idle
    port = int(url.rsplit(":", 1)[1])
    numbers = iter(range(groups))
    done = asyncio.Event()

    async def submit() -> None:
        http = await Http.open("127.0.0.1", port)
        try:
            for group in numbers:
                await _group(http, group)
        finally:
            http.close()

    async def keep_statistics() -> None:
        # What autovacuum does on its own schedule, but at the pace of the fill: planned
        # against statistics from before the load, the dependency triggers fall back to
        # scanning the whole dependencies table and each group costs more than the last.
        conn = await asyncpg.connect(database_url)
        try:
            while not done.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), 5)
                await conn.execute("ANALYZE jobs")
                await conn.execute("ANALYZE dependencies")
        finally:
            await conn.close()

    statistics = asyncio.create_task(keep_statistics())
    try:
        await asyncio.gather(*(submit() for _ in range(connections)))
    finally:
        done.set()
        await statistics


async def _group(http: Http, group: int) -> None:
    spec = {"title": f"group {group}", "priority": group % 10 * 100,
            "affinity": "LINUX" if group % 2 else ""}  # fmt: skip
    parent = int(await http.put("/api/jobs", msgspec.json.encode(spec)))
    free = GROUP - DEPENDENT
    frames = [{"title": f"f{i}", "command": "true", "priority": i % 7} for i in range(free)]
    body = msgspec.json.encode({"parent": parent, "jobs": frames})
    ids: list[int] = msgspec.json.decode(await http.post("/api/v2/jobs/bulk", body))["ids"]
    # the bulk path takes dependencies on jobs already on the server: a second request
    waiting = [
        {"title": f"f{free + k}", "command": "true", "priority": (free + k) % 7,
         "dependencies": ids[k * FAN_IN:(k + 1) * FAN_IN]}
        for k in range(DEPENDENT)
    ]  # fmt: skip
    await http.post("/api/v2/jobs/bulk", msgspec.json.encode({"parent": parent, "jobs": waiting}))


_IDLE_WARMUP = 10


async def idle_latency(url: str, samples: int) -> tuple[float, float]:
    """p50 and p90 (ms) from submitting a job to an idle farm to a waiting pick holding it."""
    port = int(url.rsplit(":", 1)[1])
    worker, submitter = await Http.open("127.0.0.1", port), await Http.open("127.0.0.1", port)
    try:
        await worker.post("/api/v2/workers/register", b'{"name": "idle-probe", "slots": 1}')
        job = msgspec.json.encode({"title": "probe", "command": "true"})
        waits: list[float] = []
        # the first rounds meet a server just started (its pool still opening connections,
        # each one's first statements prepared): an idle farm is one that has run a while
        for _ in range(_IDLE_WARMUP + samples):
            pick = asyncio.create_task(
                worker.post("/api/v2/workers/idle-probe/pick", b'{"slots": 1, "wait": 10}')
            )
            await asyncio.sleep(0.05)  # the pick waits: the farm is idle
            start = time.perf_counter()
            await submitter.put("/api/jobs", job)
            runs = msgspec.json.decode(await pick)["runs"]
            waits.append((time.perf_counter() - start) * 1000)
            finish = msgspec.json.encode({"event": runs[0]["event"], "exit_code": 0})
            await worker.post("/api/v2/workers/idle-probe/finish", finish)
    finally:
        worker.close()
        submitter.close()
    waits = sorted(waits[_IDLE_WARMUP:])
    return waits[len(waits) // 2], waits[int(len(waits) * 0.9)]


async def pick_latency(url: str, samples: int) -> tuple[float, float]:
    """p50 and p99 (ms) of one worker's picks against a full queue: each pick has work,
    and reports the end of the run the last one brought."""
    port = int(url.rsplit(":", 1)[1])
    http = await Http.open("127.0.0.1", port)
    try:
        await http.post(
            "/api/v2/workers/register",
            msgspec.json.encode({"name": "depth-probe", "affinity": "LINUX", "slots": 1}),
        )
        ended: list[dict[str, int]] = []
        waits: list[float] = []
        for _ in range(samples + 1):
            # each pick reports the end of the last run, as `corral worker` does
            pick = msgspec.json.encode({"slots": 1, "wait": 5, "finished": ended})
            start = time.perf_counter()
            runs = msgspec.json.decode(await http.post("/api/v2/workers/depth-probe/pick", pick))
            waits.append((time.perf_counter() - start) * 1000)
            ended = [{"event": run["event"], "exit_code": 0} for run in runs["runs"]]
        # the first pick ended nothing: not the steady state
        waits.pop(0)
    finally:
        http.close()
    waits.sort()
    return waits[len(waits) // 2], waits[min(len(waits) - 1, int(len(waits) * 0.99))]


async def replica_rate(urls: list[str], workers: int, seconds: float, warmup: float = 1.0) -> float:
    """W1's simulated workers (loadgen's own coroutine) dealt evenly over several servers
    on one database; jobs completed per second by all of them."""
    stop = asyncio.Event()
    done = [0]
    tasks = []
    for i in range(workers):
        parts = urlsplit(urls[i % len(urls)])
        # a name of its own per layout: a name seen by two servers at once is one worker
        name = f"rep{len(urls)}-{i}"
        coroutine = worker(parts.hostname or "127.0.0.1", parts.port or 80, name, stop, done)
        tasks.append(asyncio.create_task(coroutine))
    await asyncio.sleep(warmup)
    first, start = done[0], time.perf_counter()
    await asyncio.sleep(seconds)
    completed, elapsed = done[0] - first, time.perf_counter() - start
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return completed / elapsed


def generated(module: str, server: "Server", data: Path, workers: int, seconds: float) -> Costed:
    """A load generator's run (`tests.bench.loadgen`, `tests.bench.legacy`) with the CPU
    each side spent per job over its measurement window."""
    postgres = cpu.postmaster(data / "pg")
    result = subprocess.run(
        [sys.executable, "-m", module, "--url", server.url, "--workers", str(workers),
         "--seconds", str(seconds), "--cpu", str(server.process.pid), "--cpu", str(postgres)],
        capture_output=True, text=True, check=True, timeout=seconds + 120,
    )  # fmt: skip
    measured = msgspec.json.decode(result.stdout.strip().splitlines()[-1])
    spent = measured["cpu_ms"]
    return Costed(
        workers,
        float(measured["jobs"]) / float(measured["seconds"]),
        float(spent[0]),
        float(spent[1]),
        float(measured["client_cpu_ms"]),
    )


def submitted(server: "Server", data: Path, jobs: int) -> Costed:
    """W4's single submits, with the CPU each side spent per job (the client is this
    process, which does nothing else meanwhile)."""
    window = cpu.Window([server.process.pid, cpu.postmaster(data / "pg")])
    window.open()
    rate = asyncio.run(put_rate(server.url, jobs))
    window.close()
    (server_ms, postgres_ms), client_ms = window.per(jobs)
    return Costed(10, rate, server_ms, postgres_ms, client_ms)


def _costs(costed: Costed) -> str:
    return (
        f"{costed.rate:.0f} jobs/s, per job {costed.server_ms:.2f} ms server +"
        f" {costed.postgres_ms:.2f} ms PostgreSQL (client {costed.client_ms:.2f} ms)"
    )


def heartbeats(server: "Server", data: Path, workers: int, seconds: float) -> Heartbeats:
    """W3, with the CPU per heartbeat of the server process and of PostgreSQL."""
    postgres = cpu.postmaster(data / "pg")
    result = subprocess.run(
        [sys.executable, "-m", "tests.bench.heartbeats", "--url", server.url, "--workers",
         str(workers), "--seconds", str(seconds), "--cpu", str(server.process.pid),
         "--cpu", str(postgres)],
        capture_output=True, text=True, check=True, timeout=seconds + 300,
    )  # fmt: skip
    return msgspec.json.decode(result.stdout.strip().splitlines()[-1], type=Heartbeats)


async def empty_farm(url: str) -> None:
    """Remove every job and worker (a benchmark's database only): the next workload starts
    afresh, not beside a thousand departed simulated workers whose runs the lost-worker
    pass would requeue in the middle of it."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("TRUNCATE jobs, workers CASCADE")
    finally:
        await conn.close()


async def analyze(url: str) -> None:
    """Fresh statistics, as autovacuum gives them within a minute or so of a bulk load."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("ANALYZE jobs")
    finally:
        await conn.close()


async def prepare_pgbench(url: str, rows: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP TABLE IF EXISTS bench_jobs")
        await conn.execute(
            "CREATE TABLE bench_jobs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
            " state text NOT NULL DEFAULT 'WAITING')"
        )
        await conn.execute("CREATE INDEX ON bench_jobs (id) WHERE state = 'WAITING'")
        await conn.execute(
            "INSERT INTO bench_jobs (state) SELECT 'WAITING' FROM generate_series(1, $1)", rows
        )
        await conn.execute("VACUUM ANALYZE bench_jobs")
    finally:
        await conn.close()


def pgbench(embedded: EmbeddedPostgres, clients: int, seconds: int, data: Path, rows: int) -> float:
    script = data / "job-life.sql"
    script.write_text(PGBENCH_SCRIPT)
    asyncio.run(prepare_pgbench(embedded.url, rows))
    socket_dir = re.search(r"host=([^&]+)", embedded.url)
    assert socket_dir is not None
    # the pgbench of the embedded PostgreSQL's own build
    binary = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pgbench"
    result = subprocess.run(
        [str(binary), "-n", "-h", socket_dir.group(1), "-U", "postgres", "-c", str(clients),
         "-j", str(min(clients, 2)), "-T", str(seconds), "-f", str(script), "postgres"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    tps = re.search(r"tps = ([0-9.]+)", result.stdout)
    assert tps is not None, result.stdout
    return float(tps.group(1))


def machine(url: str) -> dict[str, str]:
    async def version() -> str:
        conn = await asyncpg.connect(url)
        try:
            text: str = await conn.fetchval("SHOW server_version")
            return text
        finally:
            await conn.close()

    memory = "?"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kb = int(meminfo.read_text().split("MemTotal:")[1].split()[0])
        memory = f"{kb / 1024 / 1024:.1f} GiB"
    return {
        "cores": str(os.cpu_count()),
        "memory": memory,
        "PostgreSQL": asyncio.run(version()),
        "Python": platform.python_version(),
        "system": f"{platform.system()} {platform.machine()}",
    }


def write_report(figures: Figures, quick: bool) -> None:
    limit = max(tps for _, tps in figures.pgbench)
    best = max(c.rate for c in figures.throughput)
    beats = figures.heartbeats
    deepest = max(d.queued for d in figures.depth)
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m tests.bench.run"
        + (" --quick" if quick else "")
        + "`); the figures below come from one run on this machine"
        + f", which took {figures.seconds:.0f} s.",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in figures.machine.items()),
        "",
        "## An idle farm",
        "",
        "A worker's pick waits; a job is submitted; time until the pick holds it (50 jobs,",
        f"after {_IDLE_WARMUP} more that warm up a server just started):",
        f"p50 {figures.idle[0]:.1f} ms, p90 {figures.idle[1]:.1f} ms.",
        "",
        "## W1 throughput: jobs completed per second",
        "",
        "Simulated workers (one process, raw HTTP/1.1 keep-alive) speak the native protocol",
        "as `corral worker` does: each pick (a long poll) reports the end (exit code 0) of the",
        "run the last one brought. Jobs have zero length, so this is the scheduler's rate. One",
        "server process, on a fresh database, the queue preloaded through the bulk path and",
        "analyzed (`ANALYZE jobs`, as autovacuum does within a minute or so). Each",
        f"figure is {'a 4-second' if quick else 'a 15-second'} window: on this shared machine",
        "repeated runs differ by 20% or more, so compare figures within one run.",
        "",
        "CPU per job is taken from /proc over the same window: the server process, every",
        "PostgreSQL process, and the load generator (the client).",
        "",
        "| workers | jobs/s | share of the pgbench limit | CPU per job: server | PostgreSQL"
        " | both | client |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {c.workers} | {c.rate:.0f} | {c.rate / limit:.0%} | {_cpu_row(c)} |"
            for c in figures.throughput
        ),
        *_plot(figures, "w1", "W1 jobs/s against workers, with the pgbench limit"),
        "",
        "## W2 depth: pick latency with a deep queue",
        "",
        "On an emptied farm (the jobs and simulated workers of W1 and W5 removed), the queue",
        "filled with groups of 100 frames (priorities spread over ten values, half the",
        "groups needing the affinity LINUX) through the bulk path. In each group the last",
        "10 frames wait for 9 earlier frames each, so 10% of the queue is `PENDING`; the bulk",
        "path names only dependencies already on the server, so they go in a second bulk",
        "request per group. Statistics are refreshed every 5 s during the fill and",
        "`ANALYZE jobs` runs after it (what autovacuum does within a minute or so); then one",
        "worker with the rule LINUX picks 200 jobs, each pick finding work and reporting",
        "the end of the run the last one brought (as `corral worker` does): the latency is",
        "from sending the pick to holding the next run.",
        "Server memory is the server process's resident set (VmRSS) after the picks, and its",
        "peak so far (VmHWM).",
        "",
        "| queued jobs | pick p50 | pick p99 | server RSS | server peak RSS |",
        "|---:|---:|---:|---:|---:|",
        *(
            f"| {d.queued:,} | {d.p50:.1f} ms | {d.p99:.1f} ms | {d.rss:.0f} MB | {d.peak:.0f} MB |"
            for d in figures.depth
        ),
        *_plot(figures, "w2", "W2 pick p50 and p99 against queue depth"),
        "",
        *(
            [
                f"This run stops at {deepest:,} queued jobs: the requests that add the dependent",
                "frames are the slowest part of the fill, and the quick run has two minutes. The",
                "full run goes to 100,000 and 1,000,000.",
                "",
            ]
            if deepest < 1_000_000
            else []
        ),
        f"After every workload (W3 last): RSS {figures.final_memory[0]:.0f} MB, peak"
        f" {figures.final_memory[1]:.0f} MB.",
        "",
        "## W3 heartbeats: idle workers reporting in",
        "",
        "Simulated workers register through the native protocol, then each sends an idle",
        "heartbeat (the load of two cores, free and total memory, no runs) every"
        f" {beats.interval:g} s,",
        "the sends spread evenly over the interval, from one process over"
        f" {beats.connections} keep-alive",
        "connections (one request in flight on each). Latency is taken from the time a",
        "heartbeat was due, so that a server falling behind shows as queueing in the client,",
        "and from the time it was sent. Answered/s counts the answers within the"
        f" {beats.seconds:g} s window;",
        "missed are heartbeats due in it but still unsent one interval after its end.",
        f"Registering the {beats.workers:,} workers took {beats.registered_in:.1f} s.",
        "CPU per heartbeat answered, from /proc over the heartbeats' window:"
        f" {beats.cpu_ms[0]:.3f} ms of the server process and {beats.cpu_ms[1]:.3f} ms of"
        " PostgreSQL.",
        "",
        "| workers | asked/s | answered/s | from due p50 | p99 | from sent p50 | p99 |"
        " errors | missed |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {beats.workers:,} | {beats.offered_per_s:.0f} | {beats.achieved_per_s:.0f}"
        f" | {beats.from_due.p50:.1f} ms | {beats.from_due.p99:.1f} ms"
        f" | {beats.from_sent.p50:.1f} ms | {beats.from_sent.p99:.1f} ms"
        f" | {beats.errors} | {beats.missed} |",
        *_errors(beats),
        *_plot(figures, "w3", "W3 heartbeat latency distribution"),
        "",
        *(
            [
                "The target is 10,000 workers at one heartbeat per 5 s with p99 <= 50 ms;",
                "it needs the full run (`make bench`), the quick one has"
                f" {beats.workers:,} workers.",
                "",
            ]
            if beats.workers < 10_000
            else []
        ),
        "## W5 replicas: two server processes on one PostgreSQL",
        "",
        "W1's simulated workers against one server process (W1's own figure), then dealt",
        "evenly over two server processes on the same database and machine (the same worker",
        "coroutine, run in the harness's process, since loadgen takes one server).",
        "",
        "| server processes | workers | jobs/s |",
        "|---:|---:|---:|",
        *(f"| {n} | {w} | {rate:.0f} |" for n, w, rate in figures.replicas),
        "",
        "## The physical limit",
        "",
        "pgbench on the same PostgreSQL runs the least SQL a job's life needs: claim one",
        "queued row with `FOR UPDATE SKIP LOCKED`, then mark it finished (two transactions).",
        "",
        "```sql",
        PGBENCH_SCRIPT.rstrip(),
        "```",
        "",
        "| pgbench clients | jobs/s |",
        "|---:|---:|",
        *(f"| {c} | {tps:.0f} |" for c, tps in figures.pgbench),
        "",
        f"Best W1 figure: {best:.0f} jobs/s, {best / limit:.0%} of the limit ({limit:.0f} jobs/s).",
        "",
        "## W4 submit: jobs accepted per second",
        "",
        "| path | jobs/s | CPU per job: server | PostgreSQL | both | client |",
        "|---|---:|---:|---:|---:|---:|",
        f"| `PUT /api/jobs`, one job each, 10 connections | {figures.put.rate:.0f}"
        f" | {_cpu_row(figures.put)} |",
        f"| `POST /api/v2/jobs/bulk`, 5,000 jobs a request | {figures.bulk_rate:.0f} | | | | |",
        "",
        "## Legacy Coalition workers",
        "",
        "Simulated Coalition workers (`tests.bench.legacy`) on the legacy protocol, after W1",
        "on the same queue: each asks for a job (`/workers/pickjob`), ends it at once with",
        "exit code 0 (`/workers/endjob`) and asks again, with a heartbeat every 2 s",
        "(`/workers/heartbeat`) on a connection of its own; form bodies, plain-text answers.",
        "A legacy pick cannot carry the end of the last run, so each job takes two requests.",
        "",
        "| workers | jobs/s | CPU per job: server | PostgreSQL | both | client |",
        "|---:|---:|---:|---:|---:|---:|",
        *(f"| {c.workers} | {c.rate:.0f} | {_cpu_row(c)} |" for c in figures.legacy),
        "",
        *_listings(figures.listed),
        "## Targets",
        "",
        "| target | figure | met |",
        "|---|---|---|",
        *(f"| {target} | {figure} | {met} |" for target, figure, met in _targets(figures, quick)),
        "",
        "## Where the time goes",
        "",
        *_profile(),
        "",
    ]
    if not figures.plots:
        lines += [
            "No plots: matplotlib is missing (`pip install -e '.[bench]'`, which `make bench`",
            "does).",
            "",
        ]
    REPORT.write_text("\n".join(lines))


def _errors(beats: Heartbeats) -> list[str]:
    if not beats.error_kinds:
        return []
    kinds = sorted(beats.error_kinds.items(), key=lambda kind_count: -kind_count[1])
    return ["", "Failed heartbeats, by kind:", "", *(f"- {n} x `{k}`" for k, n in kinds[:5])]


def _listings(listed: listing.Listings) -> list[str]:
    jobs = listed.groups * (listing.FRAMES + 1)
    # wrapped here: the sentences carry the run's own figures
    about = (
        "Each listing is timed from a plain httpx client (one keep-alive connection, one"
        " request at a time) until its whole answer is read; the first answer of each kind is"
        " not counted, and every answer is checked against the farm (the jobs it must hold, in"
        " id order, and no others). Two farms, each on an emptied database, filled through the"
        f" bulk path and analyzed: {listed.roots:,} root jobs for `GET /api/jobs`; then, for"
        f" the rest, {listed.groups:,} groups of {listing.FRAMES:,} frames ({jobs:,} jobs,"
        f" filled in {listed.filled_in:.0f} s), each group and its frames belonging to one of"
        f" {len(listing.USERS)} users in turn, every {listing.PAUSED_EVERY}th frame paused (the"
        " filter `state=WAITING` leaves those out). The keyset pages are walked from `after=0`"
        " until `next` is null, through the children of groups spread over the farm (up to"
        f" {listing.WALKED}, in turn) and through the roots, walk after walk until the answers"
        " below are timed; their figures are per page. The answer column is the mean size of"
        " an answer's body."
    )
    lines = [
        "## W6 listing: job listings on big farms",
        "",
        *textwrap.wrap(about, 88, break_long_words=False, break_on_hyphens=False),
        "",
        "| listing | jobs in the farm | answers | p50 | p99 | answer |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {row.request} | {row.farm:,} | not answered | | | |"
            if row.error
            else f"| {row.request} | {row.farm:,} | {row.samples} | {listing.duration(row.p50)}"
            f" | {listing.duration(row.p99)} | {listing.size(row.size)} |"
            for row in listed.rows
        ),
        "",
    ]
    failed = [row for row in listed.rows if row.error]
    if failed:
        lines += [
            "Not answered as the contract says:",
            "",
            *(f"- {row.request}: {row.error}" for row in failed),
            "",
        ]
    if jobs < 1_000_000:
        lines += [
            f"This run lists {listed.roots:,} roots and {jobs:,} jobs; the targets are at 50,000",
            "roots and 1,000,000 jobs, which the full run fills (1,000 groups, and the where",
            "page `min=900&max=1000` beside the first).",
            "",
        ]
    return lines


def _cpu_row(costed: Costed) -> str:
    return (
        f"{costed.server_ms:.2f} ms | {costed.postgres_ms:.2f} ms | {costed.total_ms:.2f} ms"
        f" | {costed.client_ms:.2f} ms"
    )


def _plot(figures: Figures, key: str, title: str) -> list[str]:
    if key not in figures.plots:
        return []
    return ["", f"![{title}]({figures.plots[key].name})"]


def _profile() -> list[str]:
    # kept by hand: profiles need a person to read them
    if PROFILE.exists():
        return [PROFILE.read_text().rstrip()]
    return [
        "No profile findings yet. Write them in `docs/bench-profile.md` (for example from",
        "`py-spy record` on the server during W1, or from `pg_stat_statements`); `make bench`",
        "copies that file here as it is.",
    ]


def _targets(figures: Figures, quick: bool) -> list[tuple[str, str, str]]:
    """(target, figure, met) for each target of the benchmark issue."""
    unmeasured = "not measured in --quick" if quick else "not measured"

    def met(ok: bool) -> str:
        return "yes" if ok else "no"

    limit = max(tps for _, tps in figures.pgbench)
    best = max(c.rate for c in figures.throughput)
    fastest = max(figures.throughput, key=lambda c: c.rate)
    costliest = max(figures.legacy, key=lambda c: c.total_ms)
    put = figures.put
    rows = [
        ("W1 >= 1,000 jobs/s", f"{best:.0f}", met(best >= 1000)),
        ("W1 >= 50% of pgbench", f"{best / limit:.0%}", met(best >= limit / 2)),
        (
            "W1 CPU per job <= 1.2 ms (server + PostgreSQL), at the best W1 figure",
            f"{fastest.total_ms:.2f} ms at {fastest.workers} workers",
            met(fastest.total_ms <= 1.2),
        ),
        (
            "legacy workers, CPU per job <= 2 ms at 16 and 200 workers",
            f"{costliest.total_ms:.2f} ms at {costliest.workers} workers (the costlier)",
            met(costliest.total_ms <= 2),
        ),
        ("W4 `PUT /api/jobs` >= 2,000 jobs/s", f"{put.rate:.0f}", met(put.rate >= 2000)),
        (
            "W4 `PUT /api/jobs` CPU per job <= 1 ms",
            f"{put.total_ms:.2f} ms",
            met(put.total_ms <= 1),
        ),
    ]
    deepest = max(figures.depth, key=lambda d: d.queued)
    at_million = deepest.queued >= 1_000_000
    where = "" if at_million else f" at {deepest.queued:,}"
    rows.append(
        (
            "W2 pick p99 <= 10 ms at 1M",
            f"{deepest.p99:.1f} ms{where}",
            met(deepest.p99 <= 10) if at_million else unmeasured,
        )
    )
    shallow = [d for d in figures.depth if d.queued == 1000]
    if shallow:
        ratio = deepest.p99 / shallow[0].p99
        rows.append(
            (
                "W2 p99 at 1M <= 1.5 x p99 at 1,000",
                f"{ratio:.2f} x{where}",
                met(ratio <= 1.5) if at_million else unmeasured,
            )
        )
    beats = figures.heartbeats
    full_farm = beats.workers >= 10_000
    rows.append(
        (
            "W3 10,000 workers, one heartbeat per 5 s, p99 <= 50 ms",
            f"{beats.from_due.p99:.1f} ms"
            + ("" if full_farm else f" at {beats.workers:,} workers")
            + (
                f", {beats.missed + beats.errors} not answered"
                if beats.missed + beats.errors
                else ""
            ),
            met(beats.from_due.p99 <= 50 and not beats.missed and not beats.errors)
            if full_farm
            else f"{unmeasured} (needs the full run)",
        )
    )
    beat_cpu = sum(beats.cpu_ms)
    rows.append(
        (
            "W3 CPU per idle heartbeat <= 0.1 ms (server + PostgreSQL)",
            f"{beat_cpu:.3f} ms ({beats.cpu_ms[0]:.3f} + {beats.cpu_ms[1]:.3f})",
            met(beat_cpu <= 0.1),
        )
    )
    rows.append(
        ("W4 bulk >= 5,000 jobs/s", f"{figures.bulk_rate:.0f}", met(figures.bulk_rate >= 5000))
    )
    rows.append(
        (
            "server RSS < 300 MB through W2 at 1M",
            f"{deepest.peak:.0f} MB peak{where}",
            met(deepest.peak < 300) if at_million else unmeasured,
        )
    )
    listed = figures.listed
    every = listed.every
    full_roots = listed.roots >= 50_000
    rows.append(
        (
            "W6 `GET /api/jobs` p50 <= 0.5 s at 50,000 roots",
            "not answered"
            if every.error
            else listing.duration(every.p50)
            + ("" if full_roots else f" at {listed.roots:,} roots"),
            met(not every.error and every.p50 <= 0.5) if full_roots else unmeasured,
        )
    )
    # a page refused counts as the slowest
    slowest = max(listed.wheres, key=lambda row: (bool(row.error), row.p50))
    at_million = slowest.farm >= 1_000_000
    rows.append(
        (
            "W6 where page of 100 roots p50 < 20 ms at 1M jobs",
            "not answered"
            if slowest.error
            else listing.duration(slowest.p50)
            + (" (the slower page)" if len(listed.wheres) > 1 else "")
            + ("" if at_million else f" at {slowest.farm:,} jobs"),
            met(not slowest.error and slowest.p50 < 0.020) if at_million else unmeasured,
        )
    )
    return rows


def draw_plots(figures: Figures) -> dict[str, Path]:
    try:
        from tests.bench import plots
    except ImportError as exc:
        print(f"no plots ({exc}): install the bench extras, pip install -e '.[bench]'")
        return {}
    docs = REPORT.parent
    limit = max(tps for _, tps in figures.pgbench)
    beats = figures.heartbeats
    return {
        "w1": plots.throughput(
            [(c.workers, c.rate) for c in figures.throughput],
            limit,
            docs / PLOTS["w1"],
            figures.replicas,
        ),
        "w2": plots.depth([(d.queued, d.p50, d.p99) for d in figures.depth], docs / PLOTS["w2"]),
        "w3": plots.heartbeats(
            beats.quantiles,
            beats.from_due.distribution,
            beats.from_sent.distribution,
            beats.workers,
            docs / PLOTS["w3"],
        ),
    }


def listings(
    url: str, database_url: str, roots: int, groups: int, every: int, samples: int, pages: int
) -> listing.Listings:
    """W6: each of its two farms on an emptied database, filled through the bulk path and
    analyzed before it is listed."""
    asyncio.run(empty_farm(database_url))
    asyncio.run(listing.fill_roots(url, roots))
    asyncio.run(analyze(database_url))
    complete = listing.roots_listing(url, roots, every)
    print(listing.describe(complete), flush=True)
    asyncio.run(empty_farm(database_url))
    start = time.perf_counter()
    ids = asyncio.run(listing.fill_groups(url, groups))
    filled_in = time.perf_counter() - start
    print(f"W6 {groups * (listing.FRAMES + 1):,} jobs filled in {filled_in:.1f} s", flush=True)
    asyncio.run(analyze(database_url))
    wheres, walks, children = listing.group_listings(url, ids, samples, pages)
    listed = listing.Listings(roots, groups, filled_in, complete, wheres, walks, children)
    for row in (*wheres, *walks, children):
        print(listing.describe(row), flush=True)
    return listed


def replicas(
    database_url: str, data: Path, first: Server, workers: int, seconds: float, w1: float | None
) -> list[tuple[int, int, float]]:
    """W5: (servers, workers, jobs/s) with one server process, then with two. W1's figure
    at the same number of workers is the one-server figure when there is one: the same
    worker coroutine against the same server, and the quick run has no time to spare."""
    one = w1 if w1 is not None else asyncio.run(replica_rate([first.url], workers, seconds))
    second = Server(database_url, data, log="serve-2.log")
    try:
        two = asyncio.run(replica_rate([first.url, second.url], workers, seconds))
    finally:
        second.stop()
    return [(1, workers, one), (2, workers, two)]


def main() -> None:
    parser = argparse.ArgumentParser(description="Measure Corral and write docs/benchmarks.md")
    parser.add_argument("--quick", action="store_true", help="short runs, under two minutes")
    parser.add_argument(
        "--only",
        choices=["w6", "legacy"],
        help="run this workload alone, print it, write no report",
    )
    args = parser.parse_args()
    started = time.monotonic()
    seconds = 4.0 if args.quick else 15.0
    worker_counts = [1, 10, 50] if args.quick else [1, 10, 100, 1000]
    # a queued job with dependencies costs the server far more to accept than one without
    # (see the report): the quick run stops at a depth it can fill within its two minutes
    depths = [1000, 30_000] if args.quick else [1000, 100_000, 1_000_000]
    replica_workers = 50 if args.quick else 100
    beat_workers, beat_seconds = (2000, 15.0) if args.quick else (10_000, 30.0)
    # a run claims a few thousand rows a second; the full run keeps its 2M, the quick
    # one saves the ten seconds each of those loads takes
    pgbench_rows = 200_000 if args.quick else 2_000_000
    # W6: the first farm's root jobs, the second's groups of 1,000 frames; answers timed of
    # the complete list of roots (a whole farm's worth each), of each other request, and
    # keyset pages of each kind of walk
    w6 = (10_000, 100, 20, 200, 200) if args.quick else (50_000, 1000, 20, 500, 1000)
    with tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp:
        data = Path(tmp)
        embedded = EmbeddedPostgres(data)
        try:
            url = embedded.url
            server = Server(url, data)
            try:
                if args.only == "w6":
                    listings(server.url, url, *w6)
                    return
                if args.only == "legacy":
                    queue(server.url, 50_000 if args.quick else 200_000)
                    asyncio.run(analyze(url))
                    for workers in (16, 200):
                        costed = generated("tests.bench.legacy", server, data, workers, seconds)
                        print(f"legacy {workers} workers: {_costs(costed)}", flush=True)
                    return
                idle = asyncio.run(idle_latency(server.url, 50))
                print(f"idle farm: submit to pick p50 {idle[0]:.1f} ms, p90 {idle[1]:.1f} ms")
                put = submitted(server, data, 1000 if args.quick else 5000)
                print(f"W4 PUT /api/jobs: {_costs(put)}", flush=True)
                bulk = queue(server.url, 50_000 if args.quick else 200_000)
                # the steady state, as for W2: right after a bulk load, before autovacuum
                # analyzes it, 10 workers measured 100-125 jobs/s instead of about 300
                asyncio.run(analyze(url))
                rates = []
                for workers in worker_counts:
                    rates.append(generated("tests.bench.loadgen", server, data, workers, seconds))
                    print(f"W1 {workers} workers: {_costs(rates[-1])}", flush=True)
                legacy = []
                for workers in (16, 200):
                    legacy.append(generated("tests.bench.legacy", server, data, workers, seconds))
                    print(f"legacy {workers} workers: {_costs(legacy[-1])}", flush=True)
                one = {c.workers: c.rate for c in rates}.get(replica_workers)
                layouts = replicas(url, data, server, replica_workers, seconds, one)
                for servers, workers, rate in layouts:
                    print(f"W5 {servers} servers, {workers} workers: {rate:.0f} jobs/s", flush=True)
                # W2 measures its own queue and worker, not what W1 and W5 left
                asyncio.run(empty_farm(url))
                depth = []
                for queued in depths:
                    fill(server.url, url, queued)
                    asyncio.run(analyze(url))
                    p50, p99 = asyncio.run(pick_latency(server.url, 200))
                    rss, peak = server.memory()
                    depth.append(Depth(queued, p50, p99, rss, peak))
                    print(
                        f"W2 {queued} queued: pick p50 {p50:.1f} ms, p99 {p99:.1f} ms;"
                        f" server RSS {rss:.0f} MB, peak {peak:.0f} MB",
                        flush=True,
                    )
                # before W3, not after it: W3 then stands between W6's million new rows (and
                # the autovacuum they bring) and pgbench, as it stands after W2's
                listed = listings(server.url, url, *w6)
                beats = heartbeats(server, data, beat_workers, beat_seconds)
                print(
                    f"W3 {beats.workers} workers: {beats.achieved_per_s:.0f}"
                    f"/{beats.offered_per_s:.0f} heartbeats/s, p50 {beats.from_due.p50:.1f} ms,"
                    f" p99 {beats.from_due.p99:.1f} ms from due"
                    f" ({beats.from_sent.p99:.1f} ms from sent);"
                    f" per heartbeat {beats.cpu_ms[0]:.3f} ms server +"
                    f" {beats.cpu_ms[1]:.3f} ms PostgreSQL;"
                    f" registering took {beats.registered_in:.1f} s",
                    flush=True,
                )
                final_memory = server.memory()
            finally:
                server.stop()
            limits = []
            for clients in (1, 10):
                tps = pgbench(embedded, clients, int(seconds), data, pgbench_rows)
                limits.append((clients, tps))
                print(f"pgbench {clients} clients: {tps:.0f} jobs/s", flush=True)
            figures = Figures(
                machine(url),
                idle,
                depth,
                rates,
                legacy,
                limits,
                put,
                bulk,
                layouts,
                beats,
                listed,
                final_memory,
            )
        finally:
            embedded.stop()
    figures.plots = draw_plots(figures)
    print(f"plots: {', '.join(p.name for p in figures.plots.values()) or 'none'}", flush=True)
    figures.seconds = time.monotonic() - started
    write_report(figures, args.quick)
    print(REPORT.read_text())


if __name__ == "__main__":
    main()
