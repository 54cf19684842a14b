"""A job of a Seed job type: its inputs checked against the manifest's interface, and the
command and environment it runs with (a shell, no container).

The command is `interface.command` with `${NAME}` replaced by the value of the input or
setting of that name; a secret setting's `${NAME}` becomes `${NORMALIZED_NAME}`, left for
the shell to read from the environment, into which the secret goes only when the run is
handed to its worker. Settings, json inputs, `OUTPUT_DIR` and `ALLOCATED_<RESOURCE>` are
in the environment under their upper-case names, `-` as `_`.
"""

import re
from typing import Final

import msgspec

from core import seed
from core.errors import Invalid

_VARIABLE: Final = re.compile(r"\$\{([^}]*)\}")
# what each json input type accepts, as Python sees decoded JSON
_JSON_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "array": (list,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
    "object": (dict,),
    "string": (str,),
}


class SeedInput(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A job's data, as Scale's v6 `input`: json values by input name, and for file
    inputs the paths of the files on the farm's storage (Corral keeps no file store)."""

    version: str = "6"
    files: dict[str, str | list[str]] = msgspec.field(default_factory=dict)
    json: dict[str, object] = msgspec.field(default_factory=dict)


class SeedRun(msgspec.Struct, kw_only=True):
    """What a job of the type runs; `environment` holds no secret."""

    command: str
    environment: dict[str, str]


def read_input(value: object, manifest: seed.Manifest) -> SeedInput:
    """The job's data, checked against the interface; raises Invalid `Invalid job data: ...`."""
    try:
        data = msgspec.convert(value, SeedInput)
    except msgspec.ValidationError as exc:
        raise _invalid(str(exc)) from None
    names = {i.name for i in manifest.input_files()} | {j.name for j in manifest.input_json()}
    for name in [*data.files, *data.json]:
        if name not in names:
            raise _invalid(f"'{name}' is not an input of this job type")
    for file_input in manifest.input_files():
        paths = data.files.get(file_input.name)
        given = [paths] if isinstance(paths, str) else paths or []
        if not given and file_input.required:
            raise _invalid(f"Required input '{file_input.name}' was not provided")
        if len(given) > 1 and not file_input.multiple:
            raise _invalid(f"Input '{file_input.name}' takes one file, not {len(given)}")
    for json_input in manifest.input_json():
        if json_input.name not in data.json:
            if json_input.required:
                raise _invalid(f"Required input '{json_input.name}' was not provided")
            continue
        found = data.json[json_input.name]
        # a boolean is an int to Python, never a number to JSON Schema
        wrong_bool = isinstance(found, bool) and json_input.type != "boolean"
        if wrong_bool or not isinstance(found, _JSON_TYPES[json_input.type]):
            raise _invalid(f"Input '{json_input.name}' must be of type {json_input.type}")
    return data


def compose(manifest: seed.Manifest, data: SeedInput, settings: dict[str, str]) -> SeedRun:
    """The command and environment of a job, but for its OUTPUT_DIR (the caller's); the
    `settings` hold the values of the non-secret settings only: a secret's value never
    reaches the command."""
    secret = {s.name for s in manifest.settings() if s.secret}
    values: dict[str, str] = {}
    for name, paths in data.files.items():
        values[name] = paths if isinstance(paths, str) else " ".join(paths)
    for json_input in manifest.input_json():
        if json_input.name in data.json:
            values[json_input.name] = _text(data.json[json_input.name])
        else:
            values[json_input.name] = ""
    for file_input in manifest.input_files():
        values.setdefault(file_input.name, "")
    for setting in manifest.settings():
        if setting.name not in secret:
            values[setting.name] = settings.get(setting.name, "")

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in secret:
            return "${" + seed.environment_name(name) + "}"
        return values.get(name, match.group(0))

    command = _VARIABLE.sub(replace, manifest.interface().command or "")
    environment = {
        **{
            seed.environment_name(s.name): values[s.name]
            for s in manifest.settings()
            if s.name not in secret
        },
        **{seed.environment_name(j.name): values[j.name] for j in manifest.input_json()},
        **{seed.environment_name(f.name): values[f.name] for f in manifest.input_files()},
        **{
            seed.environment_name(f"ALLOCATED_{r.name}"): _text(r.value) for r in manifest.scalars()
        },
    }
    return SeedRun(
        # the directory exists when the command starts, on whichever node runs it
        command=f'mkdir -p "$OUTPUT_DIR" && {command}' if command else command,
        environment=environment,
    )


def _text(value: object) -> str:
    """A value as the command and environment show it: text as it is, anything else as
    compact JSON."""
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


def _invalid(message: str) -> Invalid:
    return Invalid(f"Invalid job data: {message}")
