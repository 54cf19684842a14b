"""CPU time of processes, from /proc: what a workload cost each side, independent of how
fast this machine is or how busy it was. Seconds of user plus system time, children that
are still alive included (a server's replicas, PostgreSQL's backends)."""

import argparse
import os
import time
from collections.abc import Sequence
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # the command name, in parentheses, may itself hold spaces
    return text[text.rindex(")") + 2 :].split()


def _children() -> dict[int, list[int]]:
    below: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            below.setdefault(int(fields[1]), []).append(int(entry.name))
    return below


def seconds(root: int) -> float:
    """CPU seconds used so far by `root` and every live process below it."""
    below = _children()
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        fields = _stat(pid)
        if fields is not None:
            # utime and stime (fields 14 and 15 of proc(5), here after pid and comm)
            total += (int(fields[11]) + int(fields[12])) / _TICK
        todo.extend(below.get(pid, []))
    return total


def postmaster(data_dir: Path) -> int:
    """The pid of the PostgreSQL server keeping `data_dir` (its postmaster.pid file)."""
    return int((data_dir / "postmaster.pid").read_text().split()[0])


class Window:
    """The CPU seconds the process trees `pids` and this very process spend from `open()`
    to `close()`: what one measurement window of a load generator cost each side."""

    def __init__(self, pids: Sequence[int]) -> None:
        self._pids = list(pids)
        self._before: list[float] = []
        self._own = 0.0
        self.spent: list[float] = []
        self.own = 0.0

    def open(self) -> None:
        self._before = [seconds(pid) for pid in self._pids]
        self._own = time.process_time()

    def close(self) -> None:
        self.spent = [seconds(pid) - b for pid, b in zip(self._pids, self._before, strict=True)]
        self.own = time.process_time() - self._own

    def per(self, count: int) -> tuple[list[float], float]:
        """Milliseconds per one of `count` (jobs, heartbeats): each tree's, and this
        process's."""
        n = max(1, count)
        return [1000 * s / n for s in self.spent], 1000 * self.own / n


def add_option(parser: argparse.ArgumentParser, per: str) -> None:
    """A load generator's `--cpu PID` (repeatable): whose CPU time to report per `per`."""
    parser.add_argument(
        "--cpu",
        type=int,
        action="append",
        default=[],
        help=f"a process whose CPU time (its own and its children's) per {per} to report",
    )
