"""`job-types/` and `job-type-names/`: Scale's v6 job types (docs/scale.md).

Every field is checked in Scale's order with Scale's messages; the first failure wins.
"""

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Final

import msgspec
from litestar import Controller, Request, Response, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, PathParameter, QueryParameter

from api.access import access
from api.params import CoreDep
from api.scale import fields
from api.scale.paging import Page, Paging, absolute, paging
from api.scale.wire import (
    JobTypeDetailsOut,
    JobTypeName,
    JobTypeOut,
    RevisionDetailsOut,
    RevisionOut,
    details,
    listed,
    name_row,
    revision,
    revision_details,
)
from core import seed, semver
from core.errors import Invalid, NotFound
from core.job_types import JobTypeChange, JobTypeRow

if TYPE_CHECKING:
    from _typeshed import SupportsRichComparison

Body = JSONBody[dict[str, object]]
Name = Annotated[str, PathParameter(min_length=1, max_length=255, description="a job type name")]
Version = Annotated[str, PathParameter(min_length=1, max_length=255, description="any SemVer")]
Number = Annotated[int, PathParameter(ge=1, le=2**31 - 1, description="a revision number")]

CREATE_FIELDS: Final = (
    "icon_code", "is_published", "max_scheduled", "docker_image", "configuration",
    "manifest", "auto_update", "is_active", "is_paused",
)  # fmt: skip
EDIT_FIELDS: Final = (
    "icon_code", "is_published", "is_active", "is_paused", "max_scheduled", "docker_image",
    "manifest", "configuration", "auto_update",
)  # fmt: skip
# `order` fields of the lists: a key for each, ascending
ORDERS: Final[dict[str, Callable[[JobTypeRow], "SupportsRichComparison"]]] = {
    "name": lambda r: r.name.lower(),
    "version": lambda r: semver.sort_key(r.version),
    "title": lambda r: r.title.lower(),
    "id": lambda r: r.id,
    "created": lambda r: r.created,
    "last_modified": lambda r: r.last_modified,
}
VALID: Final = seed.Validation(is_valid=True, errors=[], warnings=[])


Flag = Annotated[str | None, QueryParameter(description="true, t, 1, false, f or 0")]


class Filters(msgspec.Struct, kw_only=True):
    """What the job-type lists keep, and in which order."""

    keywords: list[str]
    ids: list[int]
    is_active: bool | None
    is_system: bool | None
    orders: list[str]

    def keep(self, row: JobTypeRow) -> bool:
        """`keyword` (any of them, in the name or a tag, any case), `id` (any of them),
        `is_active`, `is_system`."""
        if self.keywords and not any(
            k in row.name.lower() or any(k in tag.lower() for tag in row.tags)
            for k in self.keywords
        ):
            return False
        if self.ids and row.id not in self.ids:
            return False
        if self.is_active is not None and row.is_active != self.is_active:
            return False
        return self.is_system is None or row.is_system == self.is_system


def filters(
    keyword: Annotated[
        list[str] | None,
        QueryParameter(description="in the name or a tag, any case; repeat it for any of several"),
    ] = None,
    ids: Annotated[
        list[str] | None, QueryParameter(name="id", description="repeat it for any of several")
    ] = None,
    is_active: Flag = None,
    is_system: Flag = None,
    order: Annotated[
        list[str] | None,
        QueryParameter(
            description="name, version, title, id, created or last_modified; `-` for "
            "descending; repeat it to sort by several"
        ),
    ] = None,
) -> Filters:
    return Filters(
        keywords=[k.lower() for k in keyword or []],
        ids=fields.query_integers(ids or [], "id"),
        is_active=fields.query_boolean([is_active] if is_active else [], "is_active"),
        is_system=fields.query_boolean([is_system] if is_system else [], "is_system"),
        orders=order or [],
    )


PagingDep = NamedDependency[Paging]
FiltersDep = NamedDependency[Filters]


