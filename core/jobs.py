"""Jobs: the tree of groups and leaves, and everything a client can do to it.

Each public method is one transaction: it either does all it was asked or, raising a
`CorralError`, nothing at all.
"""

from collections.abc import Sequence
from typing import Literal, TypeVar

import msgspec
from msgspec import UNSET

from core import affinities
from core.commands import CommandPolicy
from core.config import Config
from core.db import Conn, Database
from core.errors import Invalid, NotFound
from core.filters import Column, FilterError, compile_where
from core.models import ChildDependency, Environment, Job, JobEdit, JobPage, JobSpec
from core.sql import Queries

T = TypeVar("T")
Q = Queries("jobs.sql")
RUNS = Queries("runs.sql")
LOGS = Queries("logs.sql")

# the orders of a page of children: a column, "-" first for the other way round
JobSort = Literal[
    "id", "-id", "priority", "-priority", "state", "-state", "title", "-title",
    "start", "-start", "duration", "-duration",
]  # fmt: skip
# each sort's job_list column; only `id` has an index (jobs_parent_order) to walk
_SORT_COLUMNS: dict[str, str] = {
    "priority": "priority",
    "state": "state",
    "title": "title",
    "start": "start_time",
    "duration": "duration",
}
_ID_MAX = 2**63 - 1

DistinctField = Literal["user", "state", "worker", "priority", "affinity"]
_DISTINCT_QUERY: dict[DistinctField, str] = {
    "user": "distinct_users",
    "state": "distinct_states",
    "worker": "distinct_workers",
    "priority": "distinct_priorities",
    "affinity": "distinct_affinities",
}

# What a `where_clause` may name: the columns of job_view as the legacy web page knows them.
_INT_COLUMNS = (
    "id", "parent", "start_time", "duration", "ping_time", "run_done", "retry", "timeout",
    "priority", "finished", "errors", "working", "total", "total_finished", "total_errors",
    "total_working",
)  # fmt: skip
_TEXT_COLUMNS = (
    "title", "command", "dir", "environment", "state", "worker", "affinity", "url",
    "progress_pattern",
)  # fmt: skip
WHERE_COLUMNS: dict[str, Column] = {
    **{name: Column(f"v.{name}", "int") for name in _INT_COLUMNS},
    **{name: Column(f"v.{name}", "text") for name in _TEXT_COLUMNS},
    "user": Column('v."user"', "text"),
    "progress": Column("v.progress", "float"),
}


