"""`make bench`: start a server on its own embedded PostgreSQL, run the workloads, and
write docs/benchmarks.md with the figures and the machine they came from.

    python -m tests.bench.run [--quick]

Workloads measured so far:
- W1 throughput: jobs completed per second (pick + finish) by N simulated workers;
- W4 submit: jobs accepted per second, one PUT /api/jobs each and through the bulk path;
- the physical limit beside them: pgbench performing the minimal SQL of a job's life
  (claim one queued row with SKIP LOCKED, complete it) on the same PostgreSQL.
"""

import argparse
import asyncio
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import msgspec
import pgserver

from core.embedded import EmbeddedPostgres
from tests.bench.loadgen import Http
from tests.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "docs" / "benchmarks.md"
PGBENCH_SCRIPT = """\
UPDATE bench_jobs SET state = 'WORKING'
 WHERE id = (SELECT id FROM bench_jobs WHERE state = 'WAITING'
              ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id \\gset
UPDATE bench_jobs SET state = 'FINISHED' WHERE id = :id;
"""


@dataclass
class Figures:
    machine: dict[str, str]
    idle: tuple[float, float]
    depth: list[tuple[int, float, float]]
    throughput: list[tuple[int, float]]
    pgbench: list[tuple[int, float]]
    put_rate: float
    bulk_rate: float


class Server:
    def __init__(self, database_url: str, data: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--port", str(self.port),
             "--database-url", database_url],
            stdout=(data / "serve.log").open("wb"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.url}/api/jobs").status_code == 200:
                    return
            except httpx.TransportError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.2)

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


def fill(url: str, depth: int) -> None:
    """Queue groups of 100 frames until `depth` jobs wait: priorities spread over ten
    values, half the groups needing the affinity LINUX."""
    with httpx.Client(base_url=url, timeout=300) as client:
        count = client.get(
            "/api/jobs/count/where/", params={"where_clause": "state='WAITING'"}
        ).json()
        group = 0
        while count < depth:
            parent = client.put(
                "/api/jobs",
                json={"title": f"group {group}", "priority": group % 10 * 100,
                      "affinity": "LINUX" if group % 2 else ""},
            ).json()  # fmt: skip
            frames = [{"title": f"f{i}", "command": "true", "priority": i % 7} for i in range(100)]
            client.post(
                "/api/v2/jobs/bulk", json={"parent": parent, "jobs": frames}
            ).raise_for_status()
            count += 100
            group += 1


async def idle_latency(url: str, samples: int) -> tuple[float, float]:
    """p50 and p90 (ms) from submitting a job to an idle farm to a waiting pick holding it."""
    port = int(url.rsplit(":", 1)[1])
    worker, submitter = await Http.open("127.0.0.1", port), await Http.open("127.0.0.1", port)
    try:
        await worker.post("/api/v2/workers/register", b'{"name": "idle-probe", "slots": 1}')
        job = msgspec.json.encode({"title": "probe", "command": "true"})
        waits: list[float] = []
        for _ in range(samples):
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
    waits.sort()
    return waits[len(waits) // 2], waits[int(len(waits) * 0.9)]


async def pick_latency(url: str, samples: int) -> tuple[float, float]:
    """p50 and p99 (ms) of one worker's picks against a full queue: each pick has work."""
    port = int(url.rsplit(":", 1)[1])
    http = await Http.open("127.0.0.1", port)
    try:
        await http.post(
            "/api/v2/workers/register",
            msgspec.json.encode({"name": "depth-probe", "affinity": "LINUX", "slots": 1}),
        )
        pick = msgspec.json.encode({"slots": 1, "wait": 5})
        waits: list[float] = []
        for _ in range(samples):
            start = time.perf_counter()
            runs = msgspec.json.decode(await http.post("/api/v2/workers/depth-probe/pick", pick))
            waits.append((time.perf_counter() - start) * 1000)
            for run in runs["runs"]:
                finish = msgspec.json.encode({"event": run["event"], "exit_code": 0})
                await http.post("/api/v2/workers/depth-probe/finish", finish)
    finally:
        http.close()
    waits.sort()
    return waits[len(waits) // 2], waits[min(len(waits) - 1, int(len(waits) * 0.99))]


def throughput(url: str, workers: int, seconds: float) -> float:
    result = subprocess.run(
        [sys.executable, "-m", "tests.bench.loadgen", "--url", url, "--workers", str(workers),
         "--seconds", str(seconds)],
        capture_output=True, text=True, check=True, timeout=seconds + 120,
    )  # fmt: skip
    measured = msgspec.json.decode(result.stdout.strip().splitlines()[-1])
    return float(measured["jobs"]) / float(measured["seconds"])


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


def pgbench(embedded: EmbeddedPostgres, clients: int, seconds: int, data: Path) -> float:
    script = data / "job-life.sql"
    script.write_text(PGBENCH_SCRIPT)
    asyncio.run(prepare_pgbench(embedded.url, 2_000_000))
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
    best = max(rate for _, rate in figures.throughput)
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m tests.bench.run"
        + (" --quick" if quick else "")
        + "`); the figures below come from one run on this machine.",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in figures.machine.items()),
        "",
        "## An idle farm",
        "",
        "A worker's pick waits; a job is submitted; time until the pick holds it (50 jobs):",
        f"p50 {figures.idle[0]:.1f} ms, p90 {figures.idle[1]:.1f} ms.",
        "",
        "## W1 throughput: jobs completed per second",
        "",
        "Simulated workers (one process, raw HTTP/1.1 keep-alive) speak the native protocol:",
        "pick (long poll), then finish with exit code 0; jobs have zero length, so this is the",
        "scheduler's rate. One server process, the queue preloaded through the bulk path.",
        "",
        "| workers | jobs/s | share of the pgbench limit |",
        "|---:|---:|---:|",
        *(f"| {w} | {rate:.0f} | {rate / limit:.0%} |" for w, rate in figures.throughput),
        "",
        "## W2 depth: pick latency with a deep queue",
        "",
        "The queue filled with groups of 100 frames (priorities spread over ten values, half",
        "the groups needing the affinity LINUX) through the bulk path, then `ANALYZE jobs`",
        "(what autovacuum does within a minute or so); one worker with the rule LINUX picks",
        "and finishes 200 jobs, each pick finding work.",
        "",
        "| queued jobs | pick p50 | pick p99 |",
        "|---:|---:|---:|",
        *(f"| {d:,} | {p50:.1f} ms | {p99:.1f} ms |" for d, p50, p99 in figures.depth),
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
        "| path | jobs/s |",
        "|---|---:|",
        f"| `PUT /api/jobs`, one job each, 10 connections | {figures.put_rate:.0f} |",
        f"| `POST /api/v2/jobs/bulk`, 5,000 jobs a request | {figures.bulk_rate:.0f} |",
        "",
        "## Targets",
        "",
        "| target | figure | met |",
        "|---|---|---|",
        f"| W1 >= 1,000 jobs/s | {best:.0f} | {'yes' if best >= 1000 else 'no'} |",
        f"| W1 >= 50% of pgbench | {best / limit:.0%} | {'yes' if best >= limit / 2 else 'no'} |",
        f"| W4 bulk >= 5,000 jobs/s | {figures.bulk_rate:.0f} |"
        f" {'yes' if figures.bulk_rate >= 5000 else 'no'} |",
        *_depth_targets(figures.depth),
        "",
        "Not measured yet: W2 at 1M jobs in the quick run (the full run goes there), W3",
        "(heartbeats), W5 (replicas), memory, plots and profiles; W2's queue has no",
        "dependencies yet.",
        "",
    ]
    REPORT.write_text("\n".join(lines))


