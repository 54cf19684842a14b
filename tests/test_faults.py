"""Fault injection on a real farm, on loopback only and bounded in time: the server killed
mid-run, PostgreSQL stopped mid-run, workers killed mid-job, three servers sharing one
database. Each test checks on the `events` table that nothing is lost (every job ends
FINISHED, with exactly one FINISHED run) and that no job ever ran twice at once, and
reports how many faults it injected, how many jobs ran and how many were lost.

The last two tests pin two server bugs these tests found: a request whose connection
died answered 500 instead of 503, and a run handed to a pick that had stopped waiting."""

import asyncio
import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pgserver
import pytest

from core.config import Config
from core.db import Database
from core.models import JobSpec
from core.plugins import Plugins
from core.runs import Assignment
from core.service import Core
from tests.conftest import Sql
from tests.processes import Processes, Served, Worker

PG_BIN = Path(pgserver.__file__).resolve().parent / "pginstall" / "bin"
# how long the PostgreSQL outage of the second test lasts
OUTAGE = 10.0
# generous: other test runs share this machine's two cores
DEADLINE = 300.0
RecordProperty = Callable[[str, object], None]


# -- helpers ------------------------------------------------------------------------------


def wait_for(check: Callable[[], bool], seconds: float, every: float = 0.25) -> bool:
    """Poll `check` until it holds (True) or `seconds` pass (False)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


def until(what: str, check: Callable[[], bool], seconds: float = DEADLINE) -> None:
    if not wait_for(check, seconds):
        raise AssertionError(f"still not {what} after {seconds} s")


def write_config(
    path: Path, *, worker_timeout: float, pick_wait: float, database_url: str | None = None
) -> Path:
    # the access log counts the workers' 503s in the outage
    server = "[server]\naccess_log = true\n"
    if database_url:
        server += f'database_url = "{database_url}"\n'
    path.write_text(
        f"""{server}