class Jobs:
    def __init__(self, db: Database, config: Config) -> None:
        self._db = db
        self._config = config
        self._commands = CommandPolicy(config.commands)

    # -- reading ------------------------------------------------------------------------

    async def roots(self) -> list[Job]:
        return await self._db.read(lambda c: _jobs(c, Q["select_children"], 0))

    async def page(
        self,
        parent: int,
        after: int,
        limit: int,
        *,
        states: Sequence[str] = (),
        user: str | None = None,
        title: str | None = None,
        affinities: Sequence[str] = (),
        sort: JobSort = "id",
    ) -> JobPage:
        """The children of `parent` (0: the roots) after job `after` (0: from the start) in
        the order of `sort` (by id unless told; "-" first: the other way round), `limit`
        at most; only those in one of `states`, of `user`, whose title holds `title` (any
        case), whose own affinities include all of `affinities`, when given. By id, a page
        walks an index; by another column, the group's rows passing the filters are sorted
        (see docs/dashboard.md)."""
        pattern = None if title is None else f"%{_like_escaped(title)}%"
        limit = min(limit, self._config.limits.max_page)
        sql, start = _page_query(sort, after)
        wanted = set(affinities)

        async def work(conn: Conn) -> JobPage:
            if parent:
                await _require(conn, [parent])
            slots: list[int] = []
            if wanted:
                rows = await conn.fetch(Q["select_affinity_slots"], list(wanted))
                slots = [r["id"] for r in rows]
                if len(slots) < len(wanted):
                    # an affinity no job was ever given: none needs it
                    return JobPage(jobs=[], next=None)
            # one more than asked tells whether a page follows
            jobs = await _jobs(
                conn, sql, parent, start, list(states), user, pattern, limit + 1, slots
            )
            more = len(jobs) > limit
            del jobs[limit:]
            return JobPage(jobs=jobs, next=jobs[-1].id if more else None)

        return await self._db.read(work)

    async def foreign(self, ids: Sequence[int], user: str) -> list[int]:
        """Which of `ids` belong to someone other than `user` (unknown ids are not listed)."""

        async def work(conn: Conn) -> list[int]:
            return [r["id"] for r in await conn.fetch(Q["foreign"], list(ids), user)]

        return await self._db.read(work)

    async def get(self, job_id: int) -> Job:
        async def work(conn: Conn) -> Job:
            found = await _jobs(conn, Q["select_job"], job_id)
            if not found:
                raise NotFound(f"no such job: {job_id}")
            [job] = found
            job.dependencies = [r[0] for r in await conn.fetch(Q["select_dependency_ids"], job_id)]
            return job

        return await self._db.read(work)

    async def children(self, job_id: int) -> list[Job]:
        async def work(conn: Conn) -> list[Job]:
            await _require(conn, [job_id])
            return await _jobs(conn, Q["select_children"], job_id)

        return await self._db.read(work)

    async def dependencies(self, job_id: int) -> list[Job]:
        async def work(conn: Conn) -> list[Job]:
            await _require(conn, [job_id])
            return await _jobs(conn, Q["select_dependencies"], job_id)

        return await self._db.read(work)

    async def children_dependencies(self, job_id: int) -> list[ChildDependency]:
        async def work(conn: Conn) -> list[ChildDependency]:
            await _require(conn, [job_id])
            rows = await conn.fetch(Q["select_children_dependencies"], job_id)
            return [ChildDependency(r["id"], r["dependency"]) for r in rows]

        return await self._db.read(work)

    async def log(self, job_id: int) -> str:
        async def work(conn: Conn) -> str:
            await _require(conn, [job_id])
            data: bytes = await conn.fetchval(LOGS["read_all"], job_id)
            return data.decode("utf-8", errors="replace")

        return await self._db.read(work)

    async def where(self, clause: str, first: int, last: int | None) -> list[Job]:
        """Jobs matching a legacy `where_clause`, rows `first` to `last` (exclusive) by id."""
        limit = self._config.limits.max_page
        count = limit if last is None else min(max(last - first, 0), limit)
        fragment, params = _compile(clause, first_param=3)
        # the only composed SQL: `fragment` holds whitelisted column names, keywords and
        # placeholders; every value from the client is a bound parameter. It filters
        # job_view, which has every column by its name, and job_list sends the page.
        sql = (
            "SELECT l.* FROM job_list l WHERE l.id IN ("
            f"SELECT v.id FROM job_view v WHERE {fragment} ORDER BY v.id OFFSET $1 LIMIT $2"
            ") ORDER BY l.id"
        )
        return await self._db.read(lambda c: _jobs(c, sql, first, count, *params))

    async def count_where(self, clause: str) -> int:
        fragment, params = _compile(clause, first_param=1)
        sql = f"SELECT count(*) FROM job_view v WHERE {fragment}"

        async def work(conn: Conn) -> int:
            n: int = await conn.fetchval(sql, *params)
            return n

        return await self._db.read(work)

    async def distinct(self, field: DistinctField) -> list[str | int]:
        async def work(conn: Conn) -> list[str | int]:
            return [r[0] for r in await conn.fetch(Q[_DISTINCT_QUERY[field]])]

        return await self._db.read(work)

    # -- changing -----------------------------------------------------------------------

    async def submit(self, spec: JobSpec) -> int:
        """Create a job; answer its id."""
        [job_id] = await self._db.transact(lambda c: self._submit(c, spec.parent, [spec]))
        return job_id

    async def submit_many(self, parent: int, specs: Sequence[JobSpec]) -> list[int]:
        """Create many jobs under one parent (0 for roots) at once; their ids, in order."""
        strays = sorted({s.parent for s in specs} - {0, parent})
        if strays:
            raise Invalid(f"jobs of one submission go under its parent {parent}, not {strays}")
        return await self._db.transact(lambda c: self._submit(c, parent, specs))

    async def edit(self, changes: dict[int, JobEdit]) -> None:
        """Apply changes to several jobs at once (all or none)."""

        async def work(conn: Conn) -> None:
            for job_id in sorted(changes):
                await self._edit(conn, job_id, changes[job_id])

        await self._db.transact(work)

    async def set_dependencies(self, job_id: int, depends_on: Sequence[int]) -> None:
        """Replace the whole dependency set of a job (an empty one clears it)."""

        async def work(conn: Conn) -> None:
            if await conn.fetchrow(Q["lock_job"], job_id) is None:
                raise NotFound(f"job {job_id} does not exist")
            await self._set_dependencies(conn, job_id, depends_on)

        await self._db.transact(work)

    async def delete(self, ids: Sequence[int]) -> None:
        """Delete jobs with their subtrees, logs and dependency rows."""

        async def work(conn: Conn) -> None:
            await _require(conn, ids)
            await self.delete_in(conn, ids)

        await self._db.transact(work)

    async def reset(self, ids: Sequence[int], *, only_errors: bool = False) -> None:
        """Put the leaves of the subtrees back to their start (or only those in ERROR)."""

        async def work(conn: Conn) -> None:
            await _require(conn, ids)
            await self.reset_in(conn, ids, only_errors=only_errors)

        await self._db.transact(work)

    async def start(self, ids: Sequence[int]) -> None:
        """Unpause the subtrees and queue again their finished or failed leaves."""

        async def work(conn: Conn) -> None:
            await _require(conn, ids)
            await conn.execute(Q["start_subtrees"], list(ids))

        await self._db.transact(work)

    async def pause(self, ids: Sequence[int]) -> None:
        """Pause the subtrees; their running leaves stop and wait, paused."""

        async def work(conn: Conn) -> None:
            await _require(conn, ids)
            await self._pause(conn, ids)

        await self._db.transact(work)

    # -- in the caller's transaction (for other core services) ---------------------------

    async def delete_in(self, conn: Conn, ids: Sequence[int]) -> None:
        await conn.execute(RUNS["interrupt_runs"], list(ids), [], "CANCELED", "deleted")
        await conn.execute(Q["delete_subtrees"], list(ids))

    async def reset_in(self, conn: Conn, ids: Sequence[int], *, only_errors: bool = False) -> None:
        if not only_errors:
            await conn.execute(RUNS["interrupt_runs"], list(ids), [], "CANCELED", "reset")
            await conn.execute(Q["set_paused"], list(ids), False)
        reset = [r["id"] for r in await conn.fetch(Q["reset_leaves"], list(ids), only_errors)]
        await conn.execute(Q["delete_logs"], reset)

    async def pause_in(self, conn: Conn, ids: Sequence[int]) -> None:
        await self._pause(conn, ids)

    async def unpause_in(self, conn: Conn, ids: Sequence[int]) -> None:
        """Unpause the subtrees, leaving their leaves as they are."""
        await conn.execute(Q["set_paused"], list(ids), False)

    async def edit_in(self, conn: Conn, job_id: int, edit: JobEdit) -> None:
        await self._edit(conn, job_id, edit)

    # -- the parts ----------------------------------------------------------------------

    async def insert(
        self,
        conn: Conn,
        parent_id: int,
        specs: Sequence[JobSpec],
        *,
        revision: int | None = None,
        meta: dict[str, object] | None = None,
    ) -> list[int]:
        """Create jobs under one parent, in the caller's transaction (for other core
        services); `revision` is the job type revision they are made from, `meta` what a
        face keeps of each of them."""
        return await self._submit(conn, parent_id, specs, revision=revision, meta=meta or {})

    async def depend(self, conn: Conn, pairs: Sequence[tuple[int, Sequence[int]]]) -> None:
        """Make each job of `pairs` depend on its jobs, in the caller's transaction (for
        other core services building trees)."""
        await self._add_dependencies(conn, pairs)

    async def _submit(
        self,
        conn: Conn,
        parent_id: int,
        specs: Sequence[JobSpec],
        *,
        revision: int | None = None,
        meta: dict[str, object] | None = None,
    ) -> list[int]:
        """Create jobs under one parent with one INSERT; their ids, in order."""
        path: list[int] = []
        prio_prefix: list[int] = []
        inherited: set[int] = set()
        parent_paused = False
        if parent_id:
            parent = await conn.fetchrow(Q["lock_job"], parent_id)
            if parent is None:
                raise Invalid(f"parent job {parent_id} does not exist")
            if parent["command"]:
                raise Invalid(
                    f"job {parent_id} has a command, so it cannot have children; "
                    "a group is a job with an empty command"
                )
            path = [*parent["path"], parent["id"]]
            prio_prefix = list(parent["prio_path"])
            inherited = set(parent["affinity_ids"])
            parent_paused = parent["paused"]
            await self._check_children(conn, parent_id, len(specs))
        self._check_depth(len(path) + 1)
        own_ids: dict[str, list[int]] = {}
        rows: list[_NewJob] = []
        for spec in specs:
            self._commands.check(spec.user, spec.command)
        for order, spec in enumerate(specs):
            if spec.affinity not in own_ids:
                own_ids[spec.affinity] = await self._affinity_ids(conn, spec.affinity)
            own = own_ids[spec.affinity]
            rows.append(
                _NewJob(
                    order=order,
                    title=spec.title,
                    command=spec.command,
                    dir=spec.dir,
                    environment=_environment(spec.environment),
                    user_name=spec.user,
                    url=spec.url,
                    progress_pattern=spec.progress_pattern,
                    own_affinity_ids=own,
                    affinity_ids=sorted(inherited | set(own)),
                    priority=spec.priority,
                    retry=spec.retry,
                    timeout=spec.timeout,
                    tags=spec.tags,
                    paused=parent_paused or bool(spec.paused) or spec.state == "PAUSED",
                    meta=meta or {},
                    job_type_revision_id=revision,
                    resources=spec.resources,
                )
            )
        encoded = msgspec.json.encode(rows).decode()
        inserted = await conn.fetch(Q["insert_jobs"], parent_id or None, path, prio_prefix, encoded)
        # one statement's identity values rise in the order of its rows
        ids = sorted(r["id"] for r in inserted)
        waiting = [(job_id, spec.dependencies) for job_id, spec in zip(ids, specs, strict=True)]
        if any(deps for _, deps in waiting):
            await self._add_dependencies(conn, waiting)
        return ids

    async def _edit(self, conn: Conn, job_id: int, edit: JobEdit) -> None:
        row = await conn.fetchrow(Q["lock_job"], job_id)
        if row is None:
            raise NotFound(f"job {job_id} does not exist")
        await conn.execute(
            Q["update_fields"],
            job_id,
            _given(edit.title),
            _given(edit.dir),
            None if edit.environment is UNSET else _environment(edit.environment),
            _given(edit.user),
            _given(edit.url),
            _given(edit.progress_pattern),
            _given(edit.retry),
            _given(edit.timeout),
            _given(edit.tags),
        )
        if edit.command is not UNSET and edit.command != row["command"]:
            self._commands.check(_given(edit.user) or row["user_name"], edit.command)
            if edit.command and row["has_children"]:
                raise Invalid(f"job {job_id} has children, so it cannot have a command")
            if row["state"] == "WORKING" and not edit.command:
                raise Invalid(f"job {job_id} is running; pause it before making it a group")
            await conn.execute(Q["update_command"], job_id, edit.command)
        if edit.priority is not UNSET:
            await conn.execute(Q["update_priority"], job_id, edit.priority, len(row["path"]) + 1)
        if edit.affinity is not UNSET:
            own = await self._affinity_ids(conn, edit.affinity)
            await conn.execute(Q["update_own_affinity"], job_id, own)
            await conn.execute(Q["refresh_affinity"], job_id)
        if edit.parent is not UNSET and edit.parent != (row["parent_id"] or 0):
            await self._move(conn, job_id, list(row["path"]), edit.parent)
        if edit.dependencies is not UNSET:
            await self._set_dependencies(conn, job_id, edit.dependencies)
        if edit.state is not UNSET and edit.state not in ("PAUSED", "WAITING"):
            raise Invalid(
                f"state of job {job_id} can be set to PAUSED or WAITING only, not {edit.state}"
            )
        if edit.state == "PAUSED" or (edit.paused is not UNSET and edit.paused):
            await self._pause(conn, [job_id])
        elif edit.state == "WAITING":
            await conn.execute(Q["start_subtrees"], [job_id])
        elif edit.paused is not UNSET:
            await conn.execute(Q["set_paused"], [job_id], False)

    async def _move(self, conn: Conn, job_id: int, old_path: list[int], parent_id: int) -> None:
        new_path: list[int] = []
        prio_prefix: list[int] = []
        if parent_id:
            parent = await conn.fetchrow(Q["lock_job"], parent_id)
            if parent is None:
                raise Invalid(f"parent job {parent_id} does not exist")
            if parent_id == job_id or job_id in parent["path"]:
                raise Invalid(f"job {job_id} cannot move below itself")
            if parent["command"]:
                raise Invalid(f"job {parent_id} has a command, so it cannot have children")
            new_path = [*parent["path"], parent_id]
            prio_prefix = list(parent["prio_path"])
            await self._check_children(conn, parent_id, 1)
        height: int = await conn.fetchval(Q["subtree_height"], job_id)
        self._check_depth(len(new_path) + 1 + height)
        await conn.execute(
            Q["move_subtree"], job_id, parent_id or None, new_path, prio_prefix, len(old_path)
        )
        await conn.execute(Q["refresh_affinity"], job_id)
        checked = await conn.fetch(Q["with_dependencies"], [job_id])
        await _check_cycles(conn, [r["id"] for r in checked])

    async def _add_dependencies(
        self, conn: Conn, waiting: Sequence[tuple[int, Sequence[int]]]
    ) -> None:
        """Add dependencies to jobs that have none yet, all in one statement."""
        limit = self._config.limits.max_dependencies
        for job_id, deps in waiting:
            if len(set(deps)) > limit:
                raise Invalid(
                    f"a job may depend on {limit} jobs at most; job {job_id} would depend "
                    f"on {len(set(deps))}"
                )
        pairs = [(job_id, dep) for job_id, deps in waiting for dep in sorted(set(deps))]
        targets = sorted({dep for _, dep in pairs})
        existing = {r["id"] for r in await conn.fetch(Q["select_existing"], targets)}
        missing = [d for d in targets if d not in existing]
        if missing:
            raise Invalid(f"dependencies do not exist: {missing}")
        await conn.execute(
            Q["insert_dependency_pairs"], [j for j, _ in pairs], [d for _, d in pairs]
        )
        await _check_cycles(conn, sorted({j for j, _ in pairs}))

    async def _set_dependencies(self, conn: Conn, job_id: int, depends_on: Sequence[int]) -> None:
        if job_id in depends_on:
            raise Invalid(f"job {job_id} cannot depend on itself")
        await conn.execute(Q["delete_dependencies"], job_id)
        await self._add_dependencies(conn, [(job_id, depends_on)])

    async def _pause(self, conn: Conn, ids: Sequence[int]) -> None:
        await conn.execute(Q["set_paused"], list(ids), True)
        await conn.execute(RUNS["interrupt_runs"], list(ids), [], "CANCELED", "paused")

    async def _affinity_ids(self, conn: Conn, text: str) -> list[int]:
        return await affinities.resolve(
            conn, affinities.parse_names(text), create=self._config.affinities.create_unknown
        )

    async def _check_children(self, conn: Conn, parent_id: int, adding: int) -> None:
        limit = self._config.limits.max_children
        if adding > limit:
            raise Invalid(f"a group holds {limit} children at most; this adds {adding}")
        have: int = await conn.fetchval(Q["count_children"], parent_id, limit - adding + 1)
        if have + adding > limit:
            raise Invalid(
                f"a group holds {limit} children at most; job {parent_id} has "
                f"{'at least ' if have > limit - adding else ''}{have} already, and this "
                f"adds {adding}"
            )

    def _check_depth(self, depth: int) -> None:
        limit = self._config.limits.max_depth
        if depth > limit:
            raise Invalid(f"job trees are limited to {limit} levels; this would make {depth}")


