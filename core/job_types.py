"""Job types: versioned templates of leaf jobs, unique by (name, version), each holding a
Seed manifest (core.seed), a configuration and the flags that govern its jobs.

Giving the manifest again makes a new revision (a row of job_type_revisions), and a job
made from a type keeps the revision it was made from. The values of secret settings are
kept apart from the configuration, encrypted (core.secrets); nothing this module answers
holds them but `run_settings`, which a job's run needs.
"""

from datetime import datetime
from typing import TypeVar

import asyncpg
import msgspec
from msgspec import UNSET, UnsetType

from core import seed
from core.db import Conn, Database
from core.errors import Invalid, NotFound
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
    def __init__(self, db: Database, secrets: Secrets) -> None:
        self._db = db
        self._secrets = secrets

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

    def _split(
        self, manifest: seed.Manifest, configuration: seed.Configuration
    ) -> tuple[dict[str, object], dict[str, str]]:
        secret = {s.name for s in manifest.settings() if s.secret}
        values = {k: v for k, v in configuration.settings.items() if k in secret}
        return seed.public_configuration(manifest, configuration), values


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
