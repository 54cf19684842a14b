"""The Genvid face's secrets, with the semantics of Vault's KV version 1 store: one map of
names to values per id, and each write replaces it.

Each map is encrypted in the server with AES-256-GCM (`cryptography`'s `AESGCM`): a fresh
random 96-bit nonce per write, the id as associated data (a ciphertext copied under
another id does not open). PostgreSQL holds only the nonce and the ciphertext. The key is
32 random bytes, from `CORRAL_GENVID_SECRETS_KEY` (base64) when it is set, else from
`[genvid.settings] secrets_key_file` (default `<data_dir>/genvid-secrets.key`), created
with mode 0600 at the first start when it is absent and no secret is stored yet.

A value never appears in a log line, an error or an exception: they name the id only.
"""

import base64
import binascii
import logging
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import asyncpg
import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core import migrate
from core.config import Config, ConfigError
from core.db import Conn, Database
from core.errors import Invalid, NotFound
from core.sql import Queries

Q = Queries("vault.sql")
log = logging.getLogger("corral.vault")

KEY_VARIABLE: Final = "CORRAL_GENVID_SECRETS_KEY"
# the key the stored secrets were encrypted with before a rotation (docs/security.md)
OLD_KEY_VARIABLE: Final = "CORRAL_GENVID_SECRETS_OLD_KEY"
KEY_FILE_NAME: Final = "genvid-secrets.key"
ID: Final = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# names and values of one map together, in UTF-8
MAX_BYTES: Final = 64 * 1024
_NONCE_BYTES: Final = 12
_KEY_BYTES: Final = 32


class VaultError(ConfigError):
    """The secrets cannot be opened: the key is missing, malformed or not the one they
    were written with. `corral serve` stops with exit status 2 and this message."""


