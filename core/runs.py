"""Runs: a leaf running on a worker, from its start to its end, and the periodic passes
that end runs on their own (timeouts, lost workers) or release delayed retries.

Policy comes from the hooks (retry, timeout, lifecycle); every change is one transaction.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal

import asyncpg
import msgspec

from core import loggers, logs, metrics, progress
from core.config import Config
from core.db import Conn, Database
from core.errors import Invalid, NotFound
from core.hookspecs import JobState, JobView, RetryDecision, RunOutcome, RunView, WorkerState
from core.logs import LogChunk
from core.notify import Notifier
from core.pings import Machine, Pings
from core.plugins import Plugins
from core.sql import Queries
from core.views import job_view

Q = Queries("runs.sql")
DISPATCH = Queries("dispatch.sql")

# one advisory lock per periodic pass, so replicas take turns
_PASS_LOCK = {"timeouts": 2, "lost_workers": 3, "release": 4}


class Assignment(msgspec.Struct, frozen=True):
    """A run handed to a worker's pick: what to run and where."""

    event: int
    job: int
    title: str
    command: str
    dir: str
    environment: str
    user: str
    progress_pattern: str
    timeout: int
    # the job type revision the job was made from: its secret settings join the
    # environment as the run is handed over
    revision: int | None = None
    # the service group (core.services) the job is an allocation of
    service: int | None = None
    # a run of a service group: the effective logger levels (logger -> level), which the
    # worker keeps in the file it names to the task as GENVID_LOGGERS_FILE
    loggers: dict[str, str] | None = None


class Started(msgspec.Struct, frozen=True):
    worker: str
    run: Assignment


class RunReport(msgspec.Struct, frozen=True):
    """What a worker tells of one of its runs at a heartbeat."""

    event: int
    # stdout, from workers that do not tell the streams apart (legacy ones, and native
    # ones before chunks); it comes before `chunks`
    output: bytes = b""
    # the output since the last report, stream by stream in the order it arrived
    chunks: tuple[LogChunk, ...] = ()

    def pieces(self) -> list[LogChunk]:
        """The output in arrival order, without empty pieces."""
        return logs.joined((LogChunk("stdout", self.output), *self.chunks))

    def size(self) -> int:
        return len(self.output) + sum(len(c.data) for c in self.chunks)


class RunStatus(msgspec.Struct, frozen=True):
    """The answer to a heartbeat for one run: go on, or stop and why."""

    event: int
    action: Literal["continue", "stop"]
    reason: str = ""
    # a run of a service group: its effective logger levels now
    loggers: dict[str, str] | None = None


FinishResult = Literal["FINISHED", "ERROR", "RETRY", "IGNORED"]
# what a caller does in the transaction that ends a run, once the outcome is known
AfterEnd = Callable[[Conn, FinishResult, JobView], Awaitable[None]]


async def start_runs(
    conn: Conn, jobs: Sequence[int], workers: Sequence[str], handed: Sequence[bool]
) -> list[Started]:
    """Start each job on its worker (pairwise) where it is still ready; the runs started.
    The runs `handed` (pairwise) are the caller's to give to a pick waiting in this
    process; the others are delivered to the worker's next pick, in any process."""
    rows = await conn.fetch(Q["start_runs"], list(jobs), list(workers), list(handed))
    return [Started(r["worker"], Assignment(*(r[k] for k in ASSIGNMENT_COLUMNS))) for r in rows]


def with_environment(environment: str, more: dict[str, str]) -> str:
    """`K=V` lines with `more` of them (later lines win where the worker reads them)."""
    lines = [environment] if environment else []
    return "\n".join([*lines, *(f"{k}={v}" for k, v in more.items())])


# the columns of a run as the queries answer it; its loggers join at the pick
ASSIGNMENT_COLUMNS = tuple(f for f in Assignment.__struct_fields__ if f != "loggers")