class JobTypesController(Controller):
    path = "/"
    # the paging and filter parameters of the lists, documented once
    dependencies = {  # noqa: RUF012 (Litestar reads it from the class)
        "paging": Provide(paging, sync_to_thread=False),
        "chosen": Provide(filters, sync_to_thread=False),
    }

    @get("/job-types", summary="Every version of every job type, a page at a time")
    async def job_types(
        self, core: CoreDep, paging: PagingDep, chosen: FiltersDep
    ) -> Page[JobTypeOut]:
        rows = [r for r in await core.job_types.rows() if chosen.keep(r)]
        return paging.page([listed(r) for r in _ordered(rows, chosen.orders)])

    @post(
        "/job-types",
        status_code=201,
        summary="Create a job type (201), or edit the existing name and version (200)",
        opt=access("admin"),
    )
    async def create(
        self, request: Request[object, object, State], core: CoreDep, data: Body
    ) -> Response[JobTypeDetailsOut | seed.Validation]:
        change = _change(data, CREATE_FIELDS, required=True)
        saved, created = await core.job_types.save(change)
        if not created:
            return Response(VALID, status_code=200)
        location = absolute(request, f"/job-types/{saved.name}/{saved.version}/")
        return Response(details(saved), status_code=201, headers={"Location": location})

    @get("/job-type-names", summary="Every job type name, with its latest version")
    async def names(
        self, core: CoreDep, paging: PagingDep, chosen: FiltersDep
    ) -> Page[JobTypeName]:
        every = await core.job_types.rows()
        names = {r.name for r in every if chosen.keep(r)}
        by_name: dict[str, list[JobTypeRow]] = {}
        for row in every:
            if row.name in names:
                by_name.setdefault(row.name, []).append(row)
        answer = []
        for name in sorted(by_name, key=str.lower):
            versions = _newest_first(by_name[name])
            answer.append(name_row(versions[0], [v.version for v in versions]))
        return paging.page(answer)

    @post(
        "/job-types/validation",
        status_code=200,
        summary="Check a manifest and a configuration; nothing is stored",
        opt=access("submit"),
    )
    async def validation(self, data: Body) -> seed.Validation:
        manifest = fields.obj(data, "manifest", required=True)
        configuration = fields.obj(data, "configuration")
        return seed.validate(manifest, configuration)

    @get("/job-types/{name:str}", summary="The versions of a job type, newest first")
    async def versions(
        self, core: CoreDep, paging: PagingDep, name: Name, is_active: Flag = None
    ) -> Page[JobTypeOut]:
        rows = await core.job_types.rows(name)
        active = fields.query_boolean([is_active] if is_active else [], "is_active")
        if active is not None:
            rows = [r for r in rows if r.is_active == active]
        return paging.page([listed(r) for r in _newest_first(rows)])

    @get("/job-types/{name:str}/{version:str}", summary="A job type, with its manifest")
    async def details(self, core: CoreDep, name: Name, version: Version) -> JobTypeDetailsOut:
        return details(await core.job_types.details(name, version))

    @patch(
        "/job-types/{name:str}/{version:str}",
        status_code=200,
        summary="Edit a job type; a manifest given makes a new revision",
        opt=access("admin"),
    )
    async def edit(
        self, core: CoreDep, name: Name, version: Version, data: Body
    ) -> seed.Validation:
        change = _change(data, (), required=False)
        if isinstance(change.manifest, seed.Manifest):
            given = change.manifest.job
            if given.name != name:
                raise Invalid(
                    f"Manifest name {given.name} does not match current Job Type name {name}."
                )
            if given.job_version != version:
                raise Invalid(
                    f"Manifest version {given.job_version} does not match current Job Type "
                    f"version {version}."
                )
        await core.job_types.details(name, version)
        fields.known(data, EDIT_FIELDS)
        if "configuration" in data:
            change.configuration = _configuration(data)
        await core.job_types.edit(name, version, change)
        return VALID

    @get(
        "/job-types/{name:str}/{version:str}/revisions",
        summary="The revisions of a job type, newest first",
    )
    async def revisions(
        self, core: CoreDep, paging: PagingDep, name: Name, version: Version
    ) -> Page[RevisionOut]:
        row = await core.job_types.details(name, version)
        found = await core.job_types.revisions(name, version)
        return paging.page([revision(row, r) for r in found])

    @get(
        "/job-types/{name:str}/{version:str}/revisions/{number:int}",
        summary="One revision of a job type, with its manifest",
    )
    async def revision(
        self, core: CoreDep, name: Name, version: Version, number: Number
    ) -> RevisionDetailsOut:
        row = await core.job_types.details(name, version)
        found = await core.job_types.revisions(name, version, number)
        if not found:
            raise NotFound("Not found.")
        return revision_details(row, found[0])


def _change(data: Body, known: Sequence[str], *, required: bool) -> JobTypeChange:
    """The fields of a create (`known` given: unknown keys refused after the manifest and
    the configuration, as Scale does) or of an edit (the caller checks the rest)."""
    change = JobTypeChange()
    icon_code = fields.string(data, "icon_code")
    if "icon_code" in data:
        change.icon_code = icon_code
    if "is_published" in data:
        change.is_published = fields.boolean(data["is_published"], "is_published")
    if "max_scheduled" in data:
        value = data["max_scheduled"]
        change.max_scheduled = None if value is None else fields.integer(value, "max_scheduled")
    docker_image = fields.string(data, "docker_image", required=required)
    if docker_image is not None:
        change.docker_image = docker_image
    manifest = fields.obj(data, "manifest", required=required)
    if "auto_update" in data:
        fields.boolean(data["auto_update"], "auto_update")
    for flag in ("is_active", "is_paused"):
        if flag in data:
            setattr(change, flag, fields.boolean(data[flag], flag))
    if manifest is not None:
        try:
            change.manifest = seed.read_manifest(manifest)
        except seed.ManifestInvalid as exc:
            raise Invalid(f"Seed Manifest invalid: {exc.description}") from None
    if known:
        if "configuration" in data:
            change.configuration = _configuration(data)
        fields.known(data, known)
    return change


def _configuration(data: Body) -> seed.Configuration:
    try:
        return seed.read_configuration(fields.obj(data, "configuration") or {})
    except seed.ConfigurationInvalid as exc:
        raise Invalid(f"Job type configuration invalid: {exc.description}") from None


def _ordered(rows: list[JobTypeRow], orders: Sequence[str]) -> list[JobTypeRow]:
    """By the `order` fields (`-` for descending; unknown ones ignored), else by name in
    any case and then the newest version first."""
    keys = [(o.removeprefix("-"), o.startswith("-")) for o in orders]
    keys = [(field, down) for field, down in keys if field in ORDERS]
    if not keys:
        keys = [("name", False), ("version", True)]
    ordered = list(rows)
    # stable sorts, the last key first
    for field, down in reversed(keys):
        ordered.sort(key=ORDERS[field], reverse=down)
    return ordered


def _newest_first(rows: list[JobTypeRow]) -> list[JobTypeRow]:
    return sorted(rows, key=lambda r: semver.sort_key(r.version), reverse=True)
