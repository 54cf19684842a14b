"""Why a job is not running: its state, its place in the queue, and a sentence.

The answer asks the same policy hooks dispatch asks (`corral_affinity_rank`,
`corral_dependencies_met`, `corral_admit`) about the workers that are up, so a plugin that
holds a job back explains it here with the reason it already gives; no hook of its own is
needed. Every read is bounded: the queue ahead is counted up to `POSITION_CAP`, by ranges
of the ready-queue index, so a million queued jobs cost what ten thousand do.
"""

from collections.abc import Sequence

import asyncpg
import msgspec

from core.db import Conn, Database
from core.errors import NotFound
from core.hookspecs import DependencyView, JobView, WorkerView
from core.job_types import TYPE_TAG
from core.models import JobState
from core.plugins import Plugins
from core.sql import Queries
from core.views import WorkerRow, farm_view, job_view, worker_view

Q = Queries("waiting.sql")

# the queue ahead of a job is counted this far, no further
POSITION_CAP = 10_000
# unfinished dependencies named in a reason at most
_NAMED_DEPENDENCIES = 10


class Waiting(msgspec.Struct, kw_only=True):
    """Why a job is not running."""

    state: JobState
    # how many ready jobs dispatch would start before this one (on the worker that would
    # reach it first), POSITION_CAP at most; None when the job is not in the ready queue
    position: int | None
    # a short sentence for people ("all 4 workers busy"), "" when it runs or has ended
    reason: str


class _Worker(WorkerRow, kw_only=True):
    """A worker that is up, as the `workers` query reads it."""

    active: bool