async def _check_cycles(conn: Conn, ids: list[int]) -> None:
    if not ids:
        return
    culprit = await conn.fetchval(Q["dependency_cycle"], ids)
    if culprit is not None:
        raise Invalid(
            f"the dependencies of job {culprit} would form a cycle: it would wait for "
            "itself, through its dependencies or its groups"
        )


async def _require(conn: Conn, ids: Sequence[int]) -> None:
    existing = {r["id"] for r in await conn.fetch(Q["select_existing"], list(ids))}
    missing = sorted(set(ids) - existing)
    if missing:
        raise NotFound(f"no such job: {', '.join(map(str, missing))}")


def _page_query(sort: JobSort, after: int) -> tuple[str, int]:
    """The query of a page in the order of `sort`, and the `after` it takes."""
    descending = sort.startswith("-")
    column = sort.removeprefix("-")
    if column == "id":
        if descending:
            return Q["select_page_desc"], after or _ID_MAX
        return Q["select_page"], after
    key = _SORT_COLUMNS[column]
    sql = (
        Q["select_page_sorted"]
        .replace("SORT_KEY", key)
        .replace("SORT_DIR", "DESC" if descending else "ASC")
        .replace("SORT_CMP", "<" if descending else ">")
    )
    return sql, after


async def _jobs(conn: Conn, sql: str, *args: object) -> list[Job]:
    """The jobs of a query on `job_list`, built by position (a dictionary per row was most
    of the server's time when listing a big farm)."""
    rows = await conn.fetch(sql, *args)
    if rows and tuple(rows[0].keys()) != _JOB_FIELDS:
        raise RuntimeError(f"job_list columns {tuple(rows[0].keys())} are not Job's fields")
    return await _named(conn, [Job(*row) for row in rows])


