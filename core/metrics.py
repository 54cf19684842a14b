"""What Corral counts for a studio's monitoring (`GET /metrics`, docs/operations.md).

Two kinds of figures. Those of this process (runs it started and ended, its dispatch
passes and picks, heartbeats, HTTP requests) are counters and histograms labelled with
the process, so that the figures of several server processes on one database add up in
the monitoring, never overwrite each other. Those of the farm (jobs and workers by state)
are read from the database at each scrape, so every process answers the same.
"""

import os
import socket
from collections.abc import Iterator, Mapping

import msgspec
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.db import Conn, Database
from core.sql import Queries

Q = Queries("metrics.sql")

# the label that tells the figures of one server process from another's
PROCESS = f"{socket.gethostname()}:{os.getpid()}"

# one registry for the process: every app of the process (tests run several) adds to it
REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

_runs_started = Counter(
    "corral_runs_started", "Runs this process started", ["process"], registry=REGISTRY
)
_runs_finished = Counter(
    "corral_runs_finished", "Runs ended with exit code 0", ["process"], registry=REGISTRY
)
_runs_failed = Counter(
    "corral_runs_failed",
    "Runs ended with another exit code or stopped for their timeout",
    ["process"],
    registry=REGISTRY,
)
_heartbeats = Counter(
    "corral_heartbeats", "Worker heartbeats answered", ["process"], registry=REGISTRY
)
_pass_seconds = Histogram(
    "corral_dispatch_pass_seconds",
    "Planning passes that planned, from start to commit",
    ["process"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
_pick_seconds = Histogram(
    "corral_pick_seconds",
    "Picks answered with work, from the pick's arrival to its answer",
    ["process"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
_http_requests = Counter(
    "corral_http_requests",
    "HTTP requests answered, by route and status",
    ["process", "method", "route", "status"],
    registry=REGISTRY,
)

runs_started = _runs_started.labels(PROCESS)
runs_finished = _runs_finished.labels(PROCESS)
runs_failed = _runs_failed.labels(PROCESS)
heartbeats = _heartbeats.labels(PROCESS)
pass_seconds = _pass_seconds.labels(PROCESS)
pick_seconds = _pick_seconds.labels(PROCESS)


def http_request(method: str, route: str, status: int) -> None:
    _http_requests.labels(PROCESS, method, route, str(status)).inc()


class Farm:
    """The farm's figures at one moment, as the database counts them."""

    def __init__(self, jobs: Mapping[str, int], workers: Mapping[str, int]) -> None:
        self.jobs = jobs
        self.workers = workers


async def farm(db: Database) -> Farm:
    async def work(conn: Conn) -> Farm:
        row = await conn.fetchrow(Q["farm"])
        assert row is not None
        counts = msgspec.json.Decoder(dict[str, int])
        return Farm(counts.decode(row["jobs"]), counts.decode(row["workers"]))

    return await db.read(work)


class _FarmCollector(Collector):
    def __init__(self, farm: Farm) -> None:
        self._farm = farm

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("corral_jobs", "Jobs (not groups) by state", labels=["state"])
        for state, n in sorted(self._farm.jobs.items()):
            jobs.add_metric([state], n)
        yield jobs
        workers = GaugeMetricFamily(
            "corral_workers",
            "Workers by state (STOPPED: told to take no work)",
            labels=["state"],
        )
        for state, n in sorted(self._farm.workers.items()):
            workers.add_metric([state], n)
        yield workers


def exposition(farm: Farm) -> bytes:
    """The Prometheus text of this process's figures and the farm's."""
    figures = CollectorRegistry(auto_describe=False)
    figures.register(_FarmCollector(farm))
    return generate_latest(REGISTRY) + generate_latest(figures)
