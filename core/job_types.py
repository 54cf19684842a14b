"""Job types: versioned templates of leaf jobs, unique by (name, version), each holding a
Seed manifest (core.seed), a configuration and the flags that govern its jobs.

Giving the manifest again makes a new revision (a row of job_type_revisions), and a job
made from a type keeps the revision it was made from. The values of secret settings are
kept apart from the configuration, encrypted (core.secrets); nothing this module answers
holds them but `run_settings`, which a job's run needs.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Literal, TypeVar

import asyncpg
import msgspec
from msgspec import UNSET, UnsetType

from core import seed, seed_jobs
from core.config import Config
from core.db import Conn, Database
from core.errors import Invalid, NotFound
from core.jobs import Jobs
from core.models import JobSpec
from core.runs import Assignment, with_environment
from core.secrets import Secrets
from core.sql import Queries

Q = Queries("job_types.sql")
S = TypeVar("S", bound=msgspec.Struct)
T = TypeVar("T")
# a name the routes of the Scale face take for themselves
RESERVED_NAMES = ("validation",)


class JobTypeRow(msgspec.Struct, kw_only=True):
    """A job type as the lists show it."""

    id: int
    name: str
    version: str
    title: str
    description: str
    # manifest.job.tags, for keyword searches
    tags: list[str]
    icon_code: str | None
    is_active: bool
    is_system: bool
    is_paused: bool
    is_published: bool
    max_scheduled: int | None
    max_tries: int
    revision_num: int
    docker_image: str
    created: datetime
    deprecated: datetime | None
    paused: datetime | None
    last_modified: datetime


class JobTypeDetails(JobTypeRow, kw_only=True):
    # with Seed's defaults filled in
    manifest: dict[str, object]
    # without the values of secret settings
    configuration: dict[str, object]


class Revision(msgspec.Struct, kw_only=True):
    id: int
    job_type_id: int
    revision_num: int
    docker_image: str
    created: datetime
    manifest: dict[str, object]


class JobError(msgspec.Struct, kw_only=True):
    """An error a job of a type ended with: one its manifest names, or a built-in one."""

    id: int
    name: str
    title: str
    description: str
    # the type name the error belongs to; None for a built-in error
    job_type_name: str | None
    category: Literal["SYSTEM", "ALGORITHM", "DATA"]
    is_builtin: bool
    should_be_retried: bool
    created: datetime
    last_modified: datetime


class TypedJob(msgspec.Struct, kw_only=True):
    """A job made from a job type, with its last run."""

    id: int
    # the job's state as every face shows it (core.models.JobState)
    state: str
    type_id: int
    revision_id: int
    revision_num: int
    max_tries: int
    # runs started
    num_exes: int
    # the worker of its last run
    worker: str
    created: datetime
    started: datetime | None
    ended: datetime | None
    last_modified: datetime
    error: JobError | None
    # the data it was queued with, and its configuration (no secret in it)
    input: object
    configuration: dict[str, object]


class JobFilter(msgspec.Struct, kw_only=True):
    """Which jobs of types a list holds; an empty list means any."""

    type_ids: list[int] = msgspec.field(default_factory=list)
    type_names: list[str] = msgspec.field(default_factory=list)
    ids: list[int] = msgspec.field(default_factory=list)
    states: list[str] = msgspec.field(default_factory=list)
    error_categories: list[str] = msgspec.field(default_factory=list)


class StateCount(msgspec.Struct, kw_only=True):
    """Jobs of a type in one state (and, when FAILED, of one error category)."""

    type_id: int
    state: str
    error_category: str | None
    count: int
    # the latest change of state among them
    most_recent: datetime


class Waiting(msgspec.Struct, kw_only=True):
    """Jobs of a type in one state, and since when the oldest of them is."""

    type_id: int
    count: int
    since: datetime | None


class SystemFailures(msgspec.Struct, kw_only=True):
    type_id: int
    error: JobError
    count: int
    first_error: datetime
    last_error: datetime


class JobTypeChange(msgspec.Struct, kw_only=True):
    """What a caller sets on a job type; a field left UNSET stays as it is (or takes its
    default on a new type)."""

    manifest: seed.Manifest | UnsetType = UNSET
    configuration: seed.Configuration | UnsetType = UNSET
    docker_image: str | UnsetType = UNSET
    icon_code: str | UnsetType | None = UNSET
    is_published: bool | UnsetType = UNSET
    max_scheduled: int | UnsetType | None = UNSET
    is_active: bool | UnsetType = UNSET
    is_paused: bool | UnsetType = UNSET


class JobTypes:
    def __init__(self, db: Database, config: Config, jobs: Jobs, secrets: Secrets) -> None:
        self._db = db
        self._config = config
        self._jobs = jobs
        self._secrets = secrets

    async def queue(
        self, type_id: int, data: object, configuration: object | None, user: str
    ) -> int:
        """Queue a job of the type `type_id` with `data` (Seed inputs), the type's
        configuration with `configuration` over it (settings merged, priority replaced),
        as `user`; the new job's id. It is a leaf under the type's group, made from the
        type's current revision."""

        async def work(conn: Conn) -> int:
            row = await conn.fetchrow(Q["lock_type_by_id"], type_id)
            if row is None:
                raise NotFound("Not found.")
            manifest = seed.read_manifest(msgspec.json.decode(row["manifest"]))
            effective = _whole(row["configuration"], self._secrets.open(row["secrets"]))
            if configuration is not None:
                effective = _over(effective, configuration)
            job_input = seed_jobs.read_input(data, manifest)
            public, _ = self._split(manifest, effective)
            plain = public["settings"]
            assert isinstance(plain, dict)
            run = seed_jobs.compose(manifest, job_input, plain)
            group = row["group_id"]
            # made with the type's first job, and again if a wrangler deleted it
            if group is None or not await conn.fetchval(Q["group_exists"], group):
                group = await self._group(conn, row)
            spec = JobSpec(
                parent=group,
                title=manifest.job.title,
                command=run.command,
                user=user,
                # Scale runs its lower numbers first, Corral its higher ones
                priority=-effective.priority,
                timeout=manifest.job.timeout,
                tags=[type_tag(type_id)],
                resources={r.name: float(r.value) for r in manifest.scalars()},
            )
            meta: dict[str, object] = {"job_type": {"input": data, "configuration": public}}
            [job_id] = await self._jobs.insert(
                conn, group, [spec], revision=row["revision_id"], meta=meta
            )
            environment = {
                **run.environment,
                "OUTPUT_DIR": f"{self._config.job_types.output_dir.rstrip('/')}/{job_id}",
            }
            await conn.execute(Q["set_environment"], job_id, _lines(environment))
            return job_id

        return await self._db.transact(work)

    async def jobs(self, chosen: JobFilter, offset: int, limit: int) -> tuple[int, list[TypedJob]]:
        """Jobs of types, the most recently changed first: how many match, and those from
        `offset` on, `limit` at most."""

        async def work(conn: Conn) -> tuple[int, list[TypedJob]]:
            rows = await conn.fetch(
                Q["select_typed_jobs"],
                chosen.type_ids,
                chosen.type_names,
                chosen.ids,
                chosen.states,
                chosen.error_categories,
                offset,
                limit,
            )
            return (rows[0]["total"] if rows else 0), [_typed_job(r) for r in rows]

        return await self._db.read(work)

    async def state_counts(self, since: datetime, until: datetime | None) -> list[StateCount]:
        """Per type, its jobs by state and error category: those whose state last changed
        between `since` and `until` (None: now), and every running one."""

        async def work(conn: Conn) -> list[StateCount]:
            rows = await conn.fetch(Q["select_status_counts"], since, until)
            return [_row(r, StateCount) for r in rows]

        return await self._db.read(work)

    async def waiting(self, state: Literal["PENDING", "WORKING"]) -> list[Waiting]:
        """Per type, its jobs in `state`, with the earliest creation (PENDING) or start
        (WORKING) among them."""
        since = "started" if state == "WORKING" else "created_at"

        async def work(conn: Conn) -> list[Waiting]:
            rows = await conn.fetch(Q["select_waiting_counts"], state, since)
            return [_row(r, Waiting) for r in rows]

        return await self._db.read(work)

    async def system_failures(self) -> list[SystemFailures]:
        """Per type and error, its jobs that failed with a SYSTEM error."""

        async def work(conn: Conn) -> list[SystemFailures]:
            rows = await conn.fetch(Q["select_system_failures"])
            errors = {
                r["id"]: _row(r, JobError)
                for r in await conn.fetch(Q["select_errors"], [r["error_id"] for r in rows])
            }
            return [
                SystemFailures(
                    type_id=r["type_id"],
                    error=errors[r["error_id"]],
                    count=r["count"],
                    first_error=r["first_error"],
                    last_error=r["last_error"],
                )
                for r in rows
            ]

        return await self._db.read(work)

    async def secret_environment(self, revisions: Sequence[int]) -> dict[int, dict[str, str]]:
        """For the job type revisions `revisions`, the environment their jobs' runs get
        for the type's secret settings (none for a type without any)."""
        if not revisions:
            return {}

        async def work(conn: Conn) -> dict[int, dict[str, str]]:
            found: dict[int, dict[str, str]] = {}
            for row in await conn.fetch(Q["select_secrets"], list(set(revisions))):
                found[row["revision_id"]] = {
                    seed.environment_name(k): v
                    for k, v in self._secrets.open(row["secrets"]).items()
                }
            return found

        return await self._db.read(work)

    async def prepare(self, runs: list[Assignment]) -> list[Assignment]:
        """The runs with the secret settings of their job types in their environment:
        they join it only here, on the runs' way to their worker."""
        typed = [r.revision for r in runs if r.revision is not None]
        if not typed:
            return runs
        secrets = await self.secret_environment(typed)
        return [
            msgspec.structs.replace(
                r, environment=with_environment(r.environment, secrets[r.revision])
            )
            if r.revision in secrets
            else r
            for r in runs
        ]

    async def _group(self, conn: Conn, row: asyncpg.Record) -> int:
        [group] = await self._jobs.insert(
            conn, 0, [JobSpec(title=f"{row['name']} {row['version']}")]
        )
        await conn.execute(Q["set_group"], row["id"], group)
        return group

    async def save(self, change: JobTypeChange) -> tuple[JobTypeDetails, bool]:
        """Create the job type of `change.manifest` (its name and jobVersion), or edit it in
        place if it exists, with a new revision either way. The type, and whether it is
        new."""
        manifest = change.manifest
        if isinstance(manifest, UnsetType):
            raise Invalid("a job type needs a manifest")
        name, version = manifest.job.name, manifest.job.job_version
        if name in RESERVED_NAMES:
            raise Invalid(f'Unable to create job type named "{name}"')
        _check_limit(change.max_scheduled)

        async def work(conn: Conn) -> tuple[JobTypeDetails, bool]:
            configuration = change.configuration or seed.Configuration()
            stored = seed.stored_manifest(manifest)
            public, secret = self._split(manifest, configuration)
            created = await conn.fetchval(
                Q["insert_type"],
                name,
                version,
                _given(change.docker_image, ""),
                msgspec.json.encode(stored).decode(),
                msgspec.json.encode(public).decode(),
                self._secrets.seal(secret),
                _given(change.icon_code, None),
                _given(change.is_active, True),
                _given(change.is_paused, False),
                _given(change.is_published, False),
                _given(change.max_scheduled, None),
            )
            if created is None:
                await self._edit(conn, name, version, change)
            else:
                await conn.execute(
                    Q["insert_revision"],
                    created,
                    1,
                    msgspec.json.encode(stored).decode(),
                    _given(change.docker_image, ""),
                )
                await _keep_errors(conn, manifest)
            return await _details(conn, name, version), created is not None

        return await self._db.transact(work)

    async def edit(self, name: str, version: str, change: JobTypeChange) -> None:
        """Change an existing job type; a manifest given makes a new revision."""

        async def work(conn: Conn) -> None:
            await self._edit(conn, name, version, change)

        await self._db.transact(work)

    async def rows(self, name: str | None = None) -> list[JobTypeRow]:
        """Every job type (of `name`), in no particular order: the faces filter and sort
        the few hundred a farm has."""

        async def work(conn: Conn) -> list[JobTypeRow]:
            return [_row(r, JobTypeRow) for r in await conn.fetch(Q["select_rows"], name)]

        return await self._db.read(work)

    async def by_id(self) -> dict[int, JobTypeRow]:
        return {row.id: row for row in await self.rows()}

    async def details(self, name: str, version: str) -> JobTypeDetails:
        return await self._db.read(lambda conn: _details(conn, name, version))

    async def revisions(self, name: str, version: str, number: int | None = None) -> list[Revision]:
        """The revisions of a job type, newest first (only `number` when given)."""

        async def work(conn: Conn) -> list[Revision]:
            type_id = await conn.fetchval(Q["select_type_id"], name, version)
            if type_id is None:
                raise NotFound("Not found.")
            rows = await conn.fetch(Q["select_revisions"], type_id, number)
            return [_row(r, Revision) for r in rows]

        return await self._db.read(work)

    async def _edit(self, conn: Conn, name: str, version: str, change: JobTypeChange) -> None:
        row = await conn.fetchrow(Q["lock_type"], name, version)
        if row is None:
            raise NotFound("Not found.")
        _check_limit(change.max_scheduled)
        manifest = (
            change.manifest
            if isinstance(change.manifest, seed.Manifest)
            else seed.read_manifest(msgspec.json.decode(row["manifest"]))
        )
        # the whole configuration again, secrets included, then split by the manifest
        # now in force: a setting may have become secret, or stopped being one
        configuration = (
            change.configuration
            if isinstance(change.configuration, seed.Configuration)
            else _whole(row["configuration"], self._secrets.open(row["secrets"]))
        )
        public, secret = self._split(manifest, configuration)
        docker_image = _given(change.docker_image, row["docker_image"])
        stored = msgspec.json.encode(seed.stored_manifest(manifest)).decode()
        new_revision = isinstance(change.manifest, seed.Manifest)
        revision = await conn.fetchval(
            Q["update_type"],
            row["id"],
            docker_image,
            stored,
            msgspec.json.encode(public).decode(),
            self._secrets.seal(secret),
            _given(change.icon_code, row["icon_code"]),
            _given(change.is_published, row["is_published"]),
            _given(change.max_scheduled, row["max_scheduled"]),
            _given(change.is_active, row["is_active"]),
            _given(change.is_paused, row["is_paused"]),
            new_revision,
        )
        if new_revision:
            await conn.execute(Q["insert_revision"], row["id"], revision, stored, docker_image)
            await _keep_errors(conn, manifest)

    def _split(
        self, manifest: seed.Manifest, configuration: seed.Configuration
    ) -> tuple[dict[str, object], dict[str, str]]:
        secret = {s.name for s in manifest.settings() if s.secret}
        values = {k: v for k, v in configuration.settings.items() if k in secret}
        return seed.public_configuration(manifest, configuration), values


