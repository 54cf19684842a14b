"""Dispatch: the planning pass that hands ready jobs to waiting workers, and the picks
that wait for it.

A worker's pick records its demand (free slots) and waits. A planning pass takes all the
demand at once, narrows the queue in SQL to the best few jobs of each affinity set a
worker may take, lets the policy hooks rank and admit them with the whole farm in view,
and starts every assignment in one transaction. Waiting picks are woken through
`LISTEN/NOTIFY`, so any server process may plan for a worker waiting on another.
"""

import asyncio
import contextlib
import heapq
import logging
import math
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from itertools import islice

import msgspec

from core import metrics
from core.config import Config
from core.db import Conn, Database
from core.hookspecs import DependencyView, FarmView, JobView, WorkerView
from core.job_types import TYPE_TAG
from core.notify import Notifier
from core.pings import Machine
from core.plugins import Plugins
from core.runs import ASSIGNMENT_COLUMNS, Assignment, Started, start_runs
from core.sql import Queries
from core.views import WorkerRow, farm_view, job_view, worker_view

Q = Queries("dispatch.sql")
log = logging.getLogger("corral.dispatch")

# The planner's own connection: planning one pass at a time, it needs no more than one,
# and it must never wait behind the requests for a pooled one (with hundreds of picks in
# flight, it did, for as long as the rest of the pass took). Its statements have one
# shape each, so it keeps one plan per statement instead of planning each start of runs
# again for the arrays it gets (a third of a pass for a single run).
PLANNING = {"plan_cache_mode": "force_generic_plan"}

# workers served by one pass at most; the rest wait for the next, oldest first
_MAX_DEMAND = 1000
# pages of candidates read for one worker at most when policies keep holding them back
_MAX_PAGES = 8


class _Candidate(msgspec.Struct):
    job: JobView
    has_dependencies: bool


class _Demand(WorkerRow, kw_only=True):
    """A worker waiting for work, as a pass reads it."""

    wanted: int