class Vault:
    def __init__(self, db: Database, config: Config) -> None:
        self._db = db
        self._key_file = key_file(config)
        self._aead: AESGCM | None = None

    @property
    def key_source(self) -> str:
        """Where the key comes from, for messages."""
        if os.environ.get(KEY_VARIABLE):
            return f"the environment variable {KEY_VARIABLE}"
        return f"the key file {self._key_file}"

    async def check(self) -> None:
        """At start-up: load the key (creating the key file when it is absent and no
        secret is stored), and prove it opens every stored secret. With
        `CORRAL_GENVID_SECRETS_OLD_KEY` set, secrets that open with that key instead are
        encrypted again with the current one (a rotation). Raises `VaultError`."""
        aead = await self._load()
        old = _old_key()

        async def work(conn: Conn) -> int:
            unreadable: list[str] = []
            rotated = 0
            rows = await conn.fetch(Q["every_locked" if old else "every"])
            for row in rows:
                if _opens(aead, row):
                    continue
                if old is not None and _opens(old, row):
                    plain = old.decrypt(row["nonce"], row["ciphertext"], _aad(row["id"]))
                    await _write(conn, aead, row["id"], plain)
                    rotated += 1
                else:
                    unreadable.append(row["id"])
            if unreadable:
                # raised inside the transaction: a rotation half done is rolled back
                shown = ", ".join(f'"{i}"' for i in unreadable[:5])
                more = f" and {len(unreadable) - 5} more" if len(unreadable) > 5 else ""
                raise VaultError(
                    f"the Genvid secrets key from {self.key_source} does not open the stored "
                    f"secret(s) {shown}{more}: every server of one database needs the same "
                    "key (restore it, or see docs/security.md for rotating it)"
                )
            return rotated

        rotated = await (self._db.transact if old else self._db.read)(work)
        if rotated:
            log.info("encrypted %d Genvid secret(s) again with the current key", rotated)

    async def get(self, secret_id: str) -> dict[str, str]:
        """The map stored under `secret_id` (`NotFound` when there is none)."""
        aead = await self._load()

        async def work(conn: Conn) -> asyncpg.Record | None:
            return await conn.fetchrow(Q["get"], secret_id)

        row = await self._db.read(work) if ID.fullmatch(secret_id) else None
        if row is None:
            raise NotFound(
                f'no secret "{secret_id}"' if ID.fullmatch(secret_id) else "no such secret"
            )
        return _open(aead, secret_id, row["nonce"], row["ciphertext"])

    async def put(self, secret_id: str, values: Mapping[str, object]) -> None:
        """Store `values` under `secret_id`, replacing any previous map whole. Ids match
        `ID`, names `NAME`, values are strings, `MAX_BYTES` in all (`Invalid`)."""
        if not ID.fullmatch(secret_id):
            raise Invalid(
                f"a secret id is 1 to 128 letters, digits, '_', '.' or '-' ({ID.pattern})"
            )
        plain = _checked(secret_id, values)
        aead = await self._load()

        async def work(conn: Conn) -> None:
            await _write(conn, aead, secret_id, plain)

        await self._db.transact(work)

    async def delete(self, secret_id: str) -> None:
        """Delete the map of `secret_id` (`NotFound` when there is none)."""

        async def work(conn: Conn) -> str | None:
            deleted: str | None = await conn.fetchval(Q["delete"], secret_id)
            return deleted

        if not ID.fullmatch(secret_id) or await self._db.transact(work) is None:
            raise NotFound(
                f'no secret "{secret_id}"' if ID.fullmatch(secret_id) else "no such secret"
            )

    async def environment(self, ids: Sequence[str]) -> tuple[dict[str, str], list[str]]:
        """The names and values of the secrets `ids`, merged (a later id wins over an
        earlier one), and the ids that do not exist, in the order given."""
        if not ids:
            return {}, []
        aead = await self._load()

        async def work(conn: Conn) -> dict[str, asyncpg.Record]:
            return {r["id"]: r for r in await conn.fetch(Q["some"], list(ids))}

        rows = await self._db.read(work)
        merged: dict[str, str] = {}
        missing: list[str] = []
        for secret_id in ids:
            row = rows.get(secret_id)
            if row is None:
                missing.append(secret_id)
            else:
                merged.update(_open(aead, secret_id, row["nonce"], row["ciphertext"]))
        return merged, missing

    async def rotate(self, new_key: bytes) -> int:
        """Encrypt every stored secret again with `new_key`, in one transaction, and use
        that key from now on; the number of secrets. Storing the new key where every
        server reads it is the caller's part (docs/security.md)."""
        if len(new_key) != _KEY_BYTES:
            raise Invalid(f"a key is {_KEY_BYTES} bytes")
        old = await self._load()
        new = AESGCM(new_key)

        async def work(conn: Conn) -> int:
            rows = await conn.fetch(Q["every_locked"])
            for row in rows:
                plain = _decrypt(old, row["id"], row["nonce"], row["ciphertext"])
                await _write(conn, new, row["id"], plain)
            return len(rows)

        count = await self._db.transact(work)
        self._aead = new
        return count

    async def list(self) -> list[str]:
        """Every id, sorted (last in the class: its name hides the builtin below it)."""

        async def work(conn: Conn) -> list[str]:
            return [r["id"] for r in await conn.fetch(Q["ids"])]

        return await self._db.read(work)

    async def _load(self) -> AESGCM:
        if self._aead is None:
            self._aead = AESGCM(await self._key())
        return self._aead

    async def _key(self) -> bytes:
        given = os.environ.get(KEY_VARIABLE)
        if given:
            return _decoded(given, KEY_VARIABLE)
        try:
            return _read_key(self._key_file)
        except FileNotFoundError:
            pass

        async def work(conn: Conn) -> int:
            count: int = await conn.fetchval(Q["count"])
            return count

        stored = await self._db.read(work)
        if stored:
            raise VaultError(
                f"{stored} Genvid secret(s) are stored, but the key file {self._key_file} "
                f"does not exist and {KEY_VARIABLE} is not set: restore the key every "
                "server of this database uses (docs/security.md)"
            )
        return create_key_file(self._key_file)


def key_file(config: Config) -> Path:
    """Where the key is read from, and created when needed."""
    given = config.genvid.settings.secrets_key_file
    return Path(given) if given else Path(config.server.data_dir) / KEY_FILE_NAME


