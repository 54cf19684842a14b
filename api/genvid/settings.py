"""`/v1/settings`: the Genvid cluster's settings document, its defaults and its JSON
Schema (docs/genvid.md#settings).

The schema and the defaults are read once, when the app is made (`load_settings_files`):
the configured files, else the built-in pair beside this module. A POST is merged over
the defaults, validated with `core.json_schema`, and stored as the `genvid.settings`
document.
"""

from importlib import resources
from pathlib import Path
from typing import Final

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from api.access import access
from api.params import CoreDep
from core import json_schema
from core.config import ConfigError, GenvidSettingsConfig
from core.errors import Invalid

DOCUMENT: Final = "genvid.settings"
Document = dict[str, object]


class SettingsFiles(msgspec.Struct, frozen=True, kw_only=True):
    """The schema and the defaults this server was started with."""

    schema: Document
    defaults: Document


# injected by name into the handlers; `api.genvid.genvid_routers` provides it
SettingsFilesDep = NamedDependency[SettingsFiles]


def load_settings_files(settings: GenvidSettingsConfig) -> SettingsFiles:
    """The configured `schema` and `defaults` files, or the built-in ones. A file that
    cannot be read, is not a JSON object, a schema using keywords this server does not
    check, or defaults the schema refuses raise `ConfigError`."""
    schema = _document("genvid.settings.schema", settings.schema, "settings.schema.json")
    defaults = _document("genvid.settings.defaults", settings.defaults, "settings.defaults.json")
    try:
        json_schema.check_schema(schema)
    except json_schema.SchemaError as exc:
        raise ConfigError(
            f"genvid.settings.schema: {_shown(settings.schema)} is not a schema this server "
            f"checks: {exc}"
        ) from None
    found = json_schema.problem(schema, defaults)
    if found:
        raise ConfigError(
            f"genvid.settings.defaults: {_shown(settings.defaults)} does not validate "
            f"against the settings schema: {found}"
        )
    return SettingsFiles(schema=schema, defaults=defaults)


def _document(key: str, path: str | None, builtin: str) -> Document:
    where = _shown(path)
    try:
        raw = (
            Path(path).read_bytes()
            if path is not None
            else resources.files("api.genvid").joinpath(builtin).read_bytes()
        )
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {where}: {exc.strerror}") from None
    try:
        document = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{key}: {where} is not JSON: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{key}: {where} nests too deeply") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{key}: {where} must hold a JSON object")
    return document


def _shown(path: str | None) -> str:
    return "the built-in file" if path is None else path


class SettingsController(Controller):
    path = "/"
    tags = ["genvid"]  # noqa: RUF012 (Litestar reads it from the class)

    @get("/settings", summary="The settings document (the defaults until one is posted)")
    async def settings(self, core: CoreDep, settings_files: SettingsFilesDep) -> Document:
        stored = await core.documents.get(DOCUMENT, Document)
        return settings_files.defaults if stored is None else stored

    @get("/settings/default", summary="The defaults document, as configured")
    async def defaults(self, settings_files: SettingsFilesDep) -> Document:
        return settings_files.defaults

    @get(
        ["/schemas/settings.json", "/settings/schema"],
        summary="The JSON Schema of the settings, as configured",
    )
    async def schema(self, settings_files: SettingsFilesDep) -> Document:
        return settings_files.schema

    @post(
        "/settings",
        status_code=200,
        summary="Merge a (partial) document over the defaults, validate it and store it",
        opt=access("submit"),
    )
    async def change(
        self, core: CoreDep, settings_files: SettingsFilesDep, data: JSONBody[Document]
    ) -> Document:
        merged = json_schema.merge(settings_files.defaults, data)
        found = json_schema.problem(settings_files.schema, merged)
        if found:
            # `$.encode.output.width: expected integer >= 16`, as Genvid's tools show it
            raise Invalid(found)
        assert isinstance(merged, dict)
        await core.documents.put(DOCUMENT, merged)
        return merged


SETTINGS_ROUTES: Final = [SettingsController]