class _SetQueue:
    """The ready jobs of one affinity set read so far, best first."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids
        self.candidates: list[_Candidate] = []
        self.exhausted = False
        # candidates before this one are all taken by this pass
        self._first = 0

    def untaken(self, taken: set[int]) -> Iterator[_Candidate]:
        """The candidates not taken yet, best first. The best go first, so skipping the
        taken ones once here keeps a pass for many workers linear, not quadratic."""
        candidates = self.candidates
        while self._first < len(candidates) and candidates[self._first].job.id in taken:
            self._first += 1
        rest = (candidates[i] for i in range(self._first, len(candidates)))
        return (c for c in rest if c.job.id not in taken)


class Planner:
    def __init__(self, db: Database, config: Config, plugins: Plugins, picks: "Picks") -> None:
        self._db = db
        self._config = config
        self._plugins = plugins
        self._picks = picks
        self._notifier = Notifier(plugins)

    async def plan(self) -> list[Started]:
        """One planning pass; the runs it started (none if another process is planning).
        Picks waiting in this process get their runs straight from it."""
        views: dict[int, JobView] = {}
        claims: dict[str, _Waiter] = {}
        began = time.perf_counter()
        try:
            started = await self._db.transact(lambda c: self._pass(c, views, claims))
        except BaseException:
            self._picks.release(claims)
            raise
        if started:
            metrics.pass_seconds.observe(time.perf_counter() - began)
            metrics.runs_started.inc(len(started))
        orphans = self._picks.hand_over(claims, started)
        if orphans:
            await self._db.statement(lambda c: c.execute(Q["undeliver"], orphans))
        if started:
            await self._notifier.jobs_changed(
                [(views[s.run.job], "WAITING", "WORKING") for s in started]
            )
        return started

    async def _pass(
        self, conn: Conn, views: dict[int, JobView], claims: dict[str, "_Waiter"]
    ) -> list[Started]:
        """Plan and start runs; `views` receives the jobs chosen, for notifications, and
        `claims` the picks of this process that the runs go to directly."""
        views.clear()
        # a pass run again after a deadlock plans afresh
        self._picks.release(claims)
        # the farm view is for the admission policies alone
        admitting = self._plugins.implements("corral_admit")
        start = await conn.fetchrow(Q["pass_start"], _MAX_DEMAND, TYPE_TAG if admitting else None)
        assert start is not None
        demand = msgspec.json.decode(start["demand"], type=list[_Demand])
        sets = msgspec.json.decode(start["sets"], type=list[list[int]])
        if not start["locked"] or not demand or not sets:
            return []
        names = dict(msgspec.json.decode(start["names"], type=list[tuple[int, str]]))
        workers = [worker_view(d, names) for d in demand]
        wanted = {d.name: d.wanted for d in demand}

        # which worker may take which affinity set, at which rank: one hook call per pair
        ranked: dict[str, list[tuple[int, int]]] = {}
        rank_hook = self._plugins.hook.corral_affinity_rank
        decides = self._plugins.implements("corral_affinity_rank")
        for worker in workers:
            pairs: list[tuple[int, int]] = []
            for index, ids in enumerate(sets):
                names_of_set = frozenset(names.get(i, str(i)) for i in ids)
                rank = rank_hook(affinities=names_of_set, worker=worker) if decides else 0
                if rank is not None:
                    pairs.append((rank, index))
            ranked[worker.name] = sorted(pairs)

        # the best few of each set anyone may take; more only when policies hold some back
        page = self._config.dispatch.candidates_per_slot * sum(wanted.values())
        useful = sorted({index for pairs in ranked.values() for _, index in pairs})
        queues = {index: _SetQueue(sets[index]) for index in useful}
        dependencies: dict[int, list[DependencyView]] = defaultdict(list)
        for queue in queues.values():
            await self._more(conn, queue, page, names, dependencies)
        farm = farm_view(start["farm"])

        taken: set[int] = set()
        jobs: list[int] = []
        assigned_to: list[str] = []
        for worker in workers:
            need = wanted[worker.name]
            held: set[int] = set()
            for _ in range(_MAX_PAGES):
                chosen, held_now = self._choose(
                    worker, need, ranked[worker.name], queues, taken, held, dependencies, farm
                )
                for job in chosen:
                    views[job.id] = job
                    taken.add(job.id)
                    jobs.append(job.id)
                    assigned_to.append(worker.name)
                    if admitting:
                        farm = _with_run(farm, job, worker.name)
                need -= len(chosen)
                held |= held_now
                growable = [queues[i] for _, i in ranked[worker.name] if not queues[i].exhausted]
                if need == 0 or not held_now or not growable:
                    break
                for queue in growable:
                    await self._more(conn, queue, page, names, dependencies)
        if not jobs:
            return []
        claims.update(self._picks.claim(assigned_to))
        return await start_runs(conn, jobs, assigned_to, [w in claims for w in assigned_to])

    def _choose(
        self,
        worker: WorkerView,
        slots: int,
        ranked: list[tuple[int, int]],
        queues: dict[int, "_SetQueue"],
        taken: set[int],
        skip: set[int],
        dependencies: dict[int, list[DependencyView]],
        farm: FarmView,
    ) -> tuple[list[JobView], set[int]]:
        """Up to `slots` jobs for `worker` among those not `taken` by this pass nor in
        `skip`, and the ids the policies held back."""
        hook = self._plugins.hook
        admit_hooks = self._plugins.implements("corral_admit")
        by_rank: dict[int, list[Iterator[_Candidate]]] = defaultdict(list)
        for rank, index in ranked:
            by_rank[rank].append(queues[index].untaken(taken))
        # the hooks see the best few of each rank, not everything read for all workers:
        # a pass then costs about workers x slots, not workers x queue read
        window = slots * self._config.dispatch.candidates_per_slot
        chosen: list[JobView] = []
        held: set[int] = set()
        for rank in sorted(by_rank):
            merged = heapq.merge(*by_rank[rank], key=_queue_order)
            candidates = list(islice((c for c in merged if c.job.id not in skip), window))
            ordered = hook.corral_order(candidates=[c.job for c in candidates], worker=worker)
            has_deps = {c.job.id for c in candidates if c.has_dependencies}
            jobs = (
                list(ordered)
                if ordered is not None
                else sorted((c.job for c in candidates), key=lambda j: j.id)
            )
            for job in jobs:
                if len(chosen) == slots:
                    return chosen, held
                if job.id in has_deps:
                    met = hook.corral_dependencies_met(
                        job=job, dependencies=dependencies.get(job.id, [])
                    )
                    if met is False:
                        held.add(job.id)
                        continue
                if admit_hooks and any(hook.corral_admit(job=job, worker=worker, farm=farm)):
                    held.add(job.id)
                    continue
                chosen.append(job)
                if admit_hooks:
                    farm = _with_run(farm, job, worker.name)
        return chosen, held

    async def _more(
        self,
        conn: Conn,
        queue: "_SetQueue",
        page: int,
        names: dict[int, str],
        dependencies: dict[int, list[DependencyView]],
    ) -> None:
        """The next page of a set's ready jobs, after the ones already read."""
        if queue.candidates:
            last = queue.candidates[-1].job
            rows = await conn.fetch(
                Q["ready_after"], queue.ids, page, list(last.prio_path), last.id
            )
        else:
            rows = await conn.fetch(Q["ready_top"], queue.ids, page)
        fresh = [_Candidate(job_view(r, names), r["has_dependencies"]) for r in rows]
        queue.candidates.extend(fresh)
        queue.exhausted = len(rows) < page
        waiting_on = [c.job.id for c in fresh if c.has_dependencies]
        if waiting_on:
            for r in await conn.fetch(Q["dependencies_of"], waiting_on):
                dependencies[r["job_id"]].append(
                    DependencyView(id=r["id"], title=r["title"], state=r["state"])
                )


