"""The Genvid face's settings (`/v1/settings`, its defaults and its schema) against a real
server and database: the built-in pair, the merge over the defaults, refusals naming the
JSON path and storing nothing, configured files (and bad ones stopping the start-up with
exit 2), access; and the validator of `core/json_schema.py` keyword by keyword."""

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from core import json_schema
from core.config import Config, ConfigError, GenvidConfig, GenvidSettingsConfig, ServerConfig
from tests.conftest import ServerThread, Sql
from tests.farm import AsRole, create_token
from tests.processes import CORRAL, Processes

BUILT_IN = Path(__file__).resolve().parents[1] / "api" / "genvid"
SCHEMA: dict[str, Any] = json.loads((BUILT_IN / "settings.schema.json").read_text())
DEFAULTS: dict[str, Any] = json.loads((BUILT_IN / "settings.defaults.json").read_text())

# a configured pair using every keyword the validator knows
CUSTOM_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "a studio's settings",
    "type": "object",
    "required": ["name", "mode"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 2, "maxLength": 8, "pattern": "^[a-z]+$"},
        "mode": {"enum": ["fast", "slow"], "description": "how"},
        "version": {"const": 2},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "fps": {"type": "integer", "minimum": 1, "maximum": 120, "default": 30},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
        "note": {"type": ["string", "null"]},
        "extra": {"type": "object", "additionalProperties": {"type": "boolean"}},
    },
}
CUSTOM_DEFAULTS: dict[str, Any] = {
    "name": "game",
    "mode": "fast",
    "version": 2,
    "ratio": 0.5,
    "fps": 30,
    "tags": ["a", "b"],
    "note": "hello",
    "extra": {"x": True},
}


