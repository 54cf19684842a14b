"""Corral's reading of Seed 1.0.0 manifests (core.seed) against the official schema, run by
`jsonschema`: the official examples, and hypothesis mutating them, key by key and value by
value, with the two asked the same question each time. Then Scale's own checks, defaults,
configuration rules and warnings, under Scale's names."""

import copy
import json
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import seed

SEED = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "seed"
SEEDS = Path(__file__).resolve().parents[1].parent / "shared" / "seeds"


def load(path: Path) -> Any:
    return json.loads(path.read_text())


SCHEMA = load(SEED / "seed.manifest.schema.1.0.0.json")
VALIDATOR = jsonschema.Draft4Validator(SCHEMA)
EXAMPLE_FILES = sorted(SEED.glob("*.seed.manifest.json"))
EXAMPLES = [load(path) for path in EXAMPLE_FILES]


def schema_keys(node: Any) -> set[str]:
    """Every property name the schema knows, so mutations add real keys in wrong places."""
    found: set[str] = set()
    if isinstance(node, dict):
        found |= set(node.get("properties", {}))
        for child in node.values():
            found |= schema_keys(child)
    elif isinstance(node, list):
        for child in node:
            found |= schema_keys(child)
    return found


KEYS = sorted(schema_keys(SCHEMA))
# strings near the edges of the schema's patterns and enumerations
EDGES = [
    "", " ", "-", "_", "a b", "my-job", "my_job", "MyJob9", "job\n", "1.0.0", "1.0", "01.0.0",
    "1.0.0-alpha.1", "1.0.0+build.7", "1.0.0-", "2.0.0", "ro", "rw", "RO", "job", "data",
    "integer", "number", "string", "array", "object", "boolean", "null", "/abs", "rel/path",
    "gpus", "cpus", "é", "0",
]  # fmt: skip


def corral_accepts(manifest: Any) -> bool:
    try:
        seed.schema_manifest(manifest)
    except seed.ManifestInvalid:
        return False
    return True


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(EDGES)
    | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
)


def containers(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every object and array in `value`, itself included."""
    found: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        found.append(path)
        for key, child in value.items():
            found += containers(child, (*path, key))
    elif isinstance(value, list):
        found.append(path)
        for index, child in enumerate(value):
            found += containers(child, (*path, index))
    return found


def at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def like(value: Any) -> st.SearchStrategy[Any]:
    """Another value of the same JSON type: such changes often keep a manifest valid, so
    the agreement is tested on both sides of each rule."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.integers(min_value=-(2**70), max_value=2**70)
    if isinstance(value, float):
        return st.floats(allow_nan=False, allow_infinity=False)
    if isinstance(value, str):
        return st.sampled_from(EDGES) | st.text(max_size=6)
    return json_values


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """An official example with one to four changes: a key removed, a key (known to the
    schema somewhere, or not) set to a value, an array item replaced, added or removed, a
    value swapped for another of its type."""
    manifest = copy.deepcopy(draw(st.sampled_from(EXAMPLES)))
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3, 4]))):
        if not isinstance(manifest, dict | list):
            break
        target = at(manifest, draw(st.sampled_from(containers(manifest))))
        value = draw(json_values | st.sampled_from(EDGES))
        keys = sorted(target) if isinstance(target, dict) else list(range(len(target)))
        if keys and draw(st.booleans()):
            key = draw(st.sampled_from(keys))
            target[key] = draw(like(target[key]))
            continue
        if isinstance(target, dict):
            action = draw(st.sampled_from(["remove", "set", "set"]))
            if action == "remove" and target:
                del target[draw(st.sampled_from(sorted(target)))]
            else:
                key = draw(
                    st.sampled_from(sorted(target) + KEYS) if target else st.sampled_from(KEYS)
                )
                target[key] = value
        else:
            action = draw(st.sampled_from(["replace", "append", "remove"]))
            if action == "append" or not target:
                target.append(value)
            elif action == "replace":
                target[draw(st.integers(0, len(target) - 1))] = value
            else:
                del target[draw(st.integers(0, len(target) - 1))]
    return manifest


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.name for p in EXAMPLE_FILES])
def test_every_official_example_is_valid_for_both(path: Path) -> None:
    manifest = load(path)
    assert VALIDATOR.is_valid(manifest)
    assert seed.validate(manifest).is_valid, seed.validate(manifest).errors
    # and so is what Corral keeps of it, defaults filled in
    assert VALIDATOR.is_valid(seed.stored_manifest(seed.read_manifest(manifest)))


