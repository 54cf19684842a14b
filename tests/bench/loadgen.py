"""Simulated workers: asyncio, raw HTTP/1.1 keep-alive, the native worker protocol, jobs of
zero length, each pick reporting the end of the run the last one brought. Light enough
(uvloop, no HTTP library) that the measurement is the scheduler, not the client.

    python -m tests.bench.loadgen --url http://127.0.0.1:PORT --workers 10 --seconds 5

Prints one JSON object: the jobs completed (pick + finish) and the seconds measured.
"""

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import msgspec
import uvloop

from tests.bench import cpu


class Http:
    """One keep-alive connection; POSTs JSON and reads the answer by Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> "Http":
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def post(self, path: str, body: bytes) -> bytes:
        return await self.request(b"POST", path, body)

    async def put(self, path: str, body: bytes) -> bytes:
        return await self.request(b"PUT", path, body)

    async def request(
        self, method: bytes, path: str, body: bytes, content_type: bytes = b"application/json"
    ) -> bytes:
        self._writer.write(
            b"%s %s HTTP/1.1\r\nHost: bench\r\nContent-Type: %s\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (method, path.encode(), content_type, len(body), body)
        )
        status = await self._reader.readline()
        length = 0
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        answer = await self._reader.readexactly(length)
        if not status.startswith(b"HTTP/1.1 2"):
            raise RuntimeError(f"{path}: {status.decode().strip()} {answer[:200]!r}")
        return answer

    def close(self) -> None:
        self._writer.close()


class Run(msgspec.Struct):
    event: int


class Picked(msgspec.Struct):
    runs: list[Run]


async def worker(
    host: str,
    port: int,
    name: str,
    stop: asyncio.Event,
    done: list[int],
    registered: Callable[[], None] = lambda: None,
) -> None:
    http = await Http.open(host, port)
    try:
        await http.post("/api/v2/workers/register", msgspec.json.encode({"name": name, "slots": 1}))
        registered()
        decoder = msgspec.json.Decoder(Picked)
        ended: list[dict[str, int]] = []
        while not stop.is_set():
            # the ends of the last runs go with the next pick, as `corral worker` does
            pick = msgspec.json.encode({"slots": 1, "wait": 1.0, "finished": ended})
            picked = decoder.decode(await http.post(f"/api/v2/workers/{name}/pick", pick))
            done[0] += len(ended)
            ended = [{"event": run.event, "exit_code": 0} for run in picked.runs]
    finally:
        http.close()


async def measure(
    url: str, workers: int, seconds: float, warmup: float, cpu_of: Sequence[int] = ()
) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    stop = asyncio.Event()
    done, registered = [0], [0]
    all_in = asyncio.Event()

    def one_more() -> None:
        registered[0] += 1
        if registered[0] == workers:
            all_in.set()

    tasks = [
        asyncio.create_task(worker(host, port, f"sim-{workers}-{i}", stop, done, one_more))
        for i in range(workers)
    ]
    # a thousand workers take seconds to register: the window opens once all are working
    # (or one has failed, which the gather below reports)
    waiting = asyncio.create_task(all_in.wait())
    await asyncio.wait([waiting, *tasks], return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    await asyncio.sleep(warmup)
    window = cpu.Window(cpu_of)
    first, start = done[0], time.perf_counter()
    window.open()
    await asyncio.sleep(seconds)
    window.close()
    completed, elapsed = done[0] - first, time.perf_counter() - start
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    spent, own = window.per(completed)
    return {
        "workers": workers,
        "jobs": completed,
        "seconds": elapsed,
        "cpu_ms": spent,
        "client_cpu_ms": own,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    cpu.add_option(parser, "job")
    args = parser.parse_args()
    result = uvloop.run(measure(args.url, args.workers, args.seconds, args.warmup, args.cpu))
    sys.stdout.write(msgspec.json.encode(result).decode() + "\n")


if __name__ == "__main__":
    main()