class Runs:
    def __init__(self, db: Database, config: Config, plugins: Plugins) -> None:
        self._db = db
        self._config = config
        self._plugins = plugins
        self._notifier = Notifier(plugins)
        self._pings = Pings(db)
        self._born = time.monotonic()

    def ends_quietly(self) -> bool:
        """Whether a run that exits with code 0 just ends: no plugin hears of the change,
        so the end needs no more than one statement."""
        return not self._plugins.implements("corral_job_state_changed")

    async def finish(
        self,
        worker: str | None,
        event: int,
        exit_code: int,
        *,
        permanent: bool = False,
        then: AfterEnd | None = None,
    ) -> FinishResult:
        """A worker's run ended with `exit_code`. The retry policy decides what follows a
        failure, unless the failure is `permanent` (the job goes to ERROR). IGNORED when
        the run had already been stopped (paused, reset, ...). `then` runs in the same
        transaction once the outcome is known (not for IGNORED runs)."""
        quiet = exit_code == 0 and then is None and self.ends_quietly()
        if quiet and await self._end_quietly(worker, event, None):
            return "FINISHED"

        async def work(conn: Conn) -> tuple[FinishResult, JobView | None, JobState]:
            row = await conn.fetchrow(Q["lock_run"], event, worker)
            if row is None:
                if worker is not None and await conn.fetchval(Q["worker_known"], worker) is None:
                    raise NotFound(f"worker {worker!r} is not registered")
                return "IGNORED", None, "WORKING"
            job = await self._job(conn, row)
            ended: tuple[FinishResult, JobView, JobState]
            if exit_code == 0:
                new = await _end(conn, event, exit_code, "FINISHED", 0.0, "FINISHED", "")
                ended = "FINISHED", job, new
            elif permanent:
                new = await _end(conn, event, exit_code, "ERROR", 0.0, "ERROR", "")
                ended = "ERROR", job, new
            else:
                outcome = RunOutcome(run=_run_view(row, job), exit_code=exit_code, timed_out=False)
                ended = await self._fail(conn, job, outcome, "ERROR", "")
            if then is not None:
                await then(conn, ended[0], job)
            return ended

        result, job, new = await self._db.transact(work)
        if result != "IGNORED":
            (metrics.runs_finished if result == "FINISHED" else metrics.runs_failed).inc()
        if job is not None:
            await self._notifier.jobs_changed([(job, "WORKING", new)])
        return result

    def check(self, reports: Sequence[RunReport]) -> None:
        """Refuse reports over the size bound (`limits.max_log_chunk`, both streams
        together), before anything of the request is written."""
        limit = self._config.limits.max_log_chunk
        for report in reports:
            size = report.size()
            if size > limit:
                raise Invalid(
                    f"the output of run {report.event} is {size} bytes; send "
                    f"at most {limit} bytes per run in one request"
                )

    async def heartbeat(
        self, worker: str, machine: Machine, reports: Sequence[RunReport]
    ) -> list[RunStatus] | None:
        """A worker is alive and tells how its runs go; None if it is not registered."""
        self.check(reports)
        metrics.heartbeats.inc()

        if not reports:
            return [] if await self._pings.ping(worker, machine) else None

        async def work(conn: Conn) -> list[RunStatus]:
            events = [r.event for r in reports]
            states = {r["id"]: r for r in await conn.fetch(Q["run_states"], worker, events)}
            answers: list[RunStatus] = []
            for report in reports:
                row = states.get(report.event)
                if row is None:
                    answers.append(RunStatus(report.event, "stop", "unknown run"))
                    continue
                if row["state"] != "WORKING" or row["job"] is None:
                    answers.append(RunStatus(report.event, "stop", row["reason"] or "stopped"))
                    continue
                await self._record(
                    conn, row["job"], report.event, row["progress_pattern"], report.pieces()
                )
                answers.append(RunStatus(report.event, "continue"))
            services = {
                states[a.event]["job"]: i
                for i, a in enumerate(answers)
                if a.action == "continue" and states[a.event]["service_group"] is not None
            }
            if services:
                # a service run's logger levels may have changed since it started
                levels = await loggers.effective(conn, list(services))
                for job, i in services.items():
                    answers[i] = msgspec.structs.replace(answers[i], loggers=levels[job])
            return answers

        # the worker's own row goes with the idle heartbeats' next batch (one statement for
        # many workers), beside the transaction of its runs; its runs are found by worker,
        # so an unknown worker's report changes nothing
        known, answers = await asyncio.gather(
            self._pings.ping(worker, machine), self._db.transact(work)
        )
        return answers if known else None

    async def finish_job(self, worker: str, job: int, exit_code: int) -> FinishResult:
        """The run of `job` on `worker` ended with `exit_code`, for a worker that names the
        job rather than the run (a Coalition worker's endjob); IGNORED when the job does
        not run there. An exit with 0 that no plugin hears of is one statement."""
        if exit_code == 0 and self.ends_quietly() and await self._end_quietly(worker, None, job):
            return "FINISHED"
        event = await self.current_event(job, worker)
        if event is None:
            return "IGNORED"
        return await self.finish(worker, event, exit_code)

    async def _end_quietly(self, worker: str | None, event: int | None, job: int | None) -> bool:
        """The hot path of a run exiting with 0 (nothing to decide, no one to tell): one
        statement; False when the run (`event`, or `job`'s current one) was not current."""
        ended = await self._db.statement(
            lambda c: c.fetchrow(
                Q["end_run"], event, 0, "FINISHED", 0.0, "FINISHED", "", worker, job
            )
        )
        if ended is None:
            return False
        metrics.runs_finished.inc()
        return True

    async def current_event(self, job: int, worker: str) -> int | None:
        """The event of `job`'s run on `worker`, if it runs there now."""

        async def work(conn: Conn) -> int | None:
            event: int | None = await conn.fetchval(Q["current_run"], job, worker)
            return event

        return await self._db.read(work)

    # -- periodic passes ----------------------------------------------------------------

    async def expire_timeouts(self) -> int:
        """Stop the runs the timeout policy says have overrun; how many."""

        async def work(conn: Conn) -> list[tuple[JobView, JobState]]:
            if not await _try_lock(conn, "timeouts"):
                return []
            now: float = await conn.fetchval(Q["now"])
            changed: list[tuple[JobView, JobState]] = []
            names = await _names(conn)
            for row in await conn.fetch(Q["running"]):
                job = job_view(row, names)
                run = _run_view(row, job, now)
                decision = self._plugins.hook.corral_timeout(run=run, now=now)
                if decision is None:
                    continue
                locked = await conn.fetchrow(Q["lock_run"], row["event"], None)
                if locked is None:
                    continue
                outcome = RunOutcome(run=run, exit_code=None, timed_out=True)
                _, _, new = await self._fail(conn, job, outcome, "TIMEOUT", decision.reason)
                changed.append((job, new))
            return changed

        changed = await self._db.transact(work)
        metrics.runs_failed.inc(len(changed))
        await self._notifier.jobs_changed([(job, "WORKING", new) for job, new in changed])
        return len(changed)

    async def lose_workers(self) -> list[str]:
        """Workers silent past the worker timeout go to TIMEOUT; their jobs are queued
        again. The names of the workers lost."""
        silence = self._config.dispatch.worker_timeout
        if time.monotonic() - self._born < silence:
            # workers may still be finding their way back after this server was down
            return []

        async def work(conn: Conn) -> list[tuple[str, WorkerState]]:
            if not await _try_lock(conn, "lost_workers"):
                return []
            lost = [(r["name"], r["old"]) for r in await conn.fetch(Q["lose_workers"], silence)]
            # the reasons of lost runs are named in corral_lost_reasons() (migration 0007)
            stopped: list[int] = []
            if lost:
                names = [name for name, _ in lost]
                rows = await conn.fetch(Q["interrupt_runs"], [], names, "TIMEOUT", "worker lost")
                stopped += [r["job_id"] for r in rows]
            forgotten = [r["id"] for r in await conn.fetch(Q["unreported_runs"], silence)]
            if forgotten:
                rows = await conn.fetch(
                    Q["interrupt_runs"], forgotten, [], "TIMEOUT", "its worker stopped reporting it"
                )
                stopped += [r["job_id"] for r in rows]
            if stopped:
                # a job of a job type runs max_tries times at most, lost runs counted
                await conn.execute(Q["fail_exhausted"], stopped)
            return lost

        lost = await self._db.transact(work)
        for name, old in lost:
            await self._notifier.worker_changed(name, old, "TIMEOUT")
        return [name for name, _ in lost]

    async def release_held(self) -> None:
        """Let delayed retries whose time has come run."""

        async def work(conn: Conn) -> None:
            if await _try_lock(conn, "release"):
                await conn.execute(Q["release_held"])

        await self._db.transact(work)

    # -- the parts ----------------------------------------------------------------------

    async def _fail(
        self, conn: Conn, job: JobView, outcome: RunOutcome, event_state: str, reason: str
    ) -> tuple[FinishResult, JobView, JobState]:
        counted = msgspec.structs.replace(job, run_done=job.run_done + 1)
        decision: RetryDecision | None = self._plugins.hook.corral_retry(
            job=counted, outcome=outcome
        )
        event = outcome.run.event
        exit_code = outcome.exit_code
        if decision is not None and decision.action == "requeue":
            new = await _end(conn, event, exit_code, "WAITING", decision.delay, event_state, reason)
            return "RETRY", job, new
        new = await _end(conn, event, exit_code, "ERROR", 0.0, event_state, reason)
        return "ERROR", job, new

    async def _job(self, conn: Conn, row: asyncpg.Record) -> JobView:
        return job_view(row, await _names(conn))

    async def _record(
        self, conn: Conn, job: int, event: int, pattern: str, pieces: Sequence[LogChunk]
    ) -> None:
        figure: float | None = None
        if pieces:
            if pattern:
                # progress is read from the merged log, both streams as they arrived
                tail = bytes(await conn.fetchval(Q["log_tail"], job))[-progress.TAIL_BYTES :]
                figure = progress.parse(
                    pattern,
                    tail.decode("utf-8", errors="replace"),
                    b"".join(p.data for p in pieces).decode("utf-8", errors="replace"),
                )
            if await logs.append(conn, job, pieces, event, figure):
                return
        await conn.execute(Q["ping_job"], job, event, figure)


async def _end(
    conn: Conn,
    event: int,
    exit_code: int | None,
    job_state: str,
    delay: float,
    event_state: str,
    reason: str,
) -> JobState:
    """End a run; the job's state after it (WAITING ones may not run for `delay` s)."""
    row = await conn.fetchrow(
        Q["end_run"], event, exit_code, job_state, delay, event_state, reason, None, None
    )
    assert row is not None, "the run was locked as current"
    new: JobState = row["state"]
    return new


def _run_view(row: asyncpg.Record, job: JobView, now: float | None = None) -> RunView:
    started: float = row["start"]
    return RunView(
        job=job,
        worker=row["worker"],
        event=row["event"],
        started=started,
        elapsed=(time.time() if now is None else now) - started,
    )


async def _names(conn: Conn) -> dict[int, str]:
    return {r["id"]: r["name"] for r in await conn.fetch(DISPATCH["affinity_names"])}


async def _try_lock(conn: Conn, name: str) -> bool:
    locked: bool = await conn.fetchval(
        "SELECT pg_try_advisory_xact_lock(7221, $1)", _PASS_LOCK[name]
    )
    return locked