_JOB_FIELDS = tuple(f for f in Job.__struct_fields__ if f != "dependencies")


async def _named(conn: Conn, jobs: list[Job]) -> list[Job]:
    """Turn the slot numbers of job_list's `affinity` ('3,1') into the slots' names
    ('GPU,LINUX'), as one read of the few named slots."""
    if not any(job.affinity for job in jobs):
        return jobs
    names = {r["id"]: r["name"] for r in await conn.fetch(Q["select_affinity_names"])}
    # farms have few distinct affinity sets: name each once
    named: dict[str, str] = {}
    for job in jobs:
        text = named.get(job.affinity)
        if text is None:
            slots = job.affinity.split(",") if job.affinity else []
            # a slot cleared since the job named it is dropped, as corral_affinity_names does
            text = ",".join(names[s] for s in slots if s in names)
            named[job.affinity] = text
        job.affinity = text
    return jobs


def _like_escaped(text: str) -> str:
    """`text` matched literally inside an ILIKE pattern (whose escape character is `\\`)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _compile(clause: str, *, first_param: int) -> tuple[str, list[int | float | str]]:
    try:
        return compile_where(clause, WHERE_COLUMNS, first_param)
    except FilterError as exc:
        raise Invalid(f"where_clause: {exc}") from None


class _NewJob(msgspec.Struct):
    """One row of a bulk insert, as the insert_jobs query reads it."""

    order: int
    title: str
    command: str
    dir: str
    environment: str
    user_name: str
    url: str
    progress_pattern: str
    own_affinity_ids: list[int]
    affinity_ids: list[int]
    priority: int
    retry: int
    timeout: int
    tags: list[str]
    paused: bool
    meta: dict[str, object]
    job_type_revision_id: int | None
    resources: dict[str, float]


def _environment(env: Environment) -> str:
    if isinstance(env, str):
        return env
    for name in env:
        if not name or "=" in name or "\n" in name:
            raise Invalid(f"environment variable name {name!r} is not valid")
    return "\n".join(f"{name}={value}" for name, value in env.items())


def _given(value: T | msgspec.UnsetType) -> T | None:
    return None if isinstance(value, msgspec.UnsetType) else value
