"""CPU time of processes, from /proc: what a workload cost each side, independent of how
fast this machine is or how busy it was. Seconds of user plus system time, children that
are still alive included (a server's replicas, PostgreSQL's backends)."""

import os
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
