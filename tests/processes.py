"""Real `corral serve` and `corral worker` processes for tests, with their output in files
(a pipe nobody reads would block a chatty server)."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

CORRAL = [sys.executable, "-m", "api.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Process:
    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [*CORRAL, *args],
                env={**os.environ, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=60)

    def alive(self) -> bool:
        return self.process.poll() is None


class Served(Process):
    """`corral serve` on a free (or the given) loopback port."""

    def __init__(
        self,
        args: list[str],
        log: Path,
        env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(["serve", "--port", str(self.port), *args], log, env)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"corral serve exited:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/api/jobs").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("corral serve did not answer")


class Worker(Process):
    """`corral worker` against a server."""

    def __init__(
        self,
        server: str,
        name: str,
        log: Path,
        affinity: str | None = "",
        slots: int = 1,
        more: Sequence[str] = (),
    ) -> None:
        # None: no --affinity, the worker keeps the rules the server has for it
        rules = [] if affinity is None else ["--affinity", affinity]
        super().__init__(
            [
                "worker",
                "--server",
                server,
                "--name",
                name,
                *rules,
                "--slots",
                str(slots),
                *more,
            ],
            log,
        )


class Processes:
    """Started processes, all stopped at the end of the test."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[Process] = []

    def serve(
        self, args: list[str], env: dict[str, str] | None = None, port: int | None = None
    ) -> Served:
        server = Served(args, self.logs / f"serve-{len(self.started)}.log", env, port)
        self.started.append(server)
        return server

    def worker(
        self,
        server: str,
        name: str,
        affinity: str | None = "",
        slots: int = 1,
        more: Sequence[str] = (),
    ) -> Worker:
        """A `corral worker`; `more` are further options (`--pool`, `--apps`, ...)."""
        log = self.logs / f"worker-{name}-{len(self.started)}.log"
        worker = Worker(server, name, log, affinity, slots, more)
        self.started.append(worker)
        return worker

    def close(self) -> None:
        # SIGTERM first: a killed `corral serve` leaves its embedded PostgreSQL running
        for p in reversed(self.started):
            if p.alive():
                p.process.send_signal(signal.SIGTERM)
        for p in self.started:
            try:
                p.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    yield started
    started.close()
