"""Service jobs: task groups kept at a desired count of long-running runs.

A service is a root group and each of its task groups a child group; an allocation is one
leaf under a task group, run once. The reconcile pass (one server process at a time, by
an advisory lock) adds leaves to a group below its count and stops the surplus above it;
an allocation that ended (exited, failed, or lost with its worker) is thereby replaced,
after a backoff when the group keeps failing. How a run's end becomes the allocation's
outcome, and the counters of each group, are kept by triggers (migration 0009), so every
way a run ends counts the same.

Every committed change to what `listing` shows moves the jobs index and is announced on
the channel `corral_services`; `wait` holds a caller until the index passes a value.
"""

import asyncio
import contextlib
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal

import asyncpg
import msgspec

from core.config import Config, GenvidConfig
from core.db import Conn, Database
from core.errors import Invalid, NotFound
from core.jobs import Jobs
from core.loggers import allocation_id, effective, environment_name
from core.models import JobSpec
from core.runs import Assignment, with_environment
from core.sql import Queries

Q = Queries("services.sql")
JOBS = Queries("jobs.sql")
RUNS = Queries("runs.sql")
log = logging.getLogger("corral.services")

Status = Literal["running", "pending", "dead"]
Bin = Literal["queued", "starting", "running", "complete", "failed", "lost"]
# the dead allocations each group keeps, with their logs
KEEP_DEAD = 20
# why a run stopped on purpose ended: not a loss, so the allocation is complete
STOPPED = "stopped by its service"
# the user service leaves run as
USER = "service"