class _Waiter:
    """A pick waiting in this process. A planner that claims it answers it with `runs`
    (possibly none) or lets go; until then the pick waits for that answer. Once its own
    wait is over (`done`), no planner may claim it."""

    def __init__(self) -> None:
        self.wake = asyncio.Event()
        self.claimed = False
        self.done = False
        self.runs: list[Assignment] | None = None


class Picks:
    """The picks waiting in this process. A planner in this process answers them
    directly; runs planned by another process arrive through `LISTEN/NOTIFY`."""

    def __init__(self, db: Database, config: Config) -> None:
        self._db = db
        self._config = config
        self._waiting: dict[str, list[_Waiter]] = defaultdict(list)
        # signs this process's wake-up notices, so that its own planner, woken directly,
        # does not plan again when the notice comes back
        self.mark = uuid.uuid4().hex
        # called when a pick starts waiting, to plan at once in this process (the
        # NOTIFY it also sends wakes the planners of the others)
        self.on_demand: Callable[[], None] = lambda: None
        # what each run gets on its way to the worker (a job type's secret settings, a
        # service's environment and loggers), applied in order
        self.preparers: list[Callable[[list[Assignment]], Awaitable[list[Assignment]]]] = []
        # the server is shutting down: picks answer without waiting
        self._closing = False

    def close(self) -> None:
        """The server is shutting down: the waiting picks answer now (the workers ask
        again, of the next server), and new ones do not wait."""
        self._closing = True
        for waiters in self._waiting.values():
            for waiter in waiters:
                waiter.wake.set()

    def assigned(self, workers: Sequence[str]) -> None:
        """Runs were assigned to these workers and wait in the database for their picks."""
        for name in workers:
            for waiter in self._waiting.get(name, ()):
                waiter.wake.set()

    def claim(self, workers: Iterable[str]) -> dict[str, _Waiter]:
        """The oldest unclaimed pick of each of `workers` waiting here, which the planner
        will answer itself."""
        claims: dict[str, _Waiter] = {}
        for name in workers:
            if name in claims:
                continue
            waiting = self._waiting.get(name, ())
            waiter = next((w for w in waiting if not (w.claimed or w.done)), None)
            if waiter is not None:
                waiter.claimed = True
                claims[name] = waiter
        return claims

    def hand_over(self, claims: dict[str, _Waiter], started: Sequence[Started]) -> list[int]:
        """Answer the claimed picks with the runs started for their workers. Answers the
        events of runs whose pick went away meanwhile (its request was cancelled): the
        worker's next pick must take them."""
        runs: dict[str, list[Assignment]] = defaultdict(list)
        for s in started:
            if s.worker in claims:
                runs[s.worker].append(s.run)
        orphans: list[int] = []
        for name, waiter in claims.items():
            waiter.runs = runs.get(name, [])
            waiter.wake.set()
            if waiter not in self._waiting.get(name, ()):
                orphans += [run.event for run in waiter.runs]
        claims.clear()
        return orphans

    def release(self, claims: dict[str, _Waiter]) -> None:
        """The planner will not answer these picks after all: they wait on as before, and
        those whose wait is over look in the database."""
        for waiter in claims.values():
            waiter.claimed = False
            if waiter.done:
                waiter.wake.set()
        claims.clear()

    async def pick(
        self,
        worker: str,
        slots: int,
        wait: float,
        ended: Sequence[int] = (),
        contact: Machine | None = None,
    ) -> "PickResult | None":
        """Wait up to `wait` seconds for runs for `worker` (at most `slots`); None if the
        worker is unknown. A stopped worker gets nothing until it is started again.
        `ended` are runs of the worker that exited with code 0, ended first, in the same
        statement (with no retry to decide and no one to tell of the change).

        With `contact` (a legacy worker's, which asks for a job only once it let go of
        the last one) the same statement stores the worker's machine; and if the worker
        still holds a run it was handed, nothing is taken and the answer is `held` at
        once: the caller drops those runs and picks again."""
        arrived = time.perf_counter()
        picked = await self._pick(worker, slots, wait, ended, contact)
        if picked is not None and picked.finished:
            metrics.runs_finished.inc(len(picked.finished))
        if picked is None or not picked.runs:
            return picked
        metrics.pick_seconds.observe(time.perf_counter() - arrived)
        runs = picked.runs
        for prepare in self.preparers:
            runs = await prepare(runs)
        return PickResult(runs, picked.finished)

    async def _pick(
        self, worker: str, slots: int, wait: float, ended: Sequence[int], contact: Machine | None
    ) -> "PickResult | None":
        waiter = _Waiter()
        self._waiting[worker].append(waiter)
        try:
            taken = await self._take(worker, slots, ended, contact)
            if taken is None:
                return None
            finished = taken.finished
            if taken.held:
                return PickResult([], finished, held=True)
            if taken.runs:
                return PickResult(taken.runs, finished)
            if taken.active:
                self.on_demand()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wake.wait(), timeout=0 if self._closing else wait)
            # from here on this pick takes runs from the database, not from a planner
            waiter.done = True
            while waiter.claimed and waiter.runs is None:
                # a pass is starting runs for this very pick: its answer comes next
                waiter.wake.clear()
                await waiter.wake.wait()
            if waiter.runs:
                return PickResult(waiter.runs, finished)
            if not taken.active:
                return PickResult([], finished)
            ready = await self._deliver(worker)
            if not ready:
                # give up waiting, and take a run assigned since the last look
                last = await self._take(worker, 0, (), None)
                ready = [] if last is None else last.runs
            return PickResult(ready, finished)
        finally:
            self._waiting[worker].remove(waiter)
            if not self._waiting[worker]:
                del self._waiting[worker]

    async def _take(
        self, worker: str, slots: int, ended: Sequence[int], contact: Machine | None
    ) -> "_Taken | None":
        """End the runs `ended`, then the runs waiting for `worker`, or else its demand
        recorded (and its `contact` made); None if the worker is unknown."""
        machine = contact or Machine()

        async def work(conn: Conn) -> _Taken | None:
            row = await conn.fetchrow(
                Q["take"],
                worker,
                slots,
                list(ended),
                self.mark,
                machine.cpu,
                machine.free_memory,
                machine.total_memory,
                contact is not None,
            )
            if row is None:
                return None
            runs = msgspec.json.decode(row["runs"], type=list[Assignment])
            return _Taken(row["active"], runs, frozenset(row["finished"]), row["held"])

        return await self._db.statement(work)

    async def _deliver(self, worker: str) -> list[Assignment]:
        async def work(conn: Conn) -> list[Assignment]:
            rows = await conn.fetch(Q["deliver"], worker)
            return [Assignment(*(r[k] for k in ASSIGNMENT_COLUMNS)) for r in rows]

        return await self._db.statement(work)


