"""The native worker protocol (version 1) as the worker speaks it.

These mirror the server's wire format; the worker keeps its own copy because it imports
nothing of the server.
"""

from typing import Final, Literal

import msgspec

PROTOCOL: Final = 1


class Register(msgspec.Struct, kw_only=True):
    protocol: int = PROTOCOL
    name: str
    affinity: str
    slots: int
    resources: dict[str, float] = msgspec.field(default_factory=dict)


class Registered(msgspec.Struct, kw_only=True):
    protocol: int
    name: str
    heartbeat_interval: float
    pick_wait: float
    worker_timeout: float


class Ended(msgspec.Struct, kw_only=True):
    event: int
    exit_code: int
    output: str = ""


class Pick(msgspec.Struct, kw_only=True):
    protocol: int = PROTOCOL
    slots: int
    wait: float | None = None
    finished: list[Ended] = msgspec.field(default_factory=list)


class Assignment(msgspec.Struct, kw_only=True):
    event: int
    job: int
    title: str
    command: str
    dir: str
    environment: str
    user: str
    progress_pattern: str
    timeout: int


class RunResult(msgspec.Struct, kw_only=True):
    event: int
    result: str


class Picked(msgspec.Struct, kw_only=True):
    protocol: int
    runs: list[Assignment]
    results: list[RunResult] = msgspec.field(default_factory=list)


class RunHeartbeat(msgspec.Struct, kw_only=True):
    event: int
    output: str = ""


class Heartbeat(msgspec.Struct, kw_only=True):
    protocol: int = PROTOCOL
    runs: list[RunHeartbeat]
    cpu: list[float] | None = None
    free_memory: int | None = None
    total_memory: int | None = None


class RunAnswer(msgspec.Struct, kw_only=True):
    event: int
    action: Literal["continue", "stop"]
    reason: str = ""


class HeartbeatAnswer(msgspec.Struct, kw_only=True):
    protocol: int
    runs: list[RunAnswer]


class Finish(Ended, kw_only=True):
    protocol: int = PROTOCOL


class Finished(msgspec.Struct, kw_only=True):
    protocol: int
    result: str