def refused(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status_code"] == status
    assert set(body) <= {"status_code", "detail", "extra"}
    detail: str = body["detail"]
    return detail


def stored(sql: Sql) -> Any:
    text = sql.fetchval("SELECT body::text FROM documents WHERE name = 'genvid.settings'")
    return None if text is None else json.loads(text)


# -- the built-in pair -------------------------------------------------------------------


def test_before_any_post_the_settings_are_the_defaults(api: httpx.Client, sql: Sql) -> None:
    current = api.get("/v1/settings")
    assert current.status_code == 200
    assert current.headers["content-type"].startswith("application/json")
    assert current.json() == DEFAULTS
    assert api.get("/v1/settings/default").json() == DEFAULTS
    assert stored(sql) is None


def test_the_schema_is_served_at_both_paths_as_configured(api: httpx.Client) -> None:
    for path in ("/v1/schemas/settings.json", "/v1/settings/schema"):
        answer = api.get(path)
        assert answer.status_code == 200, path
        assert answer.json() == SCHEMA
    # shaped like Genvid's
    assert set(SCHEMA["properties"]) == {"info", "encode"}
    assert set(DEFAULTS["info"]) == {"name", "game", "description"}
    assert set(DEFAULTS["encode"]["input"]) == {"width", "height", "silent"}
    assert set(DEFAULTS["encode"]["output"]) == {"width", "height"}
    assert json_schema.problem(SCHEMA, DEFAULTS) is None


def test_a_partial_post_is_merged_over_the_defaults_and_stored(api: httpx.Client, sql: Sql) -> None:
    answer = api.post("/v1/settings", json={"encode": {"output": {"width": 640}}})
    assert answer.status_code == 200, answer.text
    expected = json.loads(json.dumps(DEFAULTS))
    expected["encode"]["output"]["width"] = 640
    assert answer.json() == expected
    assert api.get("/v1/settings").json() == expected
    assert stored(sql) == expected
    # the defaults themselves are unchanged
    assert api.get("/v1/settings/default").json() == DEFAULTS


def test_a_post_merges_over_the_defaults_not_over_the_current_document(
    api: httpx.Client,
) -> None:
    first = api.post("/v1/settings", json={"info": {"name": "shooter", "game": "pew"}})
    assert first.json()["info"] == {"name": "shooter", "game": "pew", "description": ""}
    second = api.post("/v1/settings", json={"encode": {"input": {"silent": True}}})
    settings = second.json()
    # what the first POST set is back to the defaults
    assert settings["info"] == DEFAULTS["info"]
    assert settings["encode"]["input"] == {"width": 1280, "height": 720, "silent": True}
    # an empty object stores the defaults
    assert api.post("/v1/settings", json={}).json() == DEFAULTS


def test_the_stored_document_keeps_its_keys_in_order(api: httpx.Client) -> None:
    api.post("/v1/settings", json={"zeta": 1, "alpha": {"b": 1, "a": 2}})
    text = api.get("/v1/settings").text
    assert text.index('"info"') < text.index('"encode"') < text.index('"zeta"')
    assert text.index('"zeta"') < text.index('"alpha"')
    assert text.index('"b"') < text.index('"a"')


def test_a_body_without_a_content_type_is_read_as_json(api: httpx.Client) -> None:
    answer = api.post("/v1/settings", content=b'{"info": {"game": "raw"}}')
    assert answer.status_code == 200, answer.text
    assert answer.json()["info"]["game"] == "raw"


def test_a_document_the_schema_refuses_is_400_naming_the_path_and_nothing_is_stored(
    api: httpx.Client, sql: Sql
) -> None:
    kept = api.post("/v1/settings", json={"info": {"name": "kept"}}).json()
    w = "$.encode.output.width: expected integer"
    cases: list[tuple[object, str]] = [
        ({"encode": {"output": {"width": 8}}}, f"{w} >= 16"),
        ({"encode": {"output": {"width": 99999}}}, f"{w} <= 7680"),
        ({"encode": {"input": {"width": "wide"}}}, "$.encode.input.width: expected integer, "
         "got string"),
        ({"encode": {"input": {"silent": 1}}}, "$.encode.input.silent: expected boolean, "
         "got integer"),
        ({"encode": {"input": {"height": 720.5}}}, "$.encode.input.height: expected integer, "
         "got number"),
        ({"info": {"name": ""}}, "$.info.name: expected a string of at least 1 character"),
        # null replaces what it is merged over, and the schema refuses it
        ({"info": None}, "$.info: expected object, got null"),
        ({"encode": {"output": None}}, "$.encode.output: expected object, got null"),
    ]  # fmt: skip
    for body, detail in cases:
        assert refused(api.post("/v1/settings", json=body), 400) == detail, body
    assert stored(sql) == kept
    assert api.get("/v1/settings").json() == kept


def test_a_body_that_is_not_json_or_not_an_object_is_400_and_nothing_is_stored(
    api: httpx.Client, sql: Sql
) -> None:
    for body in (b"{not json", b"", b"[1, 2]", b'"text"', b"null", b"12", b"\xff\xfe"):
        detail = refused(api.post("/v1/settings", content=body), 400)
        assert detail, body
    assert stored(sql) is None
    assert api.get("/v1/settings").json() == DEFAULTS


def test_unknown_routes_and_methods_answer_in_the_usual_shape(api: httpx.Client) -> None:
    refused(api.get("/v1/settings/nothing"), 404)
    refused(api.delete("/v1/settings"), 405)
    refused(api.put("/v1/settings/default", json={}), 405)


# -- configured files ------------------------------------------------------------------------


def write_pair(folder: Path, schema: object, defaults: object) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    schema_file, defaults_file = folder / "schema.json", folder / "defaults.json"
    schema_file.write_text(schema if isinstance(schema, str) else json.dumps(schema, indent=2))
    defaults_file.write_text(defaults if isinstance(defaults, str) else json.dumps(defaults))
    return schema_file, defaults_file


def configured(tmp_path: Path, schema: Path, defaults: Path) -> Config:
    return Config(
        server=ServerConfig(data_dir=str(tmp_path)),
        genvid=GenvidConfig(
            settings=GenvidSettingsConfig(schema=str(schema), defaults=str(defaults))
        ),
    )


@pytest.fixture
def custom(tmp_path: Path, database_url: str) -> Any:
    schema, defaults = write_pair(tmp_path / "genvid", CUSTOM_SCHEMA, CUSTOM_DEFAULTS)
    config = configured(tmp_path, schema, defaults)
    with ServerThread(config, database_url) as base, httpx.Client(base_url=base) as client:
        yield client


def test_configured_files_are_served_as_they_are(custom: httpx.Client) -> None:
    assert custom.get("/v1/settings/default").json() == CUSTOM_DEFAULTS
    assert custom.get("/v1/settings").json() == CUSTOM_DEFAULTS
    assert custom.get("/v1/schemas/settings.json").json() == CUSTOM_SCHEMA
    assert custom.get("/v1/settings/schema").json() == CUSTOM_SCHEMA


def test_arrays_scalars_and_null_replace_while_objects_merge(custom: httpx.Client) -> None:
    answer = custom.post(
        "/v1/settings", json={"tags": ["c"], "note": None, "extra": {"y": False}, "fps": 60}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        **CUSTOM_DEFAULTS,
        "tags": ["c"],
        "note": None,
        "extra": {"x": True, "y": False},
        "fps": 60,
    }


def test_every_keyword_refuses_with_the_path_and_what_was_expected(custom: httpx.Client) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "a"}, "$.name: expected a string of at least 2 characters"),
        ({"name": "abcdefghi"}, "$.name: expected a string of at most 8 characters"),
        ({"name": "Game"}, '$.name: expected a string matching "^[a-z]+$"'),
        ({"mode": "medium"}, '$.mode: expected one of "fast", "slow"'),
        ({"version": 3}, "$.version: expected 2"),
        ({"ratio": 0}, "$.ratio: expected number > 0"),
        ({"ratio": 1}, "$.ratio: expected number < 1"),
        ({"fps": 0}, "$.fps: expected integer >= 1"),
        ({"fps": 121}, "$.fps: expected integer <= 120"),
        ({"fps": True}, "$.fps: expected integer, got boolean"),
        ({"tags": []}, "$.tags: expected an array of at least 1 item"),
        ({"tags": ["a", "b", "c", "d"]}, "$.tags: expected an array of at most 3 items"),
        ({"tags": ["a", 2]}, "$.tags[1]: expected string, got integer"),
        ({"note": 5}, "$.note: expected string or null, got integer"),
        ({"extra": {"y": "yes"}}, "$.extra.y: expected boolean, got string"),
        ({"extra": {"odd key": 1}}, '$.extra["odd key"]: expected boolean, got integer'),
        ({"extra": {"k\n": 1}}, '$.extra["k\\n"]: expected boolean, got integer'),
        ({"surprise": 1}, "$.surprise: unexpected property (the schema allows only "
         "extra, fps, mode, name, note, ratio, tags, version)"),
    ]  # fmt: skip
    for body, detail in cases:
        assert refused(custom.post("/v1/settings", json=body), 400) == detail, body
    assert custom.get("/v1/settings").json() == CUSTOM_DEFAULTS