def _typed_job(row: asyncpg.Record) -> TypedJob:
    meta = msgspec.json.decode(row["meta"]).get("job_type", {})
    error = None
    if row["error_id"] is not None:
        error = JobError(
            id=row["error_id"],
            name=row["error_name"],
            title=row["error_title"],
            description=row["error_description"],
            job_type_name=row["error_job_type_name"],
            category=row["error_category"],
            is_builtin=row["error_is_builtin"],
            should_be_retried=row["error_should_be_retried"],
            created=row["error_created"],
            last_modified=row["error_last_modified"],
        )
    return TypedJob(
        id=row["id"],
        state=row["state"],
        type_id=row["type_id"],
        revision_id=row["revision_id"],
        revision_num=row["revision_num"],
        max_tries=row["max_tries"],
        num_exes=row["num_exes"],
        worker=row["worker"],
        created=row["created_at"],
        started=row["started"],
        ended=row["ended"],
        last_modified=row["last_modified"],
        error=error,
        input=meta.get("input", {}),
        configuration=meta.get("configuration", {}),
    )


# the tags of a job type's jobs: this, then the type's id
TYPE_TAG = "scale-type:"


def type_tag(type_id: int) -> str:
    """The tag of a job type's jobs, which policies count and limit them by."""
    return f"{TYPE_TAG}{type_id}"


