"""The native worker protocol (version 1) as the worker speaks it.

These mirror the server's wire format; the worker keeps its own copy because it imports
nothing of the server.
"""

from typing import Final, Literal

import msgspec

PROTOCOL: Final = 1

Stream = Literal["stdout", "stderr"]


class Register(msgspec.Struct, kw_only=True):
    protocol: int = PROTOCOL
    name: str
    # left out unless given, so the worker keeps the rules it has
    affinity: str | msgspec.UnsetType = msgspec.UNSET
    slots: int
    resources: dict[str, float] = msgspec.field(default_factory=dict)
    # left out unless given, so the worker keeps what it had (and a server from before
    # placement, which refuses fields it does not know, still takes the registration)
    pool: str | msgspec.UnsetType = msgspec.UNSET
    apps: list[str] | msgspec.UnsetType = msgspec.UNSET


class Registered(msgspec.Struct, kw_only=True):
    protocol: int
    name: str
    heartbeat_interval: float
    pick_wait: float
    worker_timeout: float


class Chunk(msgspec.Struct, kw_only=True):
    """Output of one stream of a run, as it arrived."""

    stream: Stream
    data: str


class Ended(msgspec.Struct, kw_only=True, omit_defaults=True):
    event: int
    exit_code: int
    # the output not sent by heartbeats, in the order it arrived
    chunks: list[Chunk] = msgspec.field(default_factory=list)


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
    # a run of a service group: logger levels for the task's GENVID_LOGGERS_FILE
    loggers: dict[str, str] | None = None


class RunResult(msgspec.Struct, kw_only=True):
    event: int
    result: str


class Picked(msgspec.Struct, kw_only=True):
    protocol: int
    runs: list[Assignment]
    results: list[RunResult] = msgspec.field(default_factory=list)


class RunHeartbeat(msgspec.Struct, kw_only=True, omit_defaults=True):
    event: int
    chunks: list[Chunk] = msgspec.field(default_factory=list)


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
    # a run of a service group: its logger levels now, when the server tells them
    loggers: dict[str, str] | None = None


class HeartbeatAnswer(msgspec.Struct, kw_only=True):
    protocol: int
    runs: list[RunAnswer]


class Finish(Ended, kw_only=True):
    protocol: int = PROTOCOL


class Finished(msgspec.Struct, kw_only=True):
    protocol: int
    result: str