# how many mutated manifests each side found valid, and invalid
verdicts: Counter[bool] = Counter()


# the same 3,000 every run, so that the count below is a fact of the test, not of luck
@settings(
    max_examples=3000,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(manifest=mutated())
def test_corral_and_the_official_schema_agree_on_every_mutation(manifest: Any) -> None:
    errors = [e.message for e in VALIDATOR.iter_errors(manifest)]
    verdicts[not errors] += 1
    assert corral_accepts(manifest) == (not errors), (
        f"jsonschema: {errors}; manifest: {json.dumps(manifest)[:2000]}"
    )


def test_the_mutations_were_both_valid_and_invalid_often() -> None:
    # an agreement on manifests that are all broken, or all untouched, would prove little
    assert verdicts[True] >= 150, verdicts
    assert verdicts[False] >= 150, verdicts


def test_the_documents_create_example_breaks_the_schema_and_is_fixed_by_naming_its_errors() -> None:
    line = next(
        line
        for line in (SEEDS / "004_f271b097f9c97fd3.txt").read_text().splitlines()
        if line.startswith('{ "icon_code"')
    )
    body = json.loads(line)
    result = seed.validate(body["manifest"], body["configuration"])
    assert not result.is_valid
    [error] = result.errors
    assert error.name == "JSON_VALIDATION_ERROR"
    assert "`name`" in error.description
    assert "$.job.errors[0]" in error.description
    assert not VALIDATOR.is_valid(body["manifest"])
    for number, error_mapping in enumerate(body["manifest"]["job"]["errors"]):
        error_mapping["name"] = f"error-{number}"
    fixed = seed.validate(body["manifest"], body["configuration"])
    assert fixed.is_valid, fixed.errors
    # its configuration names the manifest's mount and settings, and its resources are
    # the standard ones
    assert fixed.warnings == []


# -- Scale's own checks, in Scale's order ------------------------------------------------


def minimal(**job: Any) -> dict[str, Any]:
    return {
        "seedVersion": "1.0.0",
        "job": {
            "name": "my-job",
            "jobVersion": "1.0.0",
            "packageVersion": "1.0.0",
            "title": "My job",
            "description": "does things",
            "maintainer": {"name": "Ana", "email": "ana@example.com"},
            "timeout": 3600,
            **job,
        },
    }


def first_error(manifest: Any, configuration: Any = None) -> tuple[str, str]:
    result = seed.validate(manifest, configuration)
    assert not result.is_valid
    assert len(result.errors) == 1
    return result.errors[0].name, result.errors[0].description


@pytest.mark.parametrize(
    ("job", "name", "says"),
    [
        (
            {"resources": {"scalar": [{"name": "gpus", "value": 1.5}]}},
            "JSON_VALIDATION_ERROR",
            "gpu",
        ),
        (
            {"interface": {"settings": [{"name": "out-dir"}], "inputs": {"json": [
                {"name": "OUT_DIR", "type": "string"}]}}},
            "NAME_COLLISION_ERROR",
            "Collisions",
        ),
        (
            {"interface": {"settings": [{"name": "OUTPUT_DIR"}]}},
            "NAME_COLLISION_ERROR",
            "reserved",
        ),
        (
            {"resources": {"scalar": [{"name": "mem", "value": 1}]},
             "interface": {"settings": [{"name": "allocated-mem"}]}},
            "NAME_COLLISION_ERROR",
            "resources",
        ),
        (
            {"interface": {"mounts": [{"name": "a", "path": "/x"}, {"name": "a", "path": "/y"}]}},
            "DUPLICATE_MOUNT_NAMES",
            "Mount names must be unique.",
        ),
        (
            {"errors": [{"code": 1, "name": "bad"}, {"code": 2, "name": "bad"}]},
            "DUPLICATE_ERROR_NAMES",
            "Error names must be unique.",
        ),
        (
            {"interface": {"mounts": [{"name": "data", "path": "relative/dir"}]}},
            "INVALID_MOUNT_PATH",
            "data mount must have an absolute path",
        ),
    ],
    ids=["gpus", "collision", "reserved", "allocated", "mounts", "errors", "mount-path"],
)  # fmt: skip
def test_scale_s_checks_name_the_first_problem(job: dict[str, Any], name: str, says: str) -> None:
    manifest = minimal(**job)
    assert VALIDATOR.is_valid(manifest), "the schema itself allows it"
    found, description = first_error(manifest)
    assert found == name
    assert says in description


def test_defaults_are_filled_in_and_resource_names_lowered() -> None:
    manifest = minimal(
        resources={"scalar": [{"name": "sharedMem", "value": 1}, {"name": "cpus", "value": 1.5}]},
        interface={
            "inputs": {"files": [{"name": "in"}], "json": [{"name": "n", "type": "integer"}]},
            "outputs": {"files": [{"name": "out", "pattern": "*.txt"}],
                        "json": [{"name": "total", "type": "integer"}]},
            "mounts": [{"name": "data", "path": "/data"}],
            "settings": [{"name": "db"}],
        },
        errors=[{"code": 3, "name": "bad-input"}],
    )  # fmt: skip
    stored = seed.stored_manifest(seed.read_manifest(manifest))
    job = stored["job"]
    assert isinstance(job, dict)
    assert job["resources"] == {
        "scalar": [{"name": "sharedmem", "value": 1}, {"name": "cpus", "value": 1.5}]
    }
    interface = job["interface"]
    assert interface["inputs"]["files"] == [
        {"name": "in", "required": True, "mediaTypes": [], "multiple": False, "partial": False}
    ]
    assert interface["inputs"]["json"] == [{"name": "n", "type": "integer", "required": True}]
    assert interface["outputs"]["files"] == [
        {
            "name": "out",
            "pattern": "*.txt",
            "mediaType": "application/octet-stream",
            "multiple": False,
            "required": True,
        }
    ]
    assert interface["outputs"]["json"] == [{"name": "total", "type": "integer", "required": True}]
    assert interface["mounts"] == [{"name": "data", "path": "/data", "mode": "ro"}]
    assert interface["settings"] == [{"name": "db", "secret": False}]
    assert job["errors"] == [
        {"code": 3, "name": "bad-input", "title": "bad-input", "category": "job"}
    ]


@pytest.mark.parametrize(
    ("configuration", "name", "says"),
    [
        ({"version": "5"}, "INVALID_VERSION", "Invalid configuration version: 5"),
        ({"priority": 0}, "INVALID_CONFIGURATION", "priority"),
        ({"priority": "high"}, "INVALID_CONFIGURATION", "priority"),
        ({"colour": "red"}, "INVALID_CONFIGURATION", "colour"),
        ({"settings": {"db": 5}}, "INVALID_CONFIGURATION", "settings"),
        ({"mounts": {"data": {"type": "nfs"}}}, "INVALID_CONFIGURATION", "mounts"),
        (
            {"mounts": {"data": {"type": "host", "host_path": "rel"}}},
            "HOST_ABSOLUTE_PATH",
            "Host mount data must use an absolute host path",
        ),
    ],
)
def test_a_bad_configuration_is_named_as_scale_names_it(
    configuration: dict[str, Any], name: str, says: str
) -> None:
    found, description = first_error(minimal(), configuration)
    assert found == name
    assert says in description


def test_warnings_name_what_manifest_and_configuration_leave_apart() -> None:
    manifest = minimal(
        resources={"scalar": [{"name": "licences", "value": 1}]},
        interface={
            "mounts": [{"name": "data", "path": "/data"}],
            "settings": [{"name": "db"}, {"name": "password", "secret": True}],
        },
    )
    configuration = {
        "version": "2.0",
        "mounts": {"scratch": {"type": "volume", "driver": "local"}},
        "settings": {"db": "farmdb", "colour": "red"},
    }
    result = seed.validate(manifest, configuration)
    assert result.is_valid
    assert [(w.name, w.description) for w in result.warnings] == [
        ("UNKNOWN_MOUNT", "Unknown mount 'scratch' ignored"),
        ("MISSING_MOUNT", "Missing configuration for mount 'data'"),
        ("UNKNOWN_SETTING", "Unknown setting 'colour' ignored"),
        ("MISSING_SETTING", "Missing configuration for setting 'password'"),
        (
            "NONSTANDARD_RESOURCE",
            "'licences' is not a standard resource. This job type might not be schedulable.",
        ),
    ]


def test_a_secret_setting_s_value_is_never_shown() -> None:
    manifest = seed.read_manifest(
        minimal(interface={"settings": [{"name": "db"}, {"name": "password", "secret": True}]})
    )
    configuration = seed.read_configuration(
        {"settings": {"db": "farmdb", "password": "hunter2"}, "version": "7"}
    )
    shown = seed.public_configuration(manifest, configuration)
    assert shown == {
        "mounts": {},
        "output_workspaces": {"outputs": {}},
        "priority": 100,
        "settings": {"db": "farmdb"},
    }
    assert "hunter2" not in json.dumps(shown)
    # the value itself is kept for the run
    assert configuration.settings["password"] == "hunter2"