[dispatch]
interval = 0.5
pick_wait = {pick_wait}
worker_timeout = {worker_timeout}
timeout_interval = 0.3
dead_worker_interval = 0.3
retry_interval = 0.2
"""
    )
    return path


def start_farm(processes: Processes, servers: list[Served], workers: int) -> list[Worker]:
    """`workers` one-slot workers spread over `servers` (just started), started meanwhile:
    they retry until their server answers. Returns once the servers answer."""
    started = [
        processes.worker(servers[i % len(servers)].url, f"node-{i:02d}", slots=1)
        for i in range(workers)
    ]
    for server in servers:
        server.wait_ready()
    return started


def registered(sql: Sql) -> int:
    count: int = sql.fetchval("SELECT count(*) FROM workers")
    return count


def submit_batch(server: Served, title: str, count: int, command: str) -> tuple[int, list[int]]:
    """A group of `count` leaves running `command`, through the bulk path."""
    response = httpx.put(f"{server.url}/api/jobs", json={"title": title}, timeout=60)
    assert response.status_code == 200, response.text
    group: int = response.json()
    jobs = [{"title": f"{title} {i}", "command": command} for i in range(count)]
    response = httpx.post(
        f"{server.url}/api/v2/jobs/bulk", json={"parent": group, "jobs": jobs}, timeout=120
    )
    assert response.status_code == 200, response.text
    ids: list[int] = response.json()["ids"]
    assert len(ids) == count == len(set(ids))
    return group, ids


def finished(sql: Sql, ids: list[int]) -> int:
    count: int = sql.fetchval(
        "SELECT count(*) FROM jobs WHERE id = ANY($1::bigint[]) AND state = 'FINISHED'", ids
    )
    return count


def group_counters(server: Served, group: int) -> tuple[int, int, str]:
    found: dict[str, Any] = httpx.get(f"{server.url}/api/jobs/{group}", timeout=60).json()
    return found["total"], found["total_finished"], found["state"]


def server_errors(*servers: Served) -> list[str]:
    """Log lines of 500 answers or internal errors (never expected, whatever the fault)."""
    bad = re.compile(r'" 500 |internal error on ')
    return [line for s in servers for line in s.output().splitlines() if bad.search(line)]


def internal_errors(log: str) -> list[str]:
    """The 500s in a server log, each its request and last traceback line."""
    records = re.findall(
        r"internal error on (\S+ \S+)\n(.*?)(?=\n(?:INFO|WARNING|ERROR|CRITICAL)\b|\Z)",
        log,
        flags=re.DOTALL,
    )
    found = [f"{request}: {trace.strip().splitlines()[-1:]}" for request, trace in records]
    answered = len(re.findall(r'" 500 ', log))
    if answered != len(records):
        found.append(f"{answered} answers 500 for {len(records)} internal errors logged")
    return found


@dataclass
class Run:
    event: int
    worker: str
    state: str
    reason: str
    start: float
    end: float


@dataclass
class Outcome:
    """What became of a batch of jobs, from the jobs and events tables."""

    jobs: int
    runs: dict[int, list[Run]]
    # not FINISHED, or without a FINISHED run
    lost: list[int] = field(default_factory=list)
    # more than one FINISHED run, or a run after the FINISHED one
    finished_twice: list[int] = field(default_factory=list)
    # two runs whose [start, start + duration] intersect, or a run still WORKING
    overlapping: list[int] = field(default_factory=list)

    @property
    def events(self) -> int:
        return sum(len(r) for r in self.runs.values())

    @property
    def reruns(self) -> int:
        """Jobs that ran more than once (one after the other)."""
        return sum(1 for r in self.runs.values() if len(r) > 1)

    def interrupted(self) -> dict[str, int]:
        """How the runs that did not finish ended, and why."""
        ended = Counter(
            f"{run.state}: {run.reason}"
            for runs in self.runs.values()
            for run in runs
            if run.state != "FINISHED"
        )
        return dict(ended)

    def problems(self) -> str:
        return (
            f"lost {self.lost[:20]} ({len(self.lost)}), finished twice "
            f"{self.finished_twice[:20]} ({len(self.finished_twice)}), overlapping runs "
            f"{self.overlapping[:20]} ({len(self.overlapping)})"
        )


def outcome(sql: Sql, ids: list[int]) -> Outcome:
    states = {
        r["id"]: r["state"]
        for r in sql.fetch("SELECT id, state FROM jobs WHERE id = ANY($1::bigint[])", ids)
    }
    runs: dict[int, list[Run]] = defaultdict(list)
    for r in sql.fetch(
        "SELECT id, job_id, worker, state, coalesce(reason, '') AS reason, start,"
        " start + duration AS finish FROM events WHERE job_id = ANY($1::bigint[])"
        " ORDER BY job_id, id",
        ids,
    ):
        runs[r["job_id"]].append(
            Run(r["id"], r["worker"], r["state"], r["reason"], r["start"], r["finish"])
        )
    result = Outcome(jobs=len(ids), runs=runs)
    for job in ids:
        mine = runs.get(job, [])
        done = [r for r in mine if r.state == "FINISHED"]
        if states.get(job) != "FINISHED" or not done:
            result.lost.append(job)
        if len(done) > 1 or (done and mine[-1] is not done[0]):
            result.finished_twice.append(job)
        if any(r.state == "WORKING" for r in mine) or any(
            a.start < b.end and b.start < a.end for i, a in enumerate(mine) for b in mine[i + 1 :]
        ):
            result.overlapping.append(job)
    return result


def report(
    record_property: RecordProperty,
    test: str,
    faults: int,
    result: Outcome,
    started: float,
    **more: object,
) -> None:
    """Print and record the figures the fault tests are asked to report."""
    figures: dict[str, object] = {
        "faults_injected": faults,
        "jobs": result.jobs,
        "jobs_run": result.jobs - len(result.lost),
        "jobs_lost": len(result.lost),
        "runs": result.events,
        "jobs_rerun": result.reruns,
        "finished_twice": len(result.finished_twice),
        "overlapping": len(result.overlapping),
        "interrupted_runs": result.interrupted(),
        **more,
        "seconds": round(time.monotonic() - started, 1),
    }
    for name, value in figures.items():
        record_property(name, value)
    print(f"\n[faults] {test}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


def assert_nothing_lost(result: Outcome) -> None:
    assert not result.lost, result.problems()
    assert not result.finished_twice, result.problems()
    assert not result.overlapping, result.problems()
    assert sum(1 for r in result.runs.values() for x in r if x.state == "FINISHED") == result.jobs


# -- 1. the server killed mid-run ---------------------------------------------------------


def test_server_killed_mid_run_loses_nothing(
    processes: Processes,
    database_url: str,
    sql: Sql,
    tmp_path: Path,
    record_property: RecordProperty,
) -> None:
    started = time.monotonic()
    # the outage (a restart, plus the workers' backoff) fits in the worker timeout; a
    # hand-over lost with the server is queued again once the timeout has passed
    config = write_config(
        tmp_path / "corral.toml", worker_timeout=10, pick_wait=5, database_url=database_url
    )
    first = processes.serve(["--config", str(config)])
    workers = start_farm(processes, [first], 20)
    total = 2000
    group, ids = submit_batch(first, "batch", total, "true")
    until("20 workers registered", lambda: registered(sql) == 20)

    until("a quarter done", lambda: finished(sql, ids) >= total // 4)
    first.process.send_signal(signal.SIGKILL)
    first.process.wait()
    done_at_kill = finished(sql, ids)
    running_at_kill = sql.fetchval(
        "SELECT count(*) FROM events WHERE job_id = ANY($1::bigint[]) AND state = 'WORKING'", ids
    )
    assert done_at_kill < total, "the server was killed mid-run"

    second = processes.serve(["--config", str(config)], port=first.port)
    second.wait_ready()
    all_done = wait_for(lambda: finished(sql, ids) == total, DEADLINE)
    result = outcome(sql, ids)
    used = sql.fetchval(
        "SELECT count(DISTINCT worker) FROM events WHERE job_id = ANY($1::bigint[])", ids
    )
    saw_outage = sum(1 for w in workers if "server unreachable" in w.output())
    report(
        record_property,
        "server SIGKILL mid-run",
        1,
        result,
        started,
        finished_at_kill=done_at_kill,
        running_at_kill=running_at_kill,
        workers_used=used,
        workers_saw_outage=saw_outage,
    )
    assert all_done, f"{total - finished(sql, ids)} jobs not finished; {result.problems()}"
    assert_nothing_lost(result)
    assert group_counters(second, group) == (total, total, "FINISHED")
    assert saw_outage > 0, "the workers found the server gone"
    assert all(w.alive() for w in workers), "the workers rode out the outage"
    assert server_errors(first, second) == []


# -- 2. PostgreSQL stopped mid-run --------------------------------------------------------


class EmbeddedPostgres:
    """Stops and starts, behind the server's back, the PostgreSQL that `corral serve
    --data-dir` started, with the options pgserver starts it with."""

    def __init__(self, pgdata: Path, output: Path) -> None:
        self.pgdata = pgdata
        self.output = output
        # postmaster.pid: pid, data dir, start time, port, socket directory, ...
        self.socket_dir = (pgdata / "postmaster.pid").read_text().splitlines()[4]
        self.url = f"postgresql://postgres:@/postgres?host={self.socket_dir}"

    def pg_ctl(self, *args: str, check: bool = True) -> None:
        # as root, pgserver runs PostgreSQL as the system user `pgserver`
        with self.output.open("ab") as out:
            subprocess.run(
                [str(PG_BIN / "pg_ctl"), "-D", str(self.pgdata), *args],
                check=check,
                user=_pg_user(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=120,
            )

    def stop(self, mode: str) -> None:
        self.pg_ctl("-w", "-t", "60", "-m", mode, "stop")

    def start(self) -> None:
        self.pg_ctl(
            "-w",
            "-t",
            "60",
            "-o",
            '-h ""',
            "-o",
            f"-k {self.socket_dir}",
            "-l",
            str(self.pgdata / "log"),
            "start",
        )

    def running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists()


def _pg_user() -> str | None:
    return "pgserver" if os.geteuid() == 0 else None


@pytest.fixture
def embedded_farm(
    processes: Processes, tmp_path: Path
) -> Iterator[tuple[Served, EmbeddedPostgres]]:
    """`corral serve` with its own embedded PostgreSQL in a temporary data directory, so
    stopping that PostgreSQL leaves the session's test database alone."""
    config = write_config(tmp_path / "corral.toml", worker_timeout=30, pick_wait=5)
    pgdata = tmp_path / "data" / "pg"
    server = processes.serve(["--config", str(config), "--data-dir", str(tmp_path / "data")])
    try:
        server.wait_ready()
        yield server, EmbeddedPostgres(pgdata, tmp_path / "pg_ctl.out")
    finally:
        if server.alive():
            try:
                server.stop()
            except subprocess.TimeoutExpired:
                server.kill()
        # a PostgreSQL started again behind the server's back is not the one it stops
        if (pgdata / "postmaster.pid").exists():
            EmbeddedPostgres(pgdata, tmp_path / "pg_ctl.out").pg_ctl(
                "-w", "-t", "60", "-m", "immediate", "stop", check=False
            )


def test_postgres_stopped_mid_run_answers_503_then_recovers(
    processes: Processes,
    embedded_farm: tuple[Served, EmbeddedPostgres],
    record_property: RecordProperty,
) -> None:
    started = time.monotonic()
    server, postgres = embedded_farm
    sql = Sql(postgres.url)
    workers = start_farm(processes, [server], 8)
    total = 400
    group, ids = submit_batch(server, "batch", total, "true")
    until("8 workers registered", lambda: registered(sql) == 8)
    until("a quarter done", lambda: finished(sql, ids) >= total // 4)

    postgres.stop("fast")
    assert not postgres.running()
    statuses: Counter[int] = Counter()
    malformed: list[str] = []
    writes = 0
    outage_ends = time.monotonic() + OUTAGE
    next_write = 0.0
    while time.monotonic() < outage_ends:
        answers = [httpx.get(f"{server.url}/api/jobs/{group}", timeout=60)]
        if time.monotonic() >= next_write:
            # a write refused while the database is away must change nothing
            answers.append(
                httpx.put(f"{server.url}/api/jobs", json={"title": "in the outage"}, timeout=60)
            )
            writes += 1
            next_write = time.monotonic() + 1
        for answer in answers:
            statuses[answer.status_code] += 1
            if answer.status_code == 503 and (
                answer.headers.get("content-type") != "application/json"
                or answer.json().get("status_code") != 503
                or answer.headers.get("retry-after") != "1"
            ):
                malformed.append(f"{answer.headers} {answer.text}")
        time.sleep(0.2)
    assert server.alive(), f"corral serve died with its database:\n{server.output()}"

    postgres.start()
    back = time.monotonic()
    recovered = wait_for(
        lambda: httpx.get(f"{server.url}/api/jobs/{group}", timeout=60).status_code == 200,
        120,
    )
    recovery = round(time.monotonic() - back, 1)
    # the wake-up listener is back too: its connection's last statement was a LISTEN
    listening = recovered and wait_for(
        lambda: (
            sql.fetchval("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'") >= 1
        ),
        60,
    )
    all_done = recovered and wait_for(lambda: finished(sql, ids) == total, DEADLINE)
    result = outcome(sql, ids) if recovered else Outcome(jobs=total, runs={}, lost=list(ids))
    log = server.output()
    errors = internal_errors(log)
    report(
        record_property,
        "PostgreSQL stopped 10 s mid-run",
        1,
        result,
        started,
        test_answers=dict(statuses),
        worker_503s=len(re.findall(r'"POST /api/v2/workers/\S+ HTTP/1.1" 503', log)),
        internal_errors=len(errors),
        recovered_after_s=recovery if recovered else "never",
        listener_back=listening,
    )
    assert statuses[503] > 0, f"answers in the outage: {statuses}"
    assert set(statuses) == {503}, f"answers in the outage: {statuses}"
    assert malformed == [], malformed[:3]
    assert writes > 0
    assert errors == []
    assert recovered, "the server did not recover once PostgreSQL was back"
    assert listening, "the wake-up listener did not reconnect"
    assert "cannot listen for wake-ups; trying again" in log
    assert all_done, f"{total - finished(sql, ids)} jobs not finished; {result.problems()}"
    assert_nothing_lost(result)
    assert sql.fetchval("SELECT count(*) FROM jobs WHERE title = 'in the outage'") == 0
    assert group_counters(server, group) == (total, total, "FINISHED")
    assert all(w.alive() for w in workers), "the workers rode out the outage"


# -- 3. workers killed mid-job ------------------------------------------------------------


def test_workers_killed_mid_job_have_their_jobs_finished_elsewhere(
    processes: Processes,
    database_url: str,
    sql: Sql,
    tmp_path: Path,
    record_property: RecordProperty,
) -> None:
    started = time.monotonic()
    config = write_config(
        tmp_path / "corral.toml", worker_timeout=4, pick_wait=2, database_url=database_url
    )
    server = processes.serve(["--config", str(config)])
    workers = start_farm(processes, [server], 8)
    total = 32
    # long enough that a doomed worker found mid-job is still in it when the kill comes,
    # however slow the machine is between the two
    group, ids = submit_batch(server, "batch", total, "sleep 4")
    doomed = workers[:4]
    names = [f"node-{i:02d}" for i in range(len(doomed))]

    def mid_job() -> bool:
        # each doomed worker has been running its current job for a while
        busy = sql.fetchval(
            "SELECT count(DISTINCT worker) FROM events WHERE worker = ANY($1::text[])"
            " AND state = 'WORKING' AND delivered AND start < corral_clock() - 0.3",
            names,
        )
        return bool(busy == len(names))

    until("the doomed workers mid-job", mid_job)
    killed_at = time.time()
    for worker in doomed:
        worker.process.send_signal(signal.SIGKILL)
    for worker in doomed:
        worker.process.wait()
    # their commands, in sessions of their own, run on unsupervised and end by themselves
    victims = {
        r["job_id"]: r["worker"]
        for r in sql.fetch(
            "SELECT job_id, worker FROM events WHERE worker = ANY($1::text[])"
            " AND state = 'WORKING'",
            names,
        )
    }
    assert sorted(victims.values()) == names, "each killed worker was running a job"

    all_done = wait_for(lambda: finished(sql, ids) == total, DEADLINE)
    result = outcome(sql, ids)
    report(
        record_property,
        "workers SIGKILL mid-job",
        len(doomed),
        result,
        started,
        jobs_interrupted=len(victims),
    )
    assert all_done, f"{total - finished(sql, ids)} jobs not finished; {result.problems()}"
    assert_nothing_lost(result)
    for job, name in victims.items():
        runs = result.runs[job]
        first, last = runs[0], runs[-1]
        assert (first.worker, first.state, first.reason) == (name, "TIMEOUT", "worker lost"), (
            job,
            runs,
        )
        assert first.end >= killed_at, "queued again only once its worker was gone"
        assert last.state == "FINISHED", (job, runs)
        assert last.worker not in names, (job, runs)
    states = {
        r["name"]: r["state"]
        for r in sql.fetch("SELECT name, state FROM workers WHERE name = ANY($1::text[])", names)
    }
    assert states == dict.fromkeys(names, "TIMEOUT")
    assert group_counters(server, group) == (total, total, "FINISHED")
    assert server_errors(server) == []


# -- 4. three servers on one database -----------------------------------------------------


def test_three_servers_on_one_database_never_dispatch_a_job_twice(
    processes: Processes,
    database_url: str,
    sql: Sql,
    tmp_path: Path,
    record_property: RecordProperty,
) -> None:
    started = time.monotonic()
    # short enough that a hand-over lost to the race pinned by
    # test_a_run_planned_as_a_pick_stops_waiting_reaches_its_worker costs little time
    config = write_config(
        tmp_path / "corral.toml", worker_timeout=10, pick_wait=5, database_url=database_url
    )
    servers = [processes.serve(["--config", str(config)]) for _ in range(3)]
    workers = start_farm(processes, servers, 12)
    # every worker waits in a pick before the jobs come: the picks waiting on the other
    # two servers learn of a submission through LISTEN/NOTIFY
    until("12 workers registered", lambda: registered(sql) == 12)
    until(
        "12 picks waiting",
        lambda: sql.fetchval("SELECT count(*) FROM workers WHERE wanted > 0") == 12,
    )
    per_server = 300
    batches = [submit_batch(s, f"batch {i}", per_server, "true") for i, s in enumerate(servers)]
    ids = [job for _, batch in batches for job in batch]

    all_done = wait_for(lambda: finished(sql, ids) == len(ids), DEADLINE)
    result = outcome(sql, ids)
    used = {r["worker"] for r in sql.fetch("SELECT DISTINCT worker FROM events")}
    report(
        record_property,
        "three servers, one database",
        0,
        result,
        started,
        servers=len(servers),
        workers_used=len(used),
    )
    assert all_done, f"{len(ids) - finished(sql, ids)} jobs not finished; {result.problems()}"
    assert_nothing_lost(result)
    for i in range(len(servers)):
        own = {f"node-{n:02d}" for n in range(len(workers)) if n % len(servers) == i}
        assert own & used, f"the workers of server {i} took part"
    for group, _ in batches:
        for s in servers:
            assert group_counters(s, group) == (per_server, per_server, "FINISHED")
    assert server_errors(*servers) == []


# -- the server bugs these tests found --------------------------------------------------------


def test_a_request_in_flight_when_postgres_stops_gets_503(
    embedded_farm: tuple[Served, EmbeddedPostgres], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    server, postgres = embedded_farm
    sql = Sql(postgres.url)
    group = httpx.put(f"{server.url}/api/jobs", json={"title": "group"}, timeout=60).json()
    probe = httpx.post(f"{server.url}/api/v2/workers/register", json={"name": "probe"}, timeout=60)
    assert probe.status_code == 200, probe.text
    # another session holds the group's and the worker's rows, so these requests wait in
    # the database when it stops: a submission and a heartbeat (each in a transaction),
    # and a pick (single statements)
    with (tmp_path / "psql.out").open("wb") as out:
        holder = subprocess.Popen(
            [str(PG_BIN / "psql"), "-X", "-q", postgres.url],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    request.addfinalizer(holder.kill)
    assert holder.stdin is not None
    holder.stdin.write(
        f"BEGIN;\nSELECT 1 FROM jobs WHERE id = {group} FOR UPDATE;\n"
        "SELECT 1 FROM workers WHERE name = 'probe' FOR UPDATE;\n".encode()
    )
    holder.stdin.flush()
    until(
        "the rows held",
        lambda: (
            sql.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'psql'"
                " AND state = 'idle in transaction'"
            )
            == 1
        ),
    )
    requests = {
        "submit": ("PUT", "/api/jobs", {"parent": group, "title": "in flight", "command": "x"}),
        "heartbeat": ("POST", "/api/v2/workers/probe/heartbeat", {}),
        "pick": ("POST", "/api/v2/workers/probe/pick", {"wait": 0}),
    }
    answers: dict[str, httpx.Response] = {}

    def send(name: str) -> None:
        method, path, body = requests[name]
        answers[name] = httpx.request(method, f"{server.url}{path}", json=body, timeout=120)

    threads = [threading.Thread(target=send, args=(name,)) for name in requests]
    for thread in threads:
        thread.start()
    until(
        "the requests waiting in the database",
        lambda: (
            sql.fetchval("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            == len(requests)
        ),
    )
    postgres.stop("immediate")
    for thread in threads:
        thread.join(timeout=120)
    holder.stdin.close()
    holder.wait(timeout=60)
    postgres.start()
    until(
        "recovered",
        lambda: httpx.get(f"{server.url}/api/jobs", timeout=60).status_code == 200,
        seconds=120,
    )
    assert sql.fetchval("SELECT count(*) FROM jobs WHERE title = 'in flight'") == 0
    assert set(answers) == set(requests)
    statuses = {name: answer.status_code for name, answer in answers.items()}
    print(f"\n[faults] requests in flight when PostgreSQL stopped: {statuses}")
    # single statements: answered as the database being unavailable
    assert statuses["pick"] == 503, answers["pick"].text
    # transactions: the bug
    for name in ("submit", "heartbeat"):
        if statuses[name] != 503:
            raise AssertionError(f"{name} in flight got {statuses[name]}: {answers[name].text}")
    assert server_errors(server) == []


def test_a_run_planned_as_a_pick_stops_waiting_reaches_its_worker(
    database_url: str, config: Config, sql: Sql
) -> None:
    async def scenario() -> tuple[int, list[Assignment]]:
        db = await Database.connect(database_url)
        try:
            core = Core(db, config, Plugins(config.plugins))
            await core.workers.register("node-1", "127.0.0.1")
            job = await core.jobs.submit(JobSpec(title="frame", command="true"))
            deliver = core.picks._deliver

            async def pass_meanwhile(worker: str) -> list[Assignment]:
                # what the scheduler of the same process may do while the pick, its wait
                # over, asks the database for runs: a planning pass
                await core.planner.plan()
                return await deliver(worker)

            got: list[Assignment] = []
            core.picks._deliver = pass_meanwhile  # type: ignore[method-assign]
            picked = await core.picks.pick("node-1", 1, 0.05)
            got += picked.runs if picked else []
            core.picks._deliver = deliver  # type: ignore[method-assign]
            # the worker asks again, as `corral worker` does at once
            picked = await core.picks.pick("node-1", 1, 0.05)
            got += picked.runs if picked else []
            return job, got
        finally:
            await db.close()

    job, got = asyncio.run(scenario())
    [run] = sql.fetch("SELECT worker, state, delivered FROM events WHERE job_id = $1", job)
    assert (run["worker"], run["state"]) == ("node-1", "WORKING"), "the pass started the job"
    if [a.job for a in got] != [job]:
        raise AssertionError(
            f"job {job} runs on node-1 (event delivered={run['delivered']}) but its two "
            f"picks got {[a.job for a in got]}"
        )