def _over(configuration: seed.Configuration, override: object) -> seed.Configuration:
    """A job's own configuration over its type's: settings merged, priority replaced."""
    given = seed.read_configuration(override)
    merged = msgspec.structs.replace(
        configuration, settings={**configuration.settings, **given.settings}
    )
    if isinstance(override, dict) and "priority" in override:
        merged = msgspec.structs.replace(merged, priority=given.priority)
    return merged


def _lines(environment: dict[str, str]) -> str:
    for name, value in environment.items():
        if "\n" in value or "\r" in value:
            raise Invalid(
                f"Invalid job data: '{name}' may not hold a line break: it becomes an "
                "environment variable"
            )
    return "\n".join(f"{name}={value}" for name, value in environment.items())


async def _keep_errors(conn: Conn, manifest: seed.Manifest) -> None:
    """The errors the manifest names, kept for its type name (shared by its versions)."""
    errors = [
        {"name": e.name, "title": e.title or None, "description": e.description or None,
         "category": e.category}
        for e in manifest.errors()
    ]  # fmt: skip
    if errors:
        await conn.execute(
            Q["upsert_errors"], manifest.job.name, msgspec.json.encode(errors).decode()
        )


def _whole(public: str, secret: dict[str, str]) -> seed.Configuration:
    configuration = seed.read_configuration(msgspec.json.decode(public))
    configuration.settings |= secret
    return configuration


def _check_limit(limit: int | UnsetType | None) -> None:
    if isinstance(limit, int) and limit < 0:
        raise Invalid("max_scheduled must be 0 or more (0 and null mean no limit)")


async def _details(conn: Conn, name: str, version: str) -> JobTypeDetails:
    row = await conn.fetchrow(Q["select_details"], name, version)
    if row is None:
        raise NotFound("Not found.")
    return _row(row, JobTypeDetails)


def _row(row: asyncpg.Record, kind: type[S]) -> S:
    fields = dict(row.items())
    for key in ("manifest", "configuration"):
        if isinstance(fields.get(key), str):
            fields[key] = msgspec.json.decode(fields[key])
    return msgspec.convert(fields, kind)


def _given(value: T | UnsetType, default: T) -> T:
    return default if isinstance(value, UnsetType) else value