def _depth_targets(depth: list[tuple[int, float, float]]) -> list[str]:
    rows = {d: p99 for d, _, p99 in depth}
    deepest = max(rows)
    lines = [f"| W2 pick p99 <= 10 ms at {deepest:,} | {rows[deepest]:.1f} ms |"
             f" {'yes' if rows[deepest] <= 10 else 'no'} |"]  # fmt: skip
    if 1000 in rows:
        ratio = rows[deepest] / rows[1000]
        lines.append(
            f"| W2 p99 at {deepest:,} <= 1.5 x p99 at 1,000 | {ratio:.2f} x |"
            f" {'yes' if ratio <= 1.5 else 'no'} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description="Measure Corral and write docs/benchmarks.md")
    parser.add_argument("--quick", action="store_true", help="short runs, under two minutes")
    args = parser.parse_args()
    seconds = 4.0 if args.quick else 15.0
    worker_counts = [1, 10, 50] if args.quick else [1, 10, 100, 1000]
    with tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp:
        data = Path(tmp)
        embedded = EmbeddedPostgres(data)
        try:
            url = embedded.url
            server = Server(url, data)
            try:
                idle = asyncio.run(idle_latency(server.url, 50))
                print(f"idle farm: submit to pick p50 {idle[0]:.1f} ms, p90 {idle[1]:.1f} ms")
                depths = []
                for depth in [1000, 100_000] if args.quick else [1000, 100_000, 1_000_000]:
                    fill(server.url, depth)
                    asyncio.run(analyze(url))
                    p50, p99 = asyncio.run(pick_latency(server.url, 200))
                    depths.append((depth, p50, p99))
                    print(f"W2 {depth} queued: pick p50 {p50:.1f} ms, p99 {p99:.1f} ms", flush=True)
                put = asyncio.run(put_rate(server.url, 1000 if args.quick else 5000))
                bulk = queue(server.url, 50_000 if args.quick else 200_000)
                rates = []
                for workers in worker_counts:
                    rates.append((workers, throughput(server.url, workers, seconds)))
                    print(f"W1 {workers} workers: {rates[-1][1]:.0f} jobs/s", flush=True)
            finally:
                server.stop()
            limits = [(c, pgbench(embedded, c, int(seconds), data)) for c in (1, 10)]
            figures = Figures(machine(url), idle, depths, rates, limits, put, bulk)
        finally:
            embedded.stop()
    write_report(figures, args.quick)
    print(REPORT.read_text())


if __name__ == "__main__":
    main()
