"""Simulated Coalition workers: the legacy protocol as Coalition's own worker speaks it
(form bodies, plain-text answers), on raw HTTP/1.1 keep-alive connections like
tests.bench.loadgen. Each worker asks for a job (`/workers/pickjob`), ends it at once with
exit code 0 (`/workers/endjob`), and asks again; beside that, a heartbeat every 2 s
(`/workers/heartbeat`) on a connection of its own, as the real worker's timer does.

    python -m tests.bench.legacy --url http://127.0.0.1:PORT --workers 16 --seconds 10

Prints one JSON object: the jobs completed, the seconds measured, the requests of each
route.
"""

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from urllib.parse import urlencode, urlsplit

import msgspec
import uvloop

from tests.bench import cpu
from tests.bench.loadgen import Http

_NOTHING = b"(-1,"
_HEARTBEAT_EVERY = 2.0


class _Counts(msgspec.Struct):
    jobs: int = 0
    picks: int = 0
    empty_picks: int = 0
    heartbeats: int = 0


def _form(**fields: str | int) -> bytes:
    return urlencode(fields).encode()


async def _post(http: Http, path: str, body: bytes) -> bytes:
    return await http.request(
        b"POST", path, body, content_type=b"application/x-www-form-urlencoded"
    )


async def worker(
    host: str, port: int, name: str, stop: asyncio.Event, counts: _Counts, ready: asyncio.Event
) -> None:
    http = await Http.open(host, port)
    machine = {"load": "[12.5]", "free_memory": 30000, "total_memory": 32000}
    try:
        while not stop.is_set():
            answer = await _post(http, "/workers/pickjob", _form(hostname=name, **machine))
            ready.set()
            counts.picks += 1
            if answer.startswith(_NOTHING):
                counts.empty_picks += 1
                continue
            job = int(answer[1 : answer.index(b",")])
            await _post(http, "/workers/endjob", _form(hostname=name, jobId=job, errorCode=0))
            counts.jobs += 1
    finally:
        http.close()


async def heartbeats(
    host: str, port: int, names: list[str], stop: asyncio.Event, counts: _Counts
) -> None:
    """Every worker's timer, one connection for them all: the legacy worker sends its
    heartbeat with the job it runs; a job of zero length is over by then, so the answer
    is `false` and changes nothing, the cost measured is the request's."""
    http = await Http.open(host, port)
    try:
        while not stop.is_set():
            started = time.perf_counter()
            for name in names:
                body = _form(hostname=name, jobId=0, log="", load="[12.5]")
                await _post(http, "/workers/heartbeat", body)
                counts.heartbeats += 1
            await asyncio.sleep(max(0.0, _HEARTBEAT_EVERY - (time.perf_counter() - started)))
    finally:
        http.close()


async def measure(
    url: str, workers: int, seconds: float, warmup: float, cpu_of: Sequence[int] = ()
) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    stop = asyncio.Event()
    counts = _Counts()
    names = [f"legacy-{workers}-{i}" for i in range(workers)]
    ready = [asyncio.Event() for _ in names]
    tasks = [
        asyncio.create_task(worker(host, port, name, stop, counts, flag))
        for name, flag in zip(names, ready, strict=True)
    ]
    await asyncio.wait(
        [asyncio.ensure_future(asyncio.gather(*(r.wait() for r in ready))), *tasks],
        return_when=asyncio.FIRST_COMPLETED,
    )
    tasks.append(asyncio.create_task(heartbeats(host, port, names, stop, counts)))
    await asyncio.sleep(warmup)
    window = cpu.Window(cpu_of)
    first = msgspec.structs.replace(counts)
    start = time.perf_counter()
    window.open()
    await asyncio.sleep(seconds)
    window.close()
    elapsed = time.perf_counter() - start
    last = msgspec.structs.replace(counts)
    spent, own = window.per(last.jobs - first.jobs)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "workers": workers,
        "seconds": elapsed,
        "jobs": last.jobs - first.jobs,
        "picks": last.picks - first.picks,
        "empty_picks": last.empty_picks - first.empty_picks,
        "heartbeats": last.heartbeats - first.heartbeats,
        "cpu_ms": spent,
        "client_cpu_ms": own,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    cpu.add_option(parser, "job")
    args = parser.parse_args()
    result = uvloop.run(measure(args.url, args.workers, args.seconds, args.warmup, args.cpu))
    sys.stdout.write(msgspec.json.encode(result).decode() + "\n")


if __name__ == "__main__":
    main()
