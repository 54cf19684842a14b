"""The Genvid face's secrets (`/v1/secrets/...` and `/secrets/...`) against a real server
and database: Vault KV v1 semantics, both prefixes, admin only, refusals storing nothing,
values in no answer but `GET .../secret/{id}` and in no log line, encryption at rest
(the table and a `pg_dump`), the key file, the key from the environment, start-ups that
refuse a missing or wrong key (exit 2), and `core.vault` itself: the environment a run
gets, associated data, rotation, racing key files."""

import asyncio
import base64
import json
import logging
import os
import secrets
import stat
import subprocess
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pgserver
import pytest

from core.config import AuthConfig, Config, GenvidConfig, GenvidSettingsConfig, ServerConfig
from core.db import Database
from core.errors import Invalid, NotFound
from core.vault import KEY_VARIABLE, OLD_KEY_VARIABLE, Vault, VaultError, create_key_file
from tests.conftest import ServerThread, Sql
from tests.farm import AsRole, create_token
from tests.processes import CORRAL, Processes

T = TypeVar("T")
PREFIXES = ("/v1/secrets", "/secrets")
VALUE = "s3cr3t-value-9f8e7d"
OTHER = "another-hidden-value-1a2b"
PG_BIN = Path(pgserver.__file__).parent / "pginstall" / "bin"


def refused(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status_code"] == status
    detail: str = body["detail"]
    return detail


def rows(sql: Sql) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in sql.fetch("SELECT * FROM genvid_secrets ORDER BY id")]


def on_vault(url: str, config: Config, action: Callable[[Vault], Awaitable[T]]) -> T:
    """Run `action` on a `Vault` of its own over the database at `url`."""

    async def go() -> T:
        db = await Database.connect(url, min_size=1, max_size=1)
        try:
            return await action(Vault(db, config))
        finally:
            await db.close()

    return asyncio.run(go())


# -- Vault KV v1 semantics, both prefixes ------------------------------------------------------


@pytest.mark.parametrize(("write", "read"), [(PREFIXES[0], PREFIXES[1]), PREFIXES[::-1]])
def test_list_get_put_delete_under_both_prefixes(api: httpx.Client, write: str, read: str) -> None:
    for prefix in PREFIXES:
        assert api.get(f"{prefix}/list").json() == {"keys": []}
    put = api.post(f"{write}/secret/disco", json={"GENVID_DISCO": VALUE, "akey": "avalue"})
    assert put.status_code == 200, put.text
    assert put.json() == {}
    assert api.post(f"{read}/secret/command", json={"GENVID_COMMAND_SECRET": OTHER}).json() == {}
    for prefix in PREFIXES:
        assert api.get(f"{prefix}/list").json() == {"keys": ["command", "disco"]}
        assert api.get(f"{prefix}/secret/disco").json() == {"GENVID_DISCO": VALUE, "akey": "avalue"}
    # a write replaces the whole map
    assert api.post(f"{write}/secret/disco", json={"ONLY": "this"}).json() == {}
    assert api.get(f"{read}/secret/disco").json() == {"ONLY": "this"}
    # an empty map is a map
    assert api.post(f"{write}/secret/empty", json={}).json() == {}
    assert api.get(f"{read}/secret/empty").json() == {}
    # DELETE ignores its body (the seed shows one)
    gone = api.request("DELETE", f"{read}/secret/disco", json={"ONLY": "this"})
    assert gone.status_code == 200
    assert gone.json() == {}
    assert refused(api.get(f"{write}/secret/disco"), 404) == 'no secret "disco"'
    assert refused(api.delete(f"{write}/secret/disco"), 404) == 'no secret "disco"'
    assert api.get(f"{write}/list").json() == {"keys": ["command", "empty"]}


def test_ids_are_listed_in_byte_order(api: httpx.Client) -> None:
    for secret_id in ("b", "B", "a.1", "a-1", "a_1", "_z", "9"):
        api.post(f"/v1/secrets/secret/{secret_id}", json={"X": "1"})
    assert api.get("/v1/secrets/list").json() == {
        "keys": sorted(["b", "B", "a.1", "a-1", "a_1", "_z", "9"])
    }


