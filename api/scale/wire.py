"""The answers of Scale's v6 job-type API, field for field."""

from datetime import datetime
from typing import Final, Literal

import msgspec

from core.job_types import JobError, JobTypeDetails, JobTypeRow, Revision

Status = Literal["PENDING", "QUEUED", "RUNNING", "COMPLETED", "FAILED", "BLOCKED", "CANCELED"]
# the core's states as Scale names them; PAUSED is a wrangler's pause through another face
STATUS: Final[dict[str, Status]] = {
    "PENDING": "PENDING",
    "WAITING": "QUEUED",
    "WORKING": "RUNNING",
    "FINISHED": "COMPLETED",
    "ERROR": "FAILED",
    "PAUSED": "BLOCKED",
}
STATES: Final[dict[str, str]] = {status: state for state, status in STATUS.items()}


class JobTypeBase(msgspec.Struct, kw_only=True):
    """A job type as every answer embeds it."""

    id: int
    name: str
    version: str
    title: str
    description: str
    is_active: bool
    is_system: bool
    is_paused: bool
    is_published: bool
    icon_code: str | None
    # workers offer slots, not resource figures: nothing is ever known to be unmet
    unmet_resources: None = None


class JobTypeOut(JobTypeBase, kw_only=True):
    """A row of the job-type lists."""

    max_scheduled: int | None
    max_tries: int
    revision_num: int
    docker_image: str
    created: datetime
    deprecated: datetime | None
    paused: datetime | None
    last_modified: datetime


class JobTypeDetailsOut(JobTypeOut, kw_only=True):
    manifest: dict[str, object]
    # without the values of secret settings
    configuration: dict[str, object]
    # no recipes yet
    recipe_types: list[object] = msgspec.field(default_factory=list)


class JobTypeName(msgspec.Struct, kw_only=True):
    """One name, with the values of its latest version and every version, newest first."""

    name: str
    title: str
    description: str
    is_active: bool
    is_system: bool
    is_paused: bool
    is_published: bool
    icon_code: str | None
    versions: list[str]
    latest_version: str
    unmet_resources: None = None


class RevisionOut(msgspec.Struct, kw_only=True):
    id: int
    job_type: JobTypeBase
    revision_num: int
    docker_image: str
    created: datetime


class RevisionDetailsOut(RevisionOut, kw_only=True):
    manifest: dict[str, object]


def base(row: JobTypeRow) -> JobTypeBase:
    return JobTypeBase(
        id=row.id,
        name=row.name,
        version=row.version,
        title=row.title,
        description=row.description,
        is_active=row.is_active,
        is_system=row.is_system,
        is_paused=row.is_paused,
        is_published=row.is_published,
        icon_code=row.icon_code,
    )


def listed(row: JobTypeRow) -> JobTypeOut:
    return JobTypeOut(
        **msgspec.structs.asdict(base(row)),
        max_scheduled=row.max_scheduled,
        max_tries=row.max_tries,
        revision_num=row.revision_num,
        docker_image=row.docker_image,
        created=row.created,
        deprecated=row.deprecated,
        paused=row.paused,
        last_modified=row.last_modified,
    )


def details(row: JobTypeDetails) -> JobTypeDetailsOut:
    return JobTypeDetailsOut(
        **msgspec.structs.asdict(listed(row)),
        manifest=row.manifest,
        configuration=row.configuration,
    )


def name_row(latest: JobTypeRow, versions: list[str]) -> JobTypeName:
    return JobTypeName(
        name=latest.name,
        title=latest.title,
        description=latest.description,
        is_active=latest.is_active,
        is_system=latest.is_system,
        is_paused=latest.is_paused,
        is_published=latest.is_published,
        icon_code=latest.icon_code,
        versions=versions,
        latest_version=latest.version,
    )


def revision(row: JobTypeRow, rev: Revision) -> RevisionOut:
    return RevisionOut(
        id=rev.id,
        job_type=base(row),
        revision_num=rev.revision_num,
        docker_image=rev.docker_image,
        created=rev.created,
    )


def revision_details(row: JobTypeRow, rev: Revision) -> RevisionDetailsOut:
    return RevisionDetailsOut(**msgspec.structs.asdict(revision(row, rev)), manifest=rev.manifest)


class ErrorOut(msgspec.Struct, kw_only=True):
    id: int
    name: str
    title: str
    description: str
    job_type_name: str | None
    category: str
    is_builtin: bool
    should_be_retried: bool
    created: datetime
    last_modified: datetime


def error_out(error: JobError) -> ErrorOut:
    return ErrorOut(**msgspec.structs.asdict(error))
