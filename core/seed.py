"""Seed 1.0.0 job manifests and the configuration of a job type, as Scale (v6) checks them.

The manifest is read into the Structs below, which say what the Seed 1.0.0 JSON Schema
says (draft 4): the same required keys, types, patterns and enumerations, and no key the
schema does not name. tests/test_seed_manifest.py proves the two agree on the official
examples and on many thousand mutations of them. Then come Scale's own checks, in Scale's
order, under Scale's error and warning names: the first error ends the validation.

Settings marked `secret` are the job type's business: `public_configuration` is the
configuration with their values taken out, and only that leaves the core.
"""

import posixpath
from collections.abc import Iterable
from typing import Annotated, Final, Literal

import msgspec
from msgspec import UNSET, UnsetType

from core.errors import Invalid

_NAME: Final = "^[a-zA-Z0-9_-]+$"
_SEMVER: Final = (
    r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(-(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(\.(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*)?"
    r"(\+[0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*)?$"
)
Name = Annotated[str, msgspec.Meta(pattern=_NAME)]
SemVer = Annotated[str, msgspec.Meta(pattern=_SEMVER)]
# JSON Schema's "number": any integer or real, never a boolean
Number = int | float
JsonType = Literal["array", "boolean", "integer", "number", "object", "string"]
# the resources Scale knows how to schedule; others get a warning
STANDARD_RESOURCES: Final = ("cpus", "mem", "disk", "gpus", "sharedmem")
UNKNOWN_MEDIA_TYPE: Final = "application/octet-stream"
CONFIGURATION_VERSIONS: Final = ("6", "7", "2.0")
DEFAULT_PRIORITY: Final = 100


class _Seed(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, rename="camel"):
    """An object of the manifest: no key the schema does not name (additionalProperties
    false everywhere), camelCase on the wire."""


class Maintainer(_Seed):
    name: str
    email: str
    organization: str | UnsetType = UNSET
    url: str | UnsetType = UNSET
    phone: str | UnsetType = UNSET


class Scalar(_Seed):
    name: Name
    value: Number
    input_multiplier: Number | UnsetType = UNSET


class Resources(_Seed):
    scalar: list[Scalar] | UnsetType = UNSET


class InputFile(_Seed):
    name: Name
    required: bool = True
    media_types: list[str] = msgspec.field(default_factory=list)
    multiple: bool = False
    partial: bool = False


class InputJson(_Seed):
    name: Name
    type: JsonType
    required: bool = True


class Inputs(_Seed):
    files: list[InputFile] | UnsetType = UNSET
    json: list[InputJson] | UnsetType = UNSET


class OutputFile(_Seed):
    name: Name
    pattern: str
    media_type: str = UNKNOWN_MEDIA_TYPE
    multiple: bool = False
    required: bool = True


class OutputJson(_Seed):
    name: Name
    type: JsonType
    key: str | UnsetType = UNSET
    required: bool = True


class Outputs(_Seed):
    files: list[OutputFile] | UnsetType = UNSET
    json: list[OutputJson] | UnsetType = UNSET


class Mount(_Seed):
    name: Name
    path: str
    mode: Literal["ro", "rw"] = "ro"


class Setting(_Seed):
    name: Name
    secret: bool = False


class Interface(_Seed):
    command: str | UnsetType = UNSET
    inputs: Inputs | UnsetType = UNSET
    outputs: Outputs | UnsetType = UNSET
    mounts: list[Mount] | UnsetType = UNSET
    settings: list[Setting] | UnsetType = UNSET


class ErrorMapping(_Seed):
    """An exit code the job's own program documents."""

    code: int
    name: Name
    title: str | UnsetType = UNSET
    description: str | UnsetType = UNSET
    category: Literal["job", "data"] = "job"


class Job(_Seed):
    name: Annotated[str, msgspec.Meta(pattern="^[a-zA-Z0-9-]+$")]
    job_version: SemVer
    package_version: SemVer
    title: str
    description: str
    maintainer: Maintainer
    timeout: int
    tags: list[str] | UnsetType = UNSET
    resources: Resources | UnsetType = UNSET
    interface: Interface | UnsetType = UNSET
    errors: list[ErrorMapping] | UnsetType = UNSET


class Manifest(_Seed):
    seed_version: Annotated[str, msgspec.Meta(pattern=r"^1\.0\.0$")]
    job: Job

    def interface(self) -> Interface:
        return self.job.interface or Interface()

    def scalars(self) -> list[Scalar]:
        return [] if not self.job.resources else self.job.resources.scalar or []

    def settings(self) -> list[Setting]:
        return self.interface().settings or []

    def mounts(self) -> list[Mount]:
        return self.interface().mounts or []

    def input_files(self) -> list[InputFile]:
        inputs = self.interface().inputs
        return [] if not inputs else inputs.files or []

    def input_json(self) -> list[InputJson]:
        inputs = self.interface().inputs
        return [] if not inputs else inputs.json or []

    def errors(self) -> list[ErrorMapping]:
        return self.job.errors or []


# -- the configuration of a job type (Scale v6) ------------------------------------------


class _Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class HostMount(_Config, tag_field="type", tag="host"):
    host_path: str


class VolumeMount(_Config, tag_field="type", tag="volume"):
    driver: str = ""
    driver_opts: dict[str, str] = msgspec.field(default_factory=dict)


class OutputWorkspaces(_Config):
    # workspace names are opaque labels: Corral keeps no workspace registry
    default: str | UnsetType = UNSET
    outputs: dict[str, str] = msgspec.field(default_factory=dict)


class Configuration(_Config):
    """How a job type's jobs run: mounts, output workspaces, priority, setting values."""

    version: str | UnsetType = UNSET
    mounts: dict[str, HostMount | VolumeMount] = msgspec.field(default_factory=dict)
    output_workspaces: OutputWorkspaces = msgspec.field(default_factory=OutputWorkspaces)
    priority: Annotated[int, msgspec.Meta(ge=1)] = DEFAULT_PRIORITY
    settings: dict[str, str] = msgspec.field(default_factory=dict)


# -- what a validation answers -----------------------------------------------------------


class Problem(msgspec.Struct, kw_only=True):
    """An error or a warning, by Scale's name for it."""

    name: str
    description: str


class Validation(msgspec.Struct, kw_only=True):
    is_valid: bool
    errors: list[Problem]
    warnings: list[Problem]


class SeedInvalid(Invalid):
    """A manifest or configuration Scale would refuse, under Scale's name for why."""

    def __init__(self, name: str, description: str) -> None:
        super().__init__(description)
        self.name = name
        self.description = description


class ManifestInvalid(SeedInvalid):
    pass


class ConfigurationInvalid(SeedInvalid):
    pass


# -- reading and checking ----------------------------------------------------------------


def schema_manifest(value: object) -> Manifest:
    """`value` read as the Seed 1.0.0 schema reads it, and nothing more; raises
    ManifestInvalid (JSON_VALIDATION_ERROR) naming the path of the first mistake."""
    try:
        return msgspec.convert(value, Manifest)
    except msgspec.ValidationError as exc:
        raise ManifestInvalid(
            "JSON_VALIDATION_ERROR", f"Error validating against schema: {exc}"
        ) from None


def read_manifest(value: object) -> Manifest:
    """A manifest Scale accepts: the schema, then Scale's own checks in Scale's order;
    raises ManifestInvalid with the first failure."""
    manifest = schema_manifest(value)
    for scalar in manifest.scalars():
        # the schema only says "number"; a GPU cannot be shared
        if scalar.name.lower() == "gpus" and not float(scalar.value).is_integer():
            raise ManifestInvalid(
                "JSON_VALIDATION_ERROR",
                "Error validating against schema: gpu resource not set to whole number",
            )
    # they become environment variables of the job
    names = [
        "OUTPUT_DIR",
        *(environment_name(s.name) for s in manifest.settings()),
        *(environment_name(f.name) for f in manifest.input_files()),
        *(environment_name(j.name) for j in manifest.input_json()),
        *(environment_name(f"ALLOCATED_{r.name}") for r in manifest.scalars()),
    ]
    if len(names) != len(set(names)):
        raise ManifestInvalid(
            "NAME_COLLISION_ERROR",
            "Collisions are not allowed between reserved keywords, resources, settings and "
            "input names.",
        )
    if _repeats(m.name for m in manifest.mounts()):
        raise ManifestInvalid("DUPLICATE_MOUNT_NAMES", "Mount names must be unique.")
    if _repeats(e.name for e in manifest.errors()):
        raise ManifestInvalid("DUPLICATE_ERROR_NAMES", "Error names must be unique.")
    for mount in manifest.mounts():
        if not posixpath.isabs(mount.path):
            raise ManifestInvalid(
                "INVALID_MOUNT_PATH", f"{mount.name} mount must have an absolute path"
            )
    return manifest


def stored_manifest(manifest: Manifest) -> dict[str, object]:
    """The manifest as it is kept and shown: Seed's defaults filled in, an error's title
    its name when it has none, scalar resource names in lower case (`manifest` itself is
    changed so too)."""
    for scalar in manifest.scalars():
        scalar.name = scalar.name.lower()
    for error in manifest.errors():
        if error.title is UNSET:
            error.title = error.name
    stored: dict[str, object] = msgspec.to_builtins(manifest)
    return stored


def read_configuration(value: object) -> Configuration:
    """A job type's configuration, its defaults filled in; raises ConfigurationInvalid."""
    if isinstance(value, dict) and "version" in value:
        version = value["version"]
        if version not in CONFIGURATION_VERSIONS:
            raise ConfigurationInvalid(
                "INVALID_VERSION", f"Invalid configuration version: {version}"
            )
    try:
        configuration = msgspec.convert(value, Configuration)
    except msgspec.ValidationError as exc:
        raise ConfigurationInvalid(
            "INVALID_CONFIGURATION", f"Invalid configuration: {exc}"
        ) from None
    for name, mount in configuration.mounts.items():
        if isinstance(mount, HostMount) and not posixpath.isabs(mount.host_path):
            raise ConfigurationInvalid(
                "HOST_ABSOLUTE_PATH", f"Host mount {name} must use an absolute host path"
            )
    return configuration


def configuration_warnings(manifest: Manifest, configuration: Configuration) -> list[Problem]:
    """What a configuration leaves out of its manifest, or names that the manifest lacks;
    and resources Scale does not schedule."""
    warnings: list[Problem] = []
    mounts = {m.name for m in manifest.mounts()}
    for name in configuration.mounts:
        if name not in mounts:
            warnings.append(
                Problem(name="UNKNOWN_MOUNT", description=f"Unknown mount '{name}' ignored")
            )
    for name in sorted(mounts - set(configuration.mounts)):
        warnings.append(
            Problem(name="MISSING_MOUNT", description=f"Missing configuration for mount '{name}'")
        )
    settings = {s.name for s in manifest.settings()}
    for name in configuration.settings:
        if name not in settings:
            warnings.append(
                Problem(name="UNKNOWN_SETTING", description=f"Unknown setting '{name}' ignored")
            )
    for name in sorted(settings - set(configuration.settings)):
        warnings.append(
            Problem(
                name="MISSING_SETTING", description=f"Missing configuration for setting '{name}'"
            )
        )
    for scalar in manifest.scalars():
        if scalar.name.lower() not in STANDARD_RESOURCES:
            warnings.append(
                Problem(
                    name="NONSTANDARD_RESOURCE",
                    description=f"'{scalar.name}' is not a standard resource. This job type "
                    "might not be schedulable.",
                )
            )
    return warnings


def validate(manifest: object, configuration: object | None = None) -> Validation:
    """What `POST job-types/validation/` answers: at most one error, the first; warnings
    only once both manifest and configuration are valid."""
    try:
        read = read_manifest(manifest)
        config = read_configuration({} if configuration is None else configuration)
    except SeedInvalid as exc:
        return Validation(
            is_valid=False,
            errors=[Problem(name=exc.name, description=exc.description)],
            warnings=[],
        )
    return Validation(is_valid=True, errors=[], warnings=configuration_warnings(read, config))


def public_configuration(manifest: Manifest, configuration: Configuration) -> dict[str, object]:
    """The configuration as every answer shows it: no `version`, `default` only when set,
    and no value of a setting the manifest marks secret."""
    secret = {s.name for s in manifest.settings() if s.secret}
    shown: dict[str, object] = msgspec.to_builtins(configuration)
    shown.pop("version", None)
    settings = shown["settings"]
    assert isinstance(settings, dict)
    shown["settings"] = {k: v for k, v in settings.items() if k not in secret}
    return shown


def environment_name(name: str) -> str:
    """The environment variable a Seed name becomes: upper case, `-` as `_`."""
    return name.replace("-", "_").upper()


def _repeats(names: Iterable[str]) -> bool:
    seen = list(names)
    return len(seen) != len(set(seen))