def test_unknown_ids_and_routes_are_404_and_wrong_methods_405(api: httpx.Client) -> None:
    for prefix in PREFIXES:
        refused(api.get(f"{prefix}/secret/nothing"), 404)
        refused(api.get(f"{prefix}/secret/{'x' * 129}"), 404)
        refused(api.get(f"{prefix}/secret/a%20b"), 404)
        refused(api.get(f"{prefix}/secret/a%0A"), 404)
        refused(api.delete(f"{prefix}/secret/a%0A"), 404)
        refused(api.delete(f"{prefix}/secret/a%20b"), 404)
        refused(api.get(f"{prefix}/nothing"), 404)
        refused(api.put(f"{prefix}/secret/x", json={}), 405)
        refused(api.post(f"{prefix}/list", json={}), 405)


# -- refusals store nothing -------------------------------------------------------------------


def test_bad_ids_names_values_and_sizes_are_400_and_store_nothing(
    api: httpx.Client, sql: Sql
) -> None:
    assert api.post("/v1/secrets/secret/kept", json={"KEPT": VALUE}).status_code == 200
    before = rows(sql)
    big = "x" * (64 * 1024)
    cases: list[tuple[str, object, str]] = [
        ("kept", [VALUE], "object"),
        ("kept", VALUE, "object"),
        ("kept", None, "object"),
        ("kept", {"A": 1}, 'secret "kept": the value of name #1 is not a string'),
        ("kept", {"A": VALUE, "B": None}, "the value of name #2 is not a string"),
        ("kept", {"A": {"nested": VALUE}}, "not a string"),
        ("kept", {"A": [VALUE]}, "not a string"),
        ("kept", {"A": True}, "not a string"),
        ("kept", {"1A": VALUE}, "name #1 is not an environment variable name"),
        ("kept", {"A-B": VALUE}, "name #1 is not an environment variable name"),
        ("kept", {"A\n": VALUE}, "name #1 is not an environment variable name"),
        ("kept", {"": VALUE}, "name #1 is not an environment variable name"),
        ("kept", {"OK": VALUE, "É": VALUE}, "name #2 is not an environment variable name"),
        ("kept", {"A": VALUE + "\u0000"}, "holds a NUL"),
        ("kept", {"A": big}, "over 64 KiB in all"),
        ("kept", {"A": big[:40000], "B": big[:30000]}, "over 64 KiB in all"),
        ("kept", {"A": "é" * 40000}, "over 64 KiB in all"),
        ("bad id", {"A": VALUE}, "a secret id is 1 to 128"),
        ("x" * 129, {"A": VALUE}, "a secret id is 1 to 128"),
        ("é", {"A": VALUE}, "a secret id is 1 to 128"),
        ("a%0A", {"A": VALUE}, "a secret id is 1 to 128"),
    ]
    for secret_id, body, named in cases:
        for prefix in PREFIXES:
            answer = api.post(f"{prefix}/secret/{secret_id}", content=json.dumps(body))
            detail = refused(answer, 400)
            assert named in detail, (secret_id, body, detail)
            assert VALUE not in answer.text
    for raw in (b"", b"{nope", b"\xff"):
        refused(api.post("/v1/secrets/secret/kept", content=raw), 400)
    assert rows(sql) == before
    assert api.get("/v1/secrets/secret/kept").json() == {"KEPT": VALUE}
    assert api.get("/v1/secrets/list").json() == {"keys": ["kept"]}


def test_64_kib_in_all_is_accepted(api: httpx.Client) -> None:
    body = {"A": "x" * (64 * 1024 - 1)}
    assert api.post("/v1/secrets/secret/big", json=body).status_code == 200
    assert api.get("/v1/secrets/secret/big").json() == body


# -- values stay hidden -------------------------------------------------------------------