def create_key_file(path: Path) -> bytes:
    """Write a new random key to `path` with mode 0600, or read the one another process
    wrote first; the key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(_KEY_BYTES)
    # as core/secrets.py does: written whole under another name, then linked into place,
    # so a process racing to write one reads either no file or a whole key, and the
    # first link wins
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    try:
        os.link(draft, path)
    except FileExistsError:
        return _read_key(path)
    finally:
        draft.unlink()
    log.info("created the Genvid secrets key %s", path)
    return key


async def preflight(database_url: str, config: Config) -> None:
    """What `corral serve` runs before it listens: migrate, then `Vault.check`; a
    `VaultError` (a `ConfigError`) then stops it with exit status 2."""
    db = await Database.connect(database_url, min_size=1, max_size=1)
    try:
        await db.read(migrate.apply)
        await Vault(db, config).check()
    finally:
        await db.close()


def _read_key(path: Path) -> bytes:
    """The key in `path`: 32 raw bytes (as Corral writes it), or their base64 text."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise VaultError(
            f"cannot read the Genvid secrets key file {path}: {exc.strerror}"
        ) from None
    if path.stat().st_mode & 0o077:
        log.warning("the Genvid secrets key file %s can be read by others: chmod 600 it", path)
    if len(raw) == _KEY_BYTES:
        return raw
    return _decoded(raw.decode("ascii", "replace").strip(), f"the key file {path}")


def _decoded(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != _KEY_BYTES:
        raise VaultError(
            f"{where} must hold a Genvid secrets key: {_KEY_BYTES} random bytes (or their base64)"
        )
    return key


def _old_key() -> AESGCM | None:
    given = os.environ.get(OLD_KEY_VARIABLE)
    return AESGCM(_decoded(given, OLD_KEY_VARIABLE)) if given else None


def _checked(secret_id: str, values: Mapping[str, object]) -> bytes:
    """The map as the plaintext to encrypt, once every name and value is acceptable. No
    message shows a name or a value."""
    if not isinstance(values, Mapping):
        raise Invalid(f'secret "{secret_id}": expected a JSON object of names to values')
    size = 0
    for number, (name, value) in enumerate(values.items(), 1):
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise Invalid(
                f'secret "{secret_id}": name #{number} is not an environment variable name '
                f"({NAME.pattern})"
            )
        if not isinstance(value, str):
            raise Invalid(f'secret "{secret_id}": the value of name #{number} is not a string')
        if "\0" in value:
            # an environment variable cannot hold one
            raise Invalid(f'secret "{secret_id}": the value of name #{number} holds a NUL')
        size += len(name.encode()) + len(value.encode())
    if size > MAX_BYTES:
        raise Invalid(
            f'secret "{secret_id}": its names and values are over {MAX_BYTES // 1024} KiB in all'
        )
    return msgspec.json.encode(dict(values))


async def _write(conn: Conn, aead: AESGCM, secret_id: str, plain: bytes) -> None:
    nonce = os.urandom(_NONCE_BYTES)
    await conn.execute(Q["put"], secret_id, nonce, aead.encrypt(nonce, plain, _aad(secret_id)))


def _aad(secret_id: str) -> bytes:
    return secret_id.encode()


def _opens(aead: AESGCM, row: asyncpg.Record) -> bool:
    try:
        aead.decrypt(row["nonce"], row["ciphertext"], _aad(row["id"]))
    except InvalidTag:
        return False
    return True


def _decrypt(aead: AESGCM, secret_id: str, nonce: bytes, ciphertext: bytes) -> bytes:
    try:
        return aead.decrypt(nonce, ciphertext, _aad(secret_id))
    except InvalidTag:
        raise VaultError(
            f'the stored secret "{secret_id}" does not open with this server\'s key'
        ) from None


def _open(aead: AESGCM, secret_id: str, nonce: bytes, ciphertext: bytes) -> dict[str, str]:
    return msgspec.json.decode(_decrypt(aead, secret_id, nonce, ciphertext), type=dict[str, str])
