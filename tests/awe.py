"""Helpers for the AWE face's tests: the real AWE worker (awe-worker 0.9.68, Go) and a way
to run it against a test server.

`make test` builds the worker (the Makefile's `awe-worker` target) and names it in
`CORRAL_AWE_WORKER`. Without the variable the fixture builds it the same way when Go is
present; otherwise it fails: the suite must not quietly lose the tests of the real client.
"""

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# where the Makefile puts it
BUILT = REPO / ".cache" / "awe-worker" / "awe-worker"
VERSION = "0.9.68"


@pytest.fixture(scope="session")
def awe_worker_binary() -> Path:
    """The path of the real awe-worker binary, built when needed."""
    named = os.environ.get("CORRAL_AWE_WORKER")
    if named:
        path = Path(named)
        if not os.access(path, os.X_OK):
            pytest.fail(f"CORRAL_AWE_WORKER={named} is not an executable file")
        return path
    if not os.access(BUILT, os.X_OK):
        if shutil.which("go") is None and os.geteuid() != 0:
            pytest.fail(
                "awe-worker is not built and Go is missing: run `make awe-worker` (as root it "
                "installs Debian's golang and golang-github-robertkrimen-otto-dev)"
            )
        done = subprocess.run(
            ["make", "--no-print-directory", "awe-worker"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0 or not os.access(BUILT, os.X_OK):
            pytest.fail(f"building awe-worker failed:\n{done.stdout}\n{done.stderr}")
    return BUILT


class AweWorker:
    """A running awe-worker process, in its own process group."""

    def __init__(self, process: "subprocess.Popen[bytes]", folder: Path, log: Path) -> None:
        self.process = process
        self.folder = folder
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM to the whole group (a command it runs has children of its own), then
        SIGKILL to whatever is left after 10 s."""
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        # the worker gone, its command's children may still be running in its group
        _signal_group(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, sig)


@contextmanager
def awe_worker(
    binary: Path,
    server_url: str,
    folder: Path,
    *,
    name: str = "w1",
    group: str = "default",
    apps: str = "bash",
    extra: tuple[str, ...] = (),
) -> Iterator[AweWorker]:
    """Run `binary` against `server_url` (the server's base URL; `/awe` is added) with the
    flags of docs: awe.md §10, its data, logs and work folders under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "worker.out"
    args = [
        str(binary),
        f"--serverurl={server_url.rstrip('/')}/awe",
        f"--name={name}",
        f"--group={group}",
        f"--supported_apps={apps}",
        "--use_docker=no",
        f"--data={folder / 'data'}",
        f"--logs={folder / 'logs'}",
        f"--workpath={folder / 'work'}",
        *extra,
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, cwd=folder, start_new_session=True
        )
    worker = AweWorker(process, folder, log)
    try:
        yield worker
    finally:
        worker.stop()


def wait_for(check: "object", timeout: float = 60.0, every: float = 0.2) -> None:
    """Call `check()` until it returns true, failing after `timeout` seconds."""
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {check}")
        time.sleep(every)
