"""A quick measure of dispatch on this machine: how long a job submitted to an idle farm
waits before a worker's pick receives it, and how many zero-length jobs a handful of
simulated workers get through per second (pick + finish over the native protocol).

    .venv/bin/python -m tests.bench.quick_dispatch [--samples 50] [--jobs 2000] [--workers 20]

It starts its own `corral serve` with an embedded PostgreSQL in a temporary directory.
"""

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.processes import free_port


async def latency(client: httpx.AsyncClient, samples: int) -> list[float]:
    await client.post("/api/v2/workers/register", json={"name": "idle", "slots": 1})
    waits: list[float] = []
    for _ in range(samples):
        pick = asyncio.create_task(
            client.post("/api/v2/workers/idle/pick", json={"slots": 1, "wait": 10})
        )
        await asyncio.sleep(0.05)  # the pick is waiting: the farm is idle
        start = time.perf_counter()
        await client.put("/api/jobs", json={"title": "probe", "command": "true"})
        runs = (await pick).json()["runs"]
        waits.append((time.perf_counter() - start) * 1000)
        await client.post(
            "/api/v2/workers/idle/finish", json={"event": runs[0]["event"], "exit_code": 0}
        )
    return waits


async def throughput(client: httpx.AsyncClient, jobs: int, workers: int) -> tuple[float, float]:
    start = time.perf_counter()
    for first in range(0, jobs, 100):
        batch = range(first, min(first + 100, jobs))
        await asyncio.gather(
            *(client.put("/api/jobs", json={"title": f"j{i}", "command": "true"}) for i in batch)
        )
    submitted = time.perf_counter() - start
    names = [f"sim-{w}" for w in range(workers)]
    for name in names:
        await client.post("/api/v2/workers/register", json={"name": name, "slots": 1})
    done = 0

    async def work(name: str) -> None:
        nonlocal done
        while done < jobs:
            answer = await client.post(f"/api/v2/workers/{name}/pick", json={"slots": 1, "wait": 1})
            for run in answer.json()["runs"]:
                await client.post(
                    f"/api/v2/workers/{name}/finish", json={"event": run["event"], "exit_code": 0}
                )
                done += 1

    start = time.perf_counter()
    await asyncio.gather(*(work(n) for n in names))
    return jobs / submitted, jobs / (time.perf_counter() - start)


async def measure(url: str, samples: int, jobs: int, workers: int) -> None:
    limits = httpx.Limits(max_connections=workers + 20)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        waits = sorted(await latency(client, samples))
        print(
            f"idle farm, submit to pick: p50 {statistics.median(waits):.1f} ms, "
            f"p90 {waits[int(len(waits) * 0.9)]:.1f} ms, max {waits[-1]:.1f} ms ({samples} jobs)"
        )
        submit_rate, done_rate = await throughput(client, jobs, workers)
        print(f"submitted {jobs} jobs one PUT each: {submit_rate:.0f} jobs/s")
        print(f"{workers} simulated workers, pick + finish: {done_rate:.0f} jobs/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=20)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="corral-bench-") as data:
        server = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--data-dir", data],
            stdout=(Path(data) / "serve.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{url}/api/jobs").status_code == 200:
                        break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            asyncio.run(measure(url, args.samples, args.jobs, args.workers))
        finally:
            server.terminate()
            server.wait(timeout=60)


if __name__ == "__main__":
    main()