def test_relative_paths_are_taken_from_the_config_file_s_folder(
    processes: Processes, tmp_path: Path, database_url: str
) -> None:
    write_pair(tmp_path / "etc" / "genvid", CUSTOM_SCHEMA, CUSTOM_DEFAULTS)
    config = tmp_path / "etc" / "corral.toml"
    config.write_text(
        '[genvid.settings]\nschema = "genvid/schema.json"\ndefaults = "genvid/defaults.json"\n'
    )
    server = processes.serve(
        ["--config", str(config), "--database-url", database_url, "--data-dir", str(tmp_path)]
    )
    server.wait_ready()
    assert httpx.get(f"{server.url}/v1/settings").json() == CUSTOM_DEFAULTS
    assert httpx.get(f"{server.url}/v1/settings/schema").json() == CUSTOM_SCHEMA
    assert server.stop() == 0


BAD_FILES: list[tuple[str, object, object, str]] = [
    ("schema not JSON", "{nope", CUSTOM_DEFAULTS, "genvid.settings.schema"),
    ("defaults not JSON", CUSTOM_SCHEMA, "[1,", "genvid.settings.defaults"),
    ("schema not an object", "[]", CUSTOM_DEFAULTS, "must hold a JSON object"),
    ("defaults not an object", CUSTOM_SCHEMA, '"x"', "must hold a JSON object"),
    ("defaults refused", CUSTOM_SCHEMA, {**CUSTOM_DEFAULTS, "fps": 0}, "$.fps: expected integer"),
    ("unknown keyword", {"type": "object", "oneOf": []}, {}, "#/oneOf: unknown keyword"),
    ("bad type", {"properties": {"a": {"type": "int"}}}, {}, "#/properties/a/type"),
    ("bad pattern", {"properties": {"a": {"pattern": "("}}}, {}, "#/properties/a/pattern"),
    ("bad bound", {"minimum": "1"}, {}, "#/minimum: expected a number"),
    ("bad count", {"minLength": -1}, {}, "#/minLength: expected a non-negative integer"),
]  # fmt: skip


@pytest.mark.parametrize(("schema", "defaults", "named"), [c[1:] for c in BAD_FILES],
                         ids=[c[0] for c in BAD_FILES])  # fmt: skip
def test_bad_configured_files_stop_the_app_from_being_made(
    tmp_path: Path, schema: object, defaults: object, named: str
) -> None:
    schema_file, defaults_file = write_pair(tmp_path / "genvid", schema, defaults)
    with pytest.raises(ConfigError, match=r"genvid\.settings") as raised:
        create_app(configured(tmp_path, schema_file, defaults_file), "postgresql://unused")
    assert named in str(raised.value)


