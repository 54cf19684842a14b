"""W3 heartbeats: many idle workers, each heartbeating every few seconds, the sends spread
evenly over the interval. A farm's steady background load.

    python -m tests.bench.heartbeats --url http://127.0.0.1:PORT --workers 2000 --seconds 15

Workers share a pool of keep-alive connections (one request in flight on each), since one
socket per simulated worker would exhaust the machine long before the server. Each
request's latency is taken twice: from the time it was due, so that a server falling
behind shows as queueing in the client, and from the time it was written.

Prints one JSON object (see `Result`).
"""

import argparse
import asyncio
import resource
import sys
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

import msgspec

from tests.bench import cpu
from tests.bench.loadgen import Http

# the points of the latency distribution reported, finer in the tail where targets sit
QUANTILES = [q / 100 for q in range(100)] + [0.995, 0.999, 1.0]
# uvicorn closes a keep-alive connection idle for 5 s; a client that has waited longer
# (a connection done registering while others still are) opens a new one, as HTTP
# client pools do, rather than count the server's close as a failed heartbeat
STALE_AFTER = 4.0


class Latency(msgspec.Struct):
    p50: float
    p90: float
    p99: float
    p999: float
    max: float
    # milliseconds at each of `quantiles`
    distribution: list[float]


class Result(msgspec.Struct):
    workers: int
    connections: int
    interval: float
    seconds: float
    # how long registering every worker took, before the heartbeats
    registered_in: float
    # what the schedule asks for, and what the server answered within the window
    offered_per_s: float
    achieved_per_s: float
    due: int
    completed: int
    errors: int
    # the first words of each kind of failure, and how many of it
    error_kinds: dict[str, int]
    # due in the window but not sent by the end of the drain: the server fell behind
    missed: int
    quantiles: list[float]
    from_due: Latency
    from_sent: Latency
    # CPU time per heartbeat answered (ms) of each process tree given with --cpu and of
    # this load generator, over the heartbeats' window (registering left out)
    cpu_ms: list[float] = msgspec.field(default_factory=list)
    client_cpu_ms: float = 0.0


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def heartbeat_body(index: int) -> bytes:
    # an idle two-core node; the figures vary so that no layer can cache one answer
    load = float(index % 7)
    return msgspec.json.encode(
        {"cpu": [load, load / 2], "free_memory": 23_000 - index % 100, "total_memory": 24_105}
    )


class Connection:
    """One keep-alive connection and the workers it carries; reopened after a failure."""

    def __init__(
        self, host: str, port: int, workers: list[int], interval: float, total: int
    ) -> None:
        self.host, self.port = host, port
        self.names = [f"hb-{i}" for i in workers]
        # worker i is due i * interval / total into each cycle
        self.offsets = [i * interval / total for i in workers]
        self.bodies = [heartbeat_body(i) for i in workers]
        self.http: Http | None = None
        self.last_used = 0.0
        # (due, sent, answered) for each heartbeat sent
        self.samples: list[tuple[float, float, float]] = []
        self.errors: dict[str, int] = {}
        self.missed = 0

    async def request(self, path: str, body: bytes) -> None:
        if self.http is not None and time.perf_counter() - self.last_used > STALE_AFTER:
            self.http.close()
            self.http = None
        if self.http is None:
            self.http = await Http.open(self.host, self.port)
        try:
            await self.http.post(path, body)
        except (OSError, RuntimeError, asyncio.IncompleteReadError):
            self.http.close()
            self.http = None
            raise
        self.last_used = time.perf_counter()

    async def register(self) -> None:
        for name in self.names:
            await self.request(
                "/api/v2/workers/register", msgspec.json.encode({"name": name, "slots": 1})
            )

    async def run(self, start: float, interval: float, end: float, drain_until: float) -> None:
        """Send each worker's heartbeats at start + offset + k * interval until `end`;
        past `drain_until`, what is still due is counted as missed rather than sent."""
        cycle = 0
        while True:
            base = start + cycle * interval
            if base >= end:
                return
            for name, offset, body in zip(self.names, self.offsets, self.bodies, strict=True):
                due = base + offset
                if due >= end:
                    return
                now = time.perf_counter()
                if now > drain_until:
                    self.missed += 1
                    continue
                if due > now:
                    await asyncio.sleep(due - now)
                sent = time.perf_counter()
                try:
                    await self.request(f"/api/v2/workers/{name}/heartbeat", body)
                except (OSError, RuntimeError, asyncio.IncompleteReadError) as exc:
                    kind = failure(exc, name)
                    self.errors[kind] = self.errors.get(kind, 0) + 1
                    continue
                self.samples.append((due, sent, time.perf_counter()))
            cycle += 1

    def close(self) -> None:
        if self.http is not None:
            self.http.close()