class GroupDefinition(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    command: str
    count_init: int
    count_max: int
    secrets: list[str] = msgspec.field(default_factory=list)
    affinity: str = ""


class ServiceDefinition(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    autostart: bool = False
    groups: list[GroupDefinition]


class Summary(msgspec.Struct, kw_only=True):
    queued: int
    starting: int
    running: int
    complete: int
    failed: int
    lost: int


class GroupStatus(msgspec.Struct, kw_only=True):
    name: str
    count: int
    count_init: int
    count_max: int
    summary: Summary


class ServiceStatus(msgspec.Struct, kw_only=True):
    name: str
    status: Status
    active: bool
    autostart: bool
    groups: list[GroupStatus]


class Listing(msgspec.Struct, kw_only=True):
    """Every service, and the jobs index the list was read at."""

    index: int
    services: list[ServiceStatus]


class Allocation(msgspec.Struct, kw_only=True):
    id: str
    service: str
    group: str
    # the leaf job it runs as
    job: int
    status: Bin
    # seconds since the epoch
    created: float


def definitions(genvid: GenvidConfig) -> list[ServiceDefinition]:
    """The service definitions of a config file."""
    return [
        ServiceDefinition(
            name=name,
            autostart=service.autostart,
            groups=[
                GroupDefinition(
                    name=group_name,
                    command=group.command,
                    count_init=group.count_init,
                    count_max=group.count_max,
                    secrets=list(group.secrets),
                    affinity=group.affinity,
                )
                for group_name, group in sorted(service.groups.items())
            ],
        )
        for name, service in sorted(genvid.jobs.items())
    ]


def check(definition: ServiceDefinition) -> None:
    """Refuse a definition that breaks the rules the config file's follow."""
    if not definition.groups:
        raise Invalid(f"service {definition.name!r} has no task group")
    names = [g.name for g in definition.groups]
    if len(set(names)) != len(names):
        raise Invalid(f"service {definition.name!r} names a task group twice")
    for group in definition.groups:
        if group.count_init > group.count_max:
            raise Invalid(
                f"task group {group.name!r}: count_init ({group.count_init}) is above "
                f"count_max ({group.count_max})"
            )


class Services:
    def __init__(self, db: Database, config: Config, jobs: Jobs) -> None:
        self._db = db
        self._config = config
        self._jobs = jobs
        # the highest jobs index this process has heard of, and who waits for it to move
        self._heard = 0
        self._moved = asyncio.Event()
        # woken when the services change, to reconcile at once (the scheduler sets it)
        self.on_change: Callable[[], None] = lambda: None

    # -- definitions ----------------------------------------------------------------------

    async def sync(self, wanted: Sequence[ServiceDefinition]) -> None:
        """Make the services of the config file those `wanted`: new ones created,
        stopped; changed ones updated (for allocations created afterwards); ones gone
        stopped and dropped once their allocations have ended. Services defined through
        the API are left alone."""
        for definition in wanted:
            check(definition)

        async def work(conn: Conn) -> None:
            await conn.execute(Q["lock_definitions"])
            existing = await _existing(conn)
            for definition in wanted:
                await self._write(conn, definition, "config", existing.get(definition.name))
            gone = [
                row.id
                for name, row in existing.items()
                if row.source == "config"
                and not row.removed
                and name not in {d.name for d in wanted}
            ]
            if gone:
                await conn.execute(Q["remove_services"], gone)
                await conn.execute(Q["zero_counts"], gone)

        await self._db.transact(work)
        self.on_change()

    async def define(self, definition: ServiceDefinition) -> ServiceStatus:
        """Create or replace a service through the API; a changed definition applies to
        the allocations created afterwards."""
        check(definition)

        async def work(conn: Conn) -> None:
            await conn.execute(Q["lock_definitions"])
            existing = await _existing(conn)
            await self._write(conn, definition, "api", existing.get(definition.name))

        await self._db.transact(work)
        self.on_change()
        return await self.status(definition.name)

    async def _write(
        self, conn: Conn, definition: ServiceDefinition, source: str, row: "_Existing | None"
    ) -> None:
        if row is None:
            [root] = await self._jobs.insert(
                conn, 0, [JobSpec(title=definition.name, user=USER)], meta={"service": True}
            )
            await conn.execute(
                Q["insert_service"], root, definition.name, definition.autostart, source
            )
            groups: dict[str, _ExistingGroup] = {}
        else:
            root = row.id
            await conn.execute(Q["update_service"], root, definition.autostart, source)
            groups = {g.name: g for g in row.groups}
        for group in definition.groups:
            known = groups.get(group.name)
            values = (
                group.command,
                group.affinity,
                group.secrets,
                group.count_init,
                group.count_max,
            )
            if known is None:
                [child] = await self._jobs.insert(
                    conn, root, [JobSpec(title=group.name, user=USER)], meta={"service": True}
                )
                await conn.execute(Q["insert_group"], child, root, group.name, *values)
            else:
                await conn.execute(Q["update_group"], known.id, *values)
        kept = {g.name for g in definition.groups}
        dropped = [g.id for g in groups.values() if g.name not in kept]
        if dropped:
            await conn.execute(Q["remove_groups"], dropped)

    # -- what the list shows -------------------------------------------------------------

    async def listing(self) -> Listing:
        async def work(conn: Conn) -> Listing:
            return await _listing(conn, None)

        return await self._db.read(work)

    async def status(self, name: str) -> ServiceStatus:
        async def work(conn: Conn) -> ServiceStatus:
            return await _one(conn, name)

        return await self._db.read(work)

    async def index(self) -> int:
        async def work(conn: Conn) -> int:
            value: int = await conn.fetchval(Q["index"])
            return value

        return await self._db.read(work)

    async def wait(self, after: int, seconds: float) -> None:
        """Return once the jobs index is above `after`, or after `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            if self._heard > after:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            moved = self._moved
            # a notice may be lost while the listener reconnects: look again now and then
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(moved.wait(), timeout=min(left, 5.0))
            if not moved.is_set():
                self.heard(await self.index())

    def heard(self, index: int) -> None:
        """The jobs index is at least `index` (a notice on `corral_services`)."""
        if index > self._heard:
            self._heard = index
            moved, self._moved = self._moved, asyncio.Event()
            moved.set()

    # -- starting, stopping, scaling -----------------------------------------------------

    async def start(self, name: str) -> ServiceStatus:
        """Start a dead service, every group at its initial count; a pending or running
        one is left as it is."""

        async def work(conn: Conn) -> ServiceStatus:
            service = await _lock(conn, name)
            status = await _one(conn, name)
            if status.status == "dead":
                await conn.execute(Q["activate"], service["id"])
                status = await _one(conn, name)
            return status

        status = await self._db.transact(work)
        self.on_change()
        return status

    async def stop(self, name: str) -> ServiceStatus:
        """Stop a service: every count 0 at once; its allocations end complete."""

        async def work(conn: Conn) -> ServiceStatus:
            service = await _lock(conn, name)
            await conn.execute(Q["deactivate"], service["id"])
            return await _one(conn, name)

        status = await self._db.transact(work)
        self.on_change()
        return status

    async def scale(
        self, name: str, group: str, *, delta: int | None = None, count: int | None = None
    ) -> ServiceStatus:
        """Set a group's count: `count`, or its count plus `delta` (a delta of 0 sets 0).
        Only in a started service, and never outside [0, count_max]."""

        async def work(conn: Conn) -> ServiceStatus:
            service = await _lock(conn, name)
            row = await conn.fetchrow(Q["lock_group"], service["id"], group)
            if row is None:
                raise Invalid(f"job {name!r} has no task group {group!r}")
            if not service["active"]:
                raise Invalid(f"job {name!r} is not started; start it first")
            new = count if count is not None else 0 if not delta else row["count"] + delta
            if not 0 <= new <= row["count_max"]:
                raise Invalid(
                    f"task group {group!r} of job {name!r} would have {new} allocations; "
                    f"its count must stay within [0, {row['count_max']}]"
                )
            await conn.execute(Q["set_count"], row["id"], new)
            return await _one(conn, name)

        status = await self._db.transact(work)
        self.on_change()
        return status

    async def autostart(self) -> list[str]:
        async def work(conn: Conn) -> list[str]:
            return [r["name"] for r in await conn.fetch(Q["autostart_services"])]

        return await self._db.read(work)

    async def names(self) -> list[str]:
        async def work(conn: Conn) -> list[str]:
            return [r["name"] for r in await conn.fetch(Q["service_names"])]

        return await self._db.read(work)

    # -- allocations ---------------------------------------------------------------------

    async def allocations(self, service: str, group: str) -> list[Allocation]:
        """The allocations of a group, newest first, the dead ones kept included."""

        async def work(conn: Conn) -> list[Allocation]:
            return [_allocation(r) for r in await conn.fetch(Q["allocations"], service, group)]

        return await self._db.read(work)

    async def allocation(self, alloc: str) -> Allocation:
        allocation_id(alloc)

        async def work(conn: Conn) -> Allocation:
            row = await conn.fetchrow(Q["allocation"], alloc)
            if row is None:
                raise NotFound(f"allocation {alloc!r} does not exist")
            return _allocation(row)

        return await self._db.read(work)

    # -- the reconcile pass --------------------------------------------------------------

    async def reconcile(self) -> bool:
        """Keep every group at its count; whether this process held the pass's lock."""

        async def work(conn: Conn) -> bool:
            if not await conn.fetchval(Q["try_lock_reconcile"]):
                return False
            await conn.execute(Q["reset_streaks"])
            live: dict[int, list[tuple[int, float, int]]] = defaultdict(list)
            for row in await conn.fetch(Q["live_allocations"]):
                live[row["group_id"]].append((row["bin"], row["created"], row["job_id"]))
            surplus: list[int] = []
            for group in await conn.fetch(Q["reconcile_groups"]):
                have = live.get(group["id"], [])
                wanted: int = group["wanted"]
                if len(have) < wanted:
                    await self._add(conn, group, wanted - len(have))
                elif len(have) > wanted:
                    # queued ones first, then starting, then running ones, newest first
                    order = sorted(have, key=lambda a: (a[0], -a[1], -a[2]))
                    surplus += [job for _, _, job in order[: len(have) - wanted]]
            if surplus:
                await conn.execute(RUNS["interrupt_runs"], surplus, [], "CANCELED", STOPPED)
                await conn.execute(Q["end_queued"], surplus)
            dead = [r["job_id"] for r in await conn.fetch(Q["surplus_dead"], KEEP_DEAD)]
            dropped = [r["id"] for r in await conn.fetch(Q["finished_removed"])]
            if dead or dropped:
                await conn.execute(JOBS["delete_subtrees"], dead + dropped)
            return True

        return await self._db.transact(work)

    async def _add(self, conn: Conn, group: asyncpg.Record, n: int) -> None:
        service: str = group["service"]
        name: str = group["name"]
        specs = [
            JobSpec(
                title=f"{service}/{name}",
                command=group["command"],
                affinity=group["affinity"],
                user=USER,
            )
            for _ in range(n)
        ]
        leaves = await self._jobs.insert(conn, group["id"], specs, meta={"service": True})
        allocs = [uuid.uuid4() for _ in leaves]
        hold: float = group["hold_until"]
        await conn.execute(Q["add_allocations"], allocs, leaves, group["id"], hold)
        if hold > time.time():
            log.info(
                "task group %s/%s fails again and again: its next allocation waits", service, name
            )

    # -- runs handed over ----------------------------------------------------------------

    def preparer(
        self, secrets: Callable[[Sequence[str]], Awaitable[tuple[dict[str, str], list[str]]]]
    ) -> Callable[[list[Assignment]], Awaitable[list[Assignment]]]:
        """What adds to each service run, as its pick hands it over, the environment it
        runs with: the group's secrets, then Corral's own variables (which win), and the
        effective logger levels."""

        async def prepare(runs: list[Assignment]) -> list[Assignment]:
            jobs = [r.job for r in runs if r.service is not None]
            if not jobs:
                return runs

            async def work(conn: Conn) -> tuple[dict[int, "_RunOf"], dict[int, dict[str, str]]]:
                rows = {
                    r["job_id"]: _RunOf(r["alloc"], r["service"], r["group"], list(r["secrets"]))
                    for r in await conn.fetch(Q["runs_of"], jobs)
                }
                return rows, await effective(conn, jobs)

            of, levels = await self._db.read(work)
            prepared: list[Assignment] = []
            for run in runs:
                found = of.get(run.job)
                if found is None:
                    prepared.append(run)
                    continue
                values, missing = await secrets(found.secrets)
                for secret in missing:
                    log.warning(
                        "task group %s/%s lists secret %r, which does not exist",
                        found.service,
                        found.group,
                        secret,
                    )
                loggers = levels.get(run.job, {})
                own = {
                    "NOMAD_ALLOC_ID": found.alloc,
                    "NOMAD_JOB_NAME": found.service,
                    "NOMAD_GROUP_NAME": found.group,
                    "NOMAD_TASK_NAME": found.group,
                    **{environment_name(k): v for k, v in loggers.items()},
                }
                environment = with_environment(run.environment, {**values, **own})
                prepared.append(
                    msgspec.structs.replace(run, environment=environment, loggers=loggers)
                )
            return prepared

        return prepare


class _RunOf(msgspec.Struct, frozen=True):
    alloc: str
    service: str
    group: str
    secrets: list[str]


class _ExistingGroup(msgspec.Struct, frozen=True):
    id: int
    name: str
    removed: bool


class _Existing(msgspec.Struct, frozen=True):
    id: int
    source: str
    removed: bool
    groups: list[_ExistingGroup]


async def _existing(conn: Conn) -> dict[str, _Existing]:
    return {
        r["name"]: _Existing(
            r["id"],
            r["source"],
            r["removed"],
            msgspec.json.decode(r["groups"], type=list[_ExistingGroup]),
        )
        for r in await conn.fetch(Q["select_definitions"])
    }


async def _lock(conn: Conn, name: str) -> asyncpg.Record:
    row = await conn.fetchrow(Q["lock_service"], name)
    if row is None:
        raise NotFound(f"job {name!r} does not exist")
    return row


async def _one(conn: Conn, name: str) -> ServiceStatus:
    listing = await _listing(conn, name)
    if not listing.services:
        raise NotFound(f"job {name!r} does not exist")
    return listing.services[0]


async def _listing(conn: Conn, name: str | None) -> Listing:
    rows = await conn.fetch(Q["groups"], name)
    index: int = rows[0]["index"] if rows else await conn.fetchval(Q["index"])
    by_service: dict[int, list[asyncpg.Record]] = defaultdict(list)
    for row in rows:
        by_service[row["service_id"]].append(row)
    services = [_service(group_rows) for group_rows in by_service.values()]
    return Listing(index=index, services=sorted(services, key=lambda s: s.name))


def _service(rows: list[asyncpg.Record]) -> ServiceStatus:
    first = rows[0]
    groups = [
        GroupStatus(
            name=r["name"],
            count=r["count"],
            count_init=r["count_init"],
            count_max=r["count_max"],
            summary=Summary(
                queued=r["queued"],
                starting=r["starting"],
                running=r["running"],
                complete=r["complete"],
                failed=r["failed"],
                lost=r["lost"],
            ),
        )
        for r in rows
    ]
    live = sum(g.summary.queued + g.summary.starting + g.summary.running for g in groups)
    status: Status
    if any(g.summary.starting + g.summary.running for g in groups):
        status = "running"
    elif first["active"] and (live or any(g.count for g in groups)):
        # started, its allocations queued or about to be
        status = "pending"
    else:
        status = "dead"
    return ServiceStatus(
        name=first["service"],
        status=status,
        active=first["active"],
        autostart=first["autostart"],
        groups=groups,
    )


def _allocation(row: asyncpg.Record) -> Allocation:
    return Allocation(
        id=row["id"],
        service=row["service"],
        group=row["group"],
        job=row["job_id"],
        status=row["status"],
        created=row["created"],
    )