class PickResult(msgspec.Struct, frozen=True):
    """What a pick brings: the runs to start, and which of the runs it ended finished
    their jobs (the others had been stopped already)."""

    runs: list[Assignment]
    finished: frozenset[int] = frozenset()
    # a legacy worker's pick: it still held runs it was handed, so nothing was taken
    held: bool = False


class _Taken(msgspec.Struct, frozen=True):
    active: bool
    runs: list[Assignment]
    finished: frozenset[int]
    held: bool


def _queue_order(candidate: _Candidate) -> tuple[tuple[float, ...], int]:
    """The database's order (prio_path descending, then id) as an ascending key. The
    infinity ends each path so that, as in PostgreSQL, a path before its own extensions
    sorts after them."""
    return (*(-p for p in candidate.job.prio_path), math.inf), candidate.job.id


def _with_run(farm: FarmView, job: JobView, worker: str) -> FarmView:
    by_tag = Counter(farm.running_by_tag)
    by_tag.update(job.tags)
    by_user = Counter(farm.running_by_user)
    by_user[job.user] += 1
    assigned = farm.assigned
    if job.resources:
        taken = Counter(assigned.get(worker, {}))
        taken.update(job.resources)
        assigned = {**assigned, worker: dict(taken)}
    return msgspec.structs.replace(
        farm,
        running_by_tag=dict(by_tag),
        running_by_user=dict(by_user),
        running=farm.running + 1,
        assigned=assigned,
    )
