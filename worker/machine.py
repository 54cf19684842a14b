"""What the worker tells of its machine: the load of each core, the memory, and the
resources it offers jobs."""

import os
from pathlib import Path

_STAT = Path("/proc/stat")
_MEMINFO = Path("/proc/meminfo")


class CpuMeter:
    """Per-core load (0..100) since the previous reading, from /proc/stat (Linux)."""

    def __init__(self) -> None:
        self._last: list[tuple[int, int]] = self._times()

    def read(self) -> list[float] | None:
        now = self._times()
        if not now:
            return None
        loads: list[float] = []
        for (busy0, total0), (busy1, total1) in zip(self._last, now, strict=False):
            total = total1 - total0
            loads.append(round(100.0 * (busy1 - busy0) / total, 1) if total > 0 else 0.0)
        self._last = now
        return loads

    @staticmethod
    def _times() -> list[tuple[int, int]]:
        try:
            lines = _STAT.read_text().splitlines()
        except OSError:
            return []
        times: list[tuple[int, int]] = []
        for line in lines:
            if line.startswith("cpu") and line[3:4].isdigit():
                fields = [int(x) for x in line.split()[1:]]
                idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
                times.append((sum(fields) - idle, sum(fields)))
        return times


def memory_mb() -> tuple[int, int] | None:
    """(free, total) memory in megabytes, or None where /proc/meminfo is missing."""
    try:
        text = _MEMINFO.read_text()
    except OSError:
        return None
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key] = int(parts[0]) // 1024
    if "MemTotal" not in values:
        return None
    return values.get("MemAvailable", values.get("MemFree", 0)), values["MemTotal"]


def detected_resources() -> dict[str, float]:
    """What this machine offers the jobs that declare needs: its cores (`cpus`), its memory
    in megabytes (`mem`) and its NVIDIA GPUs (`gpus`, the /dev/nvidia<n> devices)."""
    found = {"cpus": float(os.cpu_count() or 1)}
    memory = memory_mb()
    if memory is not None:
        found["mem"] = float(memory[1])
    found["gpus"] = float(sum(1 for _ in Path("/dev").glob("nvidia[0-9]*")))
    return found


def parse_resources(text: str) -> dict[str, float]:
    """`cpus=16,mem=64000,gpus=2` as a mapping; raises ValueError saying what is wrong."""
    found: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, amount = part.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"{part.strip()!r} is not name=amount")
        try:
            found[name] = float(amount)
        except ValueError:
            raise ValueError(
                f"the amount of {name!r} is not a number: {amount.strip()!r}"
            ) from None
        if found[name] < 0:
            raise ValueError(f"the amount of {name!r} is negative")
    return found