def failure(exc: BaseException, name: str) -> str:
    """A failed request's kind, the same for every worker."""
    text = str(exc).replace(name, "{name}")
    if isinstance(exc, RuntimeError) and " HTTP/" not in text:
        return "the server closed the connection without an answer"
    return f"{type(exc).__name__}: {text[:100]}"


def latency(values_ms: list[float]) -> Latency:
    if not values_ms:
        return Latency(0.0, 0.0, 0.0, 0.0, 0.0, [0.0] * len(QUANTILES))
    values = sorted(values_ms)

    def at(q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))]

    return Latency(at(0.5), at(0.9), at(0.99), at(0.999), values[-1], [at(q) for q in QUANTILES])


async def measure(
    url: str,
    workers: int,
    connections: int,
    interval: float,
    seconds: float,
    cpu_of: Sequence[int] = (),
) -> Result:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    connections = min(connections, workers)
    raise_fd_limit(connections + 256)
    # dealt round-robin, every connection gets an evenly spaced share of the schedule
    pool = [
        Connection(host, port, list(range(c, workers, connections)), interval, workers)
        for c in range(connections)
    ]
    try:
        registering = time.perf_counter()
        await asyncio.gather(*(c.register() for c in pool))
        registered_in = time.perf_counter() - registering
        start = time.perf_counter() + 0.2
        end = start + seconds
        # a server that falls behind gets one more interval to answer what was due
        drain_until = end + interval
        window = cpu.Window(cpu_of)
        window.open()
        await asyncio.gather(*(c.run(start, interval, end, drain_until) for c in pool))
        window.close()
    finally:
        for c in pool:
            c.close()
    samples = [s for c in pool for s in c.samples]
    in_window = sum(1 for _, _, answered in samples if answered <= end)
    missed = sum(c.missed for c in pool)
    kinds: dict[str, int] = {}
    for c in pool:
        for kind, count in c.errors.items():
            kinds[kind] = kinds.get(kind, 0) + count
    errors = sum(kinds.values())
    return Result(
        workers=workers,
        connections=connections,
        interval=interval,
        seconds=seconds,
        registered_in=registered_in,
        offered_per_s=workers / interval,
        achieved_per_s=in_window / seconds,
        due=len(samples) + missed + errors,
        completed=len(samples),
        errors=errors,
        error_kinds=kinds,
        missed=missed,
        quantiles=QUANTILES,
        from_due=latency([(answered - due) * 1000 for due, _, answered in samples]),
        from_sent=latency([(answered - sent) * 1000 for _, sent, answered in samples]),
        cpu_ms=window.per(len(samples))[0],
        client_cpu_ms=window.per(len(samples))[1],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="W3: idle workers heartbeating")
    parser.add_argument("--url", required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between beats")
    parser.add_argument("--seconds", type=float, default=15.0)
    cpu.add_option(parser, "heartbeat")
    args = parser.parse_args()
    run = measure(args.url, args.workers, args.connections, args.interval, args.seconds, args.cpu)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run)
    else:
        # the client shares the machine's cores with the server: the lighter loop takes less
        result = uvloop.run(run)
    sys.stdout.write(msgspec.json.encode(result).decode() + "\n")


if __name__ == "__main__":
    main()