def test_values_are_in_no_answer_but_get_and_in_no_log_line(
    api: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answers = [api.post("/v1/secrets/secret/command", json={"GENVID_COMMAND_SECRET": VALUE})]
    answers += [
        api.get("/v1/secrets/list"),
        api.get("/secrets/list"),
        api.post("/v1/secrets/secret/command", json={"GOOD": OTHER, "bad name": VALUE}),
        api.post("/v1/secrets/secret/command", json={"GOOD": OTHER, "N": 1}),
        api.post("/v1/secrets/secret/command", json={"GOOD": OTHER * 5000}),
        api.post(f"/v1/secrets/secret/{VALUE} x", json={"A": OTHER}),
        api.get("/v1/secrets/secret/nothing"),
        api.delete("/v1/secrets/secret/nothing"),
        api.get("/schema/openapi.json"),
        api.get("/v1/settings"),
        api.get("/v1/events"),
    ]
    assert answers[-3].status_code == 200, "the OpenAPI schema documents these routes"
    assert "/v1/secrets/secret/{secret_id}" in answers[-3].json()["paths"]
    for answer in answers:
        assert VALUE not in answer.text
        assert OTHER not in answer.text
        assert "GENVID_COMMAND_SECRET" not in answer.text
    assert api.get("/v1/secrets/secret/command").json() == {"GENVID_COMMAND_SECRET": VALUE}
    # every line the server logged (the test's own client logs its URLs)
    server = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    logged = "\n".join(r.getMessage() for r in server)
    assert VALUE not in logged
    assert OTHER not in logged


def test_the_table_holds_only_nonces_and_ciphertexts(api: httpx.Client, sql: Sql) -> None:
    api.post("/v1/secrets/secret/command", json={"GENVID_COMMAND_SECRET": VALUE})
    [(secret_id, nonce, ciphertext, _)] = rows(sql)
    assert secret_id == "command"
    assert len(nonce) == 12
    # the map's JSON, plus GCM's 16-byte tag
    assert len(ciphertext) == len(b'{"GENVID_COMMAND_SECRET":"' + VALUE.encode() + b'"}') + 16
    whole = sql.fetchval("SELECT string_agg(t::text, ' ') FROM genvid_secrets t")
    for hidden in (VALUE, "GENVID_COMMAND_SECRET", VALUE.encode().hex()):
        assert hidden not in whole
        assert hidden.encode() not in ciphertext
    # a fresh nonce per write, even of the same map
    api.post("/v1/secrets/secret/command", json={"GENVID_COMMAND_SECRET": VALUE})
    [(_, nonce2, ciphertext2, _)] = rows(sql)
    assert nonce2 != nonce
    assert ciphertext2 != ciphertext


def test_a_dump_of_the_database_holds_no_value(
    api: httpx.Client, database_url: str, tmp_path: Path
) -> None:
    api.post("/v1/secrets/secret/command", json={"GENVID_COMMAND_SECRET": VALUE, "K": OTHER})
    api.post("/v1/settings", json={"info": {"name": "dumped"}})
    dump = subprocess.run(
        [str(PG_BIN / "pg_dump"), "--dbname", database_url, "--data-only"],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    assert b"genvid_secrets" in dump
    assert b"dumped" in dump, "the dump holds the data of the other tables"
    for hidden in (VALUE, OTHER, "GENVID_COMMAND_SECRET"):
        assert hidden.encode() not in dump
        assert base64.b64encode(hidden.encode()) not in dump
    key = (tmp_path / "genvid-secrets.key").read_bytes()
    assert key not in dump
    assert key.hex().encode() not in dump
    assert base64.b64encode(key) not in dump


# -- the key --------------------------------------------------------------------------------


def test_the_key_file_is_made_at_the_first_start_with_mode_0600(
    api: httpx.Client, tmp_path: Path
) -> None:
    key = tmp_path / "genvid-secrets.key"
    assert key.is_file(), "made at start-up, before any secret"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(key.read_bytes()) == 32
    made = key.read_bytes()
    api.post("/v1/secrets/secret/a", json={"A": VALUE})
    assert key.read_bytes() == made
    assert VALUE.encode() not in made
    assert [p.name for p in tmp_path.iterdir() if "genvid" in p.name] == ["genvid-secrets.key"]


def test_the_configured_key_file_is_used(tmp_path: Path, database_url: str) -> None:
    key = tmp_path / "keys" / "genvid.key"
    config = Config(
        server=ServerConfig(data_dir=str(tmp_path / "data")),
        genvid=GenvidConfig(settings=GenvidSettingsConfig(secrets_key_file=str(key))),
    )
    with ServerThread(config, database_url) as base:
        assert httpx.post(f"{base}/v1/secrets/secret/a", json={"A": VALUE}).status_code == 200
    assert len(key.read_bytes()) == 32
    assert not (tmp_path / "data" / "genvid-secrets.key").exists()
    assert on_vault(database_url, config, lambda v: v.get("a")) == {"A": VALUE}


def test_the_key_from_the_environment_wins_and_no_file_is_made(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = secrets.token_bytes(32)
    monkeypatch.setenv(KEY_VARIABLE, base64.b64encode(key).decode())
    config = Config(server=ServerConfig(data_dir=str(tmp_path)))
    (tmp_path / "genvid-secrets.key").write_bytes(secrets.token_bytes(32))
    with ServerThread(config, database_url) as base:
        assert httpx.post(f"{base}/v1/secrets/secret/a", json={"A": VALUE}).status_code == 200
        assert httpx.get(f"{base}/v1/secrets/secret/a").json() == {"A": VALUE}
    # written with the variable's key, not the file's
    (tmp_path / "genvid-secrets.key").write_bytes(key)
    monkeypatch.delenv(KEY_VARIABLE)
    assert on_vault(database_url, config, lambda v: v.get("a")) == {"A": VALUE}


def test_a_key_file_may_hold_the_key_in_base64(tmp_path: Path, database_url: str) -> None:
    key = secrets.token_bytes(32)
    (tmp_path / "genvid-secrets.key").write_text(base64.b64encode(key).decode() + "\n")
    config = Config(server=ServerConfig(data_dir=str(tmp_path)))
    on_vault(database_url, config, lambda v: v.put("a", {"A": VALUE}))
    (tmp_path / "genvid-secrets.key").write_bytes(key)
    assert on_vault(database_url, config, lambda v: v.get("a")) == {"A": VALUE}


def start_up(database_url: str, data: Path, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [*CORRAL, "serve", "--database-url", database_url, "--data-dir", str(data),
         "--port", "0"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**{k: v for k, v in os.environ.items() if k != KEY_VARIABLE}, **(env or {})},
    )  # fmt: skip


@pytest.fixture
def stored_secret(tmp_path: Path, database_url: str) -> Path:
    """A secret stored with the key file of `tmp_path/data`; that data folder."""
    data = tmp_path / "data"
    config = Config(server=ServerConfig(data_dir=str(data)))
    on_vault(database_url, config, lambda v: v.put("command", {"GENVID_COMMAND_SECRET": VALUE}))
    return data


def test_start_up_with_stored_secrets_and_no_key_exits_2(
    stored_secret: Path, database_url: str
) -> None:
    (stored_secret / "genvid-secrets.key").unlink()
    result = start_up(database_url, stored_secret)
    assert result.returncode == 2, result.stderr
    assert "1 Genvid secret(s) are stored" in result.stderr
    assert str(stored_secret / "genvid-secrets.key") in result.stderr
    assert KEY_VARIABLE in result.stderr
    assert VALUE not in result.stderr + result.stdout
    assert not (stored_secret / "genvid-secrets.key").exists(), "no new key over old secrets"


def test_start_up_with_a_key_that_opens_nothing_exits_2(
    stored_secret: Path, database_url: str
) -> None:
    original = (stored_secret / "genvid-secrets.key").read_bytes()
    (stored_secret / "genvid-secrets.key").write_bytes(secrets.token_bytes(32))
    result = start_up(database_url, stored_secret)
    assert result.returncode == 2, result.stderr
    assert 'does not open the stored secret(s) "command"' in result.stderr
    assert VALUE not in result.stderr + result.stdout
    # a wrong key in the environment too
    env = {KEY_VARIABLE: base64.b64encode(secrets.token_bytes(32)).decode()}
    result = start_up(database_url, stored_secret, env)
    assert result.returncode == 2
    assert KEY_VARIABLE in result.stderr
    # and a malformed one
    result = start_up(database_url, stored_secret, {KEY_VARIABLE: "not base64!"})
    assert result.returncode == 2
    assert f"{KEY_VARIABLE} must hold a Genvid secrets key" in result.stderr
    result = start_up(
        database_url, stored_secret, {KEY_VARIABLE: base64.b64encode(original[:16]).decode()}
    )
    assert result.returncode == 2


def test_start_up_with_the_key_in_the_environment_serves_the_secrets(
    processes: Processes, stored_secret: Path, database_url: str
) -> None:
    key = (stored_secret / "genvid-secrets.key").read_bytes()
    (stored_secret / "genvid-secrets.key").unlink()
    server = processes.serve(
        ["--database-url", database_url, "--data-dir", str(stored_secret)],
        env={KEY_VARIABLE: base64.b64encode(key).decode()},
    )
    server.wait_ready()
    assert httpx.get(f"{server.url}/v1/secrets/secret/command").json() == {
        "GENVID_COMMAND_SECRET": VALUE
    }
    # refusals and writes carrying values, then a look at everything the process logged
    for body in ({"A": VALUE, "B": 1}, {"bad name": VALUE}, {"A": VALUE * 4000}, {"OK": OTHER}):
        httpx.post(f"{server.url}/secrets/secret/command", json=body)
    assert server.stop() == 0
    assert "Uvicorn running" in server.output() or "Application startup" in server.output()
    assert OTHER not in server.output()
    assert not (stored_secret / "genvid-secrets.key").exists()
    assert VALUE not in server.output()


def test_concurrent_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "race" / "genvid-secrets.key"
    keys: list[bytes] = []
    start = threading.Barrier(8)

    def make() -> None:
        start.wait()
        keys.append(create_key_file(path))

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1
    assert path.read_bytes() == keys[0]
    assert sorted(p.name for p in path.parent.iterdir()) == ["genvid-secrets.key"]


# -- access ---------------------------------------------------------------------------------


@pytest.mark.parametrize("public_reads", [False, True])
def test_every_secrets_route_needs_an_admin_token(
    tmp_path: Path, database_url: str, public_reads: bool
) -> None:
    roles = ("admin", "user", "worker")
    tokens = {role: create_token(database_url, role, role)[1] for role in roles}
    config = Config(
        server=ServerConfig(data_dir=str(tmp_path)), auth=AuthConfig(public_reads=public_reads)
    )
    with ServerThread(config, database_url) as base:
        call = AsRole(base, tokens)

        for prefix in PREFIXES:
            routes: list[tuple[str, str, dict[str, Any]]] = [
                ("POST", f"{prefix}/secret/a", {"json": {"A": VALUE}}),
                ("GET", f"{prefix}/list", {}),
                ("GET", f"{prefix}/secret/a", {}),
                ("DELETE", f"{prefix}/secret/a", {}),
            ]
            for method, path, kw in routes:
                assert call(method, path, None, **kw).status_code == 401, path
                for role in ("user", "worker"):
                    answer = call(method, path, role, **kw)
                    assert answer.status_code == 403, (method, path, role)
                    assert VALUE not in answer.text
                assert call(method, path, "admin", **kw).status_code == 200, (method, path)


# -- core.vault ---------------------------------------------------------------------------------


@pytest.fixture
def vault_config(tmp_path: Path) -> Config:
    return Config(server=ServerConfig(data_dir=str(tmp_path)))


def test_the_environment_of_a_run_merges_later_ids_over_earlier_ones(
    database_url: str, vault_config: Config
) -> None:
    async def go(vault: Vault) -> list[tuple[dict[str, str], list[str]]]:
        await vault.put("base", {"A": "base-a", "B": "base-b"})
        await vault.put("over", {"B": "over-b", "C": "over-c"})
        return [
            await vault.environment(["base", "over"]),
            await vault.environment(["over", "base"]),
            await vault.environment(["gone", "base", "missing"]),
            await vault.environment([]),
        ]

    both, reversed_, missing, none = on_vault(database_url, vault_config, go)
    assert both == ({"A": "base-a", "B": "over-b", "C": "over-c"}, [])
    assert reversed_ == ({"A": "base-a", "B": "base-b", "C": "over-c"}, [])
    assert missing == ({"A": "base-a", "B": "base-b"}, ["gone", "missing"])
    assert none == ({}, [])


def test_core_errors_name_the_id_only(database_url: str, vault_config: Config) -> None:
    async def go(vault: Vault) -> list[str]:
        errors: list[str] = []
        for values in ({"A": 5}, {"9": VALUE}, {"A": VALUE * 10000}):
            try:
                await vault.put("x", values)
            except Invalid as exc:
                errors.append(str(exc))
        for call in (vault.get, vault.delete):
            try:
                await call("x")
            except NotFound as exc:
                errors.append(str(exc))
        return errors

    errors = on_vault(database_url, vault_config, go)
    assert len(errors) == 5
    assert all('secret "x"' in e for e in errors)
    assert not any(VALUE in e for e in errors)


def test_a_ciphertext_moved_to_another_id_does_not_open(
    database_url: str, vault_config: Config, sql: Sql
) -> None:
    on_vault(database_url, vault_config, lambda v: v.put("a", {"A": VALUE}))
    sql.execute(
        "INSERT INTO genvid_secrets (id, nonce, ciphertext) "
        "SELECT 'b', nonce, ciphertext FROM genvid_secrets WHERE id = 'a'"
    )
    with pytest.raises(VaultError, match='"b"') as raised:
        on_vault(database_url, vault_config, lambda v: v.get("b"))
    assert VALUE not in str(raised.value)
    with pytest.raises(VaultError, match=r'secret\(s\) "b"'):
        on_vault(database_url, vault_config, lambda v: v.check())


def test_rotate_encrypts_every_secret_again_with_the_new_key(
    database_url: str, vault_config: Config, tmp_path: Path, sql: Sql
) -> None:
    async def go(vault: Vault) -> int:
        await vault.put("a", {"A": VALUE})
        await vault.put("b", {"B": OTHER})
        count = await vault.rotate(new_key)
        # the same vault goes on with the new key
        assert await vault.get("a") == {"A": VALUE}
        return count

    new_key = secrets.token_bytes(32)
    before = rows(sql)
    assert on_vault(database_url, vault_config, go) == 2
    assert rows(sql) != before
    # the old key opens nothing any more; the new one opens everything
    with pytest.raises(VaultError):
        on_vault(database_url, vault_config, lambda v: v.check())
    (tmp_path / "genvid-secrets.key").write_bytes(new_key)
    on_vault(database_url, vault_config, lambda v: v.check())
    assert on_vault(database_url, vault_config, lambda v: v.environment(["a", "b"])) == (
        {"A": VALUE, "B": OTHER},
        [],
    )
    with pytest.raises(Invalid):
        on_vault(database_url, vault_config, lambda v: v.rotate(b"short"))


def test_a_start_up_with_the_old_key_given_rotates_to_the_current_one(
    database_url: str, vault_config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_vault(database_url, vault_config, lambda v: v.put("a", {"A": VALUE}))
    key_file = tmp_path / "genvid-secrets.key"
    old = key_file.read_bytes()
    new = secrets.token_bytes(32)
    key_file.write_bytes(new)
    with pytest.raises(VaultError):
        on_vault(database_url, vault_config, lambda v: v.check())
    monkeypatch.setenv(OLD_KEY_VARIABLE, base64.b64encode(old).decode())
    on_vault(database_url, vault_config, lambda v: v.check())
    # once done, a second start-up with the variable still set changes nothing
    on_vault(database_url, vault_config, lambda v: v.check())
    monkeypatch.delenv(OLD_KEY_VARIABLE)
    on_vault(database_url, vault_config, lambda v: v.check())
    assert on_vault(database_url, vault_config, lambda v: v.get("a")) == {"A": VALUE}
    assert key_file.read_bytes() == new


def test_a_rotation_that_meets_a_secret_neither_key_opens_changes_nothing(
    database_url: str, vault_config: Config, tmp_path: Path, sql: Sql,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    key_file = tmp_path / "genvid-secrets.key"
    on_vault(database_url, vault_config, lambda v: v.put("old", {"A": VALUE}))
    old = key_file.read_bytes()
    # a secret written with a third key, which the rotation is not given
    key_file.write_bytes(secrets.token_bytes(32))
    on_vault(database_url, vault_config, lambda v: v.put("stray", {"B": OTHER}))
    key_file.write_bytes(secrets.token_bytes(32))
    before = rows(sql)
    monkeypatch.setenv(OLD_KEY_VARIABLE, base64.b64encode(old).decode())
    with pytest.raises(VaultError, match=r'secret\(s\) "stray"'):
        on_vault(database_url, vault_config, lambda v: v.check())
    assert rows(sql) == before, "the secret the old key opens was not rewritten either"
