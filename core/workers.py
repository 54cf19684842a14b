"""Workers: render nodes, their ordered affinity rules, and stopping or removing them."""

from collections.abc import Mapping, Sequence

import asyncpg
import msgspec
from msgspec import UNSET

from core import affinities
from core.config import Config
from core.db import Conn, Database
from core.errors import NotFound
from core.models import Worker, WorkerEdit
from core.pings import Machine
from core.sql import Queries

Q = Queries("workers.sql")
RUNS = Queries("runs.sql")


def parse_rules(text: str) -> list[list[str]]:
    """Ordered affinity rules: one per line (or separated by ';'), each a comma-separated
    set of names. Empty rules are dropped."""
    rules: list[list[str]] = []
    for line in text.replace(";", "\n").replace("\r", "\n").split("\n"):
        names = affinities.parse_names(line)
        if names:
            rules.append(names)
    return rules


class Workers:
    def __init__(self, db: Database, config: Config) -> None:
        self._db = db
        self._config = config

    async def list(self) -> list[Worker]:
        async def work(conn: Conn) -> list[Worker]:
            return [_worker(r) for r in await conn.fetch(Q["select_workers"])]

        return await self._db.read(work)

    async def register(
        self,
        name: str,
        ip: str,
        *,
        slots: int = 1,
        rules: str | None = None,
        resources: Mapping[str, float] | None = None,
        pool: str | None = None,
        apps: Sequence[str] | None = None,
    ) -> None:
        """A worker process starts (or a legacy worker first calls): it exists from then on.
        Runs it held in an earlier life are queued again; `rules` (when given) replace its
        affinity rules; `resources` are what it offers (cpus, mem, gpus, ...); `pool` and
        `apps` (when given) replace the pool it belongs to ("" for none) and the
        applications it runs ("*" for any), which the placement policy matches against
        the jobs' `pool:` and `app:` tags (core.placement)."""
        offered = msgspec.json.encode(dict(resources or {})).decode()
        # a set, kept sorted so that a listing or a test reads it the same every time
        runs = None if apps is None else sorted(set(apps))

        async def work(conn: Conn) -> None:
            await conn.execute(Q["register"], name, ip, slots, offered, pool, runs)
            # a reason named in corral_lost_reasons() (migration 0007): a lost run
            rows = await conn.fetch(
                RUNS["interrupt_runs"], [], [name], "CANCELED", "worker restarted"
            )
            if rows:
                await conn.execute(RUNS["fail_exhausted"], [r["job_id"] for r in rows])
            if rules is not None:
                await self._set_rules(conn, name, rules)

        await self._db.transact(work)

    async def contact(self, name: str, ip: str, machine: Machine) -> bool:
        """A one-slot worker that makes contact without registering first (a legacy
        worker) is known from now on, alive, with its machine as told; answers whether
        it has a run going."""

        async def work(conn: Conn) -> bool:
            busy: bool = await conn.fetchval(
                Q["contact"], name, ip, machine.cpu, machine.free_memory, machine.total_memory
            )
            return busy

        return await self._db.statement(work)

    async def drop_runs(self, name: str, reason: str) -> None:
        """The worker no longer runs what it was given: those jobs go back to the queue."""
        await self._db.statement(
            lambda c: c.execute(RUNS["interrupt_runs"], [], [name], "CANCELED", reason)
        )

    async def edit(self, changes: dict[str, WorkerEdit]) -> None:
        async def work(conn: Conn) -> None:
            await _require(conn, list(changes))
            for name in sorted(changes):
                edit = changes[name]
                if edit.affinity is not UNSET:
                    await self._set_rules(conn, name, edit.affinity)
                if edit.active is not UNSET:
                    await _set_active(conn, [name], bool(edit.active))

        await self._db.transact(work)

    async def delete(self, names: Sequence[str]) -> None:
        """Remove workers; what they were running goes back to the queue."""

        async def work(conn: Conn) -> None:
            await _require(conn, names)
            await conn.execute(
                RUNS["interrupt_runs"], [], list(names), "CANCELED", "worker removed"
            )
            await conn.execute(Q["delete_workers"], list(names))

        await self._db.transact(work)

    async def stop(self, names: Sequence[str]) -> None:
        """Take workers out of dispatch; their running jobs go back to the queue."""

        async def work(conn: Conn) -> None:
            await _require(conn, names)
            await _set_active(conn, names, False)

        await self._db.transact(work)

    async def start(self, names: Sequence[str]) -> None:
        async def work(conn: Conn) -> None:
            await _require(conn, names)
            await _set_active(conn, names, True)

        await self._db.transact(work)

    async def _set_rules(self, conn: Conn, name: str, text: str) -> None:
        if await conn.fetchrow(Q["lock_worker"], name) is None:
            raise NotFound(f"no such worker: {name}")
        create = self._config.affinities.create_unknown
        ranked = [await affinities.resolve(conn, rule, create=create) for rule in parse_rules(text)]
        await conn.execute(Q["delete_rules"], name)
        await conn.execute(Q["insert_rules"], name, [",".join(map(str, ids)) for ids in ranked])


async def _set_active(conn: Conn, names: Sequence[str], active: bool) -> None:
    await conn.execute(Q["set_active"], list(names), active)
    if not active:
        await conn.execute(RUNS["interrupt_runs"], [], list(names), "CANCELED", "worker stopped")


async def _require(conn: Conn, names: Sequence[str]) -> None:
    existing = {r["name"] for r in await conn.fetch(Q["select_existing"], list(names))}
    missing = sorted(set(names) - existing)
    if missing:
        raise NotFound(f"no such worker: {', '.join(missing)}")


def _worker(row: asyncpg.Record) -> Worker:
    cpu = "[" + ",".join(f"{load:g}" for load in row["cpu"]) + "]"
    return Worker(
        name=row["name"],
        ip=row["ip"],
        affinity=row["affinity"],
        state=row["state"],
        ping_time=row["ping_time"],
        finished=row["finished"],
        error=row["error"],
        last_job=row["last_job"],
        current_event=row["current_event"],
        cpu=cpu,
        free_memory=row["free_memory"],
        total_memory=row["total_memory"],
        active=int(row["active"]),
        slots=row["slots"],
    )