def test_a_missing_file_stops_the_app_from_being_made(tmp_path: Path) -> None:
    schema_file, _ = write_pair(tmp_path / "genvid", CUSTOM_SCHEMA, CUSTOM_DEFAULTS)
    with pytest.raises(ConfigError, match=r"genvid.settings.defaults: cannot read .*nowhere"):
        create_app(configured(tmp_path, schema_file, tmp_path / "nowhere.json"), "postgresql://x")


@pytest.mark.parametrize(
    ("defaults", "named"),
    [
        ('{"name": "game", "mode": "fast", "fps": 0}', "$.fps: expected integer >= 1"),
        ("{oops", "is not JSON"),
        (None, "cannot read"),
    ],
)
def test_corral_serve_exits_2_on_bad_settings_files(
    tmp_path: Path, database_url: str, defaults: str | None, named: str
) -> None:
    folder = tmp_path / "genvid"
    write_pair(folder, CUSTOM_SCHEMA, defaults or "{}")
    if defaults is None:
        (folder / "defaults.json").unlink()
    config = tmp_path / "corral.toml"
    config.write_text(
        '[genvid.settings]\nschema = "genvid/schema.json"\ndefaults = "genvid/defaults.json"\n'
    )
    result = subprocess.run(
        [*CORRAL, "serve", "--config", str(config), "--database-url", database_url,
         "--data-dir", str(tmp_path), "--port", "0"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert named in result.stderr
    assert "genvid.settings.defaults" in result.stderr


# -- access --------------------------------------------------------------------------------


def test_reads_follow_public_reads_and_writes_need_a_user_or_admin_token(
    tmp_path: Path, database_url: str
) -> None:
    roles = ("admin", "user", "worker")
    tokens = {role: create_token(database_url, role, role)[1] for role in roles}
    config = Config(server=ServerConfig(data_dir=str(tmp_path)))
    with ServerThread(config, database_url) as base:
        call = AsRole(base, tokens).status

        for path in ("/v1/settings", "/v1/settings/default", "/v1/schemas/settings.json"):
            assert call("GET", path, None) == 401
            assert call("GET", path, "worker") == 403
            assert call("GET", path, "user") == 200
            assert call("GET", path, "admin") == 200
        body = {"info": {"game": "x"}}
        assert call("POST", "/v1/settings", None, json=body) == 401
        assert call("POST", "/v1/settings", "worker", json=body) == 403
        assert call("POST", "/v1/settings", "user", json=body) == 200
        assert call("POST", "/v1/settings", "admin", json=body) == 200


# -- the validator itself ----------------------------------------------------------------------


def test_merge_rules() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": "x"}
    assert json_schema.merge(base, {"a": {"c": [3]}}) == {"a": {"b": 1, "c": [3]}, "d": "x"}
    assert json_schema.merge(base, {"a": None}) == {"a": None, "d": "x"}
    assert json_schema.merge(base, {"a": 5, "e": {"f": 1}}) == {"a": 5, "d": "x", "e": {"f": 1}}
    assert json_schema.merge(base, {"d": {"now": "object"}})["d"] == {"now": "object"}  # type: ignore[index]
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": "x"}, "the base is not changed"


def test_validator_edges() -> None:
    problem = json_schema.problem
    assert problem(True, {"anything": 1}) is None
    assert problem({}, [1]) is None
    assert problem({"title": "only annotations"}, 5) is None
    assert problem(False, 1) == "$: not allowed here"
    assert problem({"properties": {"a": False}}, {"a": 1}) == "$.a: not allowed here"
    assert problem({"type": "integer"}, 3.0) is None, "1.0 is an integer in JSON Schema"
    assert problem({"type": "number"}, True) == "$: expected number, got boolean"
    assert problem({"const": 1}, True) == "$: expected 1"
    assert problem({"const": 1}, 1.0) is None
    assert problem({"enum": [{"a": [1]}]}, {"a": [1]}) is None
    assert problem({"required": ["x"]}, {}) == "$.x: expected a value (the property is required)"
    assert problem({"required": ["x"]}, "not an object") is None
    assert problem({"minLength": 2}, "é") == "$: expected a string of at least 2 characters"
    assert problem({"items": {"maximum": 2}}, [1, 2, 3]) == "$[2]: expected number <= 2"
    for schema in (True, False, {}, CUSTOM_SCHEMA, SCHEMA):
        json_schema.check_schema(schema)
    for bad in ([], "s", {"items": 1}, {"required": "a"}, {"enum": []}, {"type": []},
                {"type": ["string", "string"]}, {"properties": []}, {"$ref": "#"}):  # fmt: skip
        with pytest.raises(json_schema.SchemaError):
            json_schema.check_schema(bad)