class Waits:
    def __init__(self, db: Database, plugins: Plugins) -> None:
        self._db = db
        self._plugins = plugins

    async def why(self, job_id: int) -> Waiting:
        """Why job `job_id` is not running (NotFound for an unknown job)."""
        return await self._db.read(lambda c: self._why(c, job_id))

    async def _why(self, conn: Conn, job_id: int) -> Waiting:
        row = await conn.fetchrow(Q["job"], job_id)
        if row is None:
            raise NotFound(f"no such job: {job_id}")
        state: JobState = row["state"]
        if state == "PAUSED":
            return Waiting(state=state, position=None, reason="paused")
        if state in ("WORKING", "FINISHED", "ERROR"):
            return Waiting(state=state, position=None, reason="")
        if state == "PENDING":
            reason = await _pending(conn, [*row["path"], job_id])
            return Waiting(state=state, position=None, reason=reason)
        if not row["command"]:
            left = row["total"] - row["total_finished"]
            jobs = "job waits" if left == 1 else "jobs wait"
            return Waiting(state=state, position=None, reason=f"a group: {left} of its {jobs}")
        if row["held_until"] > 0:
            seconds = max(round(row["held_for"]), 0)
            return Waiting(
                state=state,
                position=None,
                reason=f"runs again after a failure, in {seconds} s",
            )
        return await self._ready(conn, row)

    async def _ready(self, conn: Conn, row: asyncpg.Record) -> Waiting:
        """A leaf in the ready queue: which workers may take it, and what comes first."""
        figures = await conn.fetchrow(Q["farm"], TYPE_TAG)
        assert figures is not None
        names = dict(msgspec.json.decode(figures["names"], type=list[tuple[int, str]]))
        job = job_view(row, names)
        up = msgspec.json.decode(await conn.fetchval(Q["workers"]), type=list[_Worker])
        active = [w for w in up if w.active]
        if not active:
            reason = "no worker is running"
            if up:
                stopped = "worker is" if len(up) == 1 else f"{len(up)} workers are"
                reason = f"no worker is active: the {stopped} stopped"
            return Waiting(state="WAITING", position=None, reason=reason)
        hook = self._plugins.hook
        views = [worker_view(w, names) for w in active]
        ranks = {w.name: self._rank(job.affinities, w) for w in views}
        able = [w for w in views if ranks[w.name] is not None]
        if not able:
            return Waiting(state="WAITING", position=None, reason=_no_rule(job))
        if row["has_dependencies"]:
            dependencies = [
                DependencyView(id=r["id"], title=r["title"], state=r["state"])
                for r in await conn.fetch(Q["dependencies_of"], job.id)
            ]
            if hook.corral_dependencies_met(job=job, dependencies=dependencies) is False:
                return Waiting(
                    state="WAITING", position=None, reason="its dependencies hold it back"
                )
        farm = farm_view(figures["farm"])
        admitting: list[WorkerView] = []
        refusals: list[str] = []
        for worker in able:
            held = [r for r in hook.corral_admit(job=job, worker=worker, farm=farm) if r]
            if held:
                refusals.extend(r for r in held if r not in refusals)
            else:
                admitting.append(worker)
        if not admitting:
            return Waiting(state="WAITING", position=None, reason="; ".join(refusals[:3]))
        counted = await self._position(
            conn, job, list(row["affinity_ids"]), admitting, ranks, names
        )
        return Waiting(
            state="WAITING",
            position=min(counted, POSITION_CAP),
            reason=_queued(admitting, counted),
        )

    def _rank(self, affinities: frozenset[str], worker: WorkerView) -> int | None:
        if not self._plugins.implements("corral_affinity_rank"):
            return 0
        rank: int | None = self._plugins.hook.corral_affinity_rank(
            affinities=affinities, worker=worker
        )
        return rank

    async def _position(
        self,
        conn: Conn,
        job: JobView,
        own: list[int],
        workers: Sequence[WorkerView],
        ranks: dict[str, int | None],
        names: dict[int, str],
    ) -> int:
        """The fewest ready jobs any of `workers` would take before `job`: for a worker,
        those of the sets it ranks before the job's, and those of the sets of the job's
        rank that the queue order puts first (as dispatch merges them); POSITION_CAP at
        most."""
        sets = [list(r["ids"]) for r in await conn.fetch(Q["ready_sets"])]
        # counts already read: per set, (count, the limit it was read with)
        whole: dict[tuple[int, ...], tuple[int, int]] = {}
        ahead: dict[tuple[int, ...], tuple[int, int]] = {}

        async def counted(
            cache: dict[tuple[int, ...], tuple[int, int]], ids: list[int], limit: int
        ) -> int:
            key = tuple(ids)
            known = cache.get(key)
            # a count below the limit it was read with is exact
            if known is not None and (known[0] < known[1] or known[1] >= limit):
                return min(known[0], limit)
            if cache is whole:
                n: int = await conn.fetchval(Q["count_set"], ids, limit)
            else:
                n = await conn.fetchval(Q["count_ahead"], ids, list(job.prio_path), job.id, limit)
            cache[key] = (n, limit)
            return n

        best = POSITION_CAP + 1
        # workers with the same rules, pool and apps rank every set alike: count once
        seen: set[tuple[tuple[frozenset[str], ...], str, frozenset[str]]] = set()
        for worker in workers:
            shape = (worker.rules, worker.pool, worker.apps)
            if shape in seen:
                continue
            seen.add(shape)
            rank = ranks[worker.name]
            assert rank is not None
            total = 0
            for ids in sets:
                if total >= best:
                    break
                if ids == own:
                    theirs: int | None = rank
                else:
                    theirs = self._rank(frozenset(names.get(i, str(i)) for i in ids), worker)
                if theirs is None or theirs > rank:
                    continue
                cache = whole if theirs < rank else ahead
                total += await counted(cache, ids, best - total)
            best = min(best, total)
            if best == 0:
                break
        return best


async def _pending(conn: Conn, chain: list[int]) -> str:
    """What a PENDING job waits for: the unfinished jobs that it or its groups depend on."""
    rows = await conn.fetch(Q["unmet_dependencies"], chain, _NAMED_DEPENDENCIES + 1)
    ids = [str(r["id"]) for r in rows]
    if not ids:
        return "waiting for its dependencies"
    more = len(ids) > _NAMED_DEPENDENCIES
    named = ", ".join(ids[:_NAMED_DEPENDENCIES]) + (" and more" if more else "")
    return f"waiting for job{'s' if len(ids) > 1 else ''} {named}"


def _no_rule(job: JobView) -> str:
    if not job.affinities:
        return "no worker takes jobs without affinities"
    names = ", ".join(sorted(job.affinities))
    return f"no worker has affinit{'ies' if len(job.affinities) > 1 else 'y'} {names}"


def _queued(workers: Sequence[WorkerView], position: int) -> str:
    free = sum(max(w.slots - w.running, 0) for w in workers)
    if position > POSITION_CAP:
        ahead = f"more than {POSITION_CAP:,} ahead"
    else:
        ahead = f"{position} job{'' if position == 1 else 's'} ahead"
    if free == 0:
        n = len(workers)
        busy = f"worker {workers[0].name} busy" if n == 1 else f"all {n} workers busy"
        return busy if position == 0 else f"{busy}; {ahead}"
    if position == 0:
        return "next to start: a worker has a free slot"
    return ahead
