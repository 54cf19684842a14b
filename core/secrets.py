"""Secret values (a job type's secret settings) kept encrypted in the database.

Fernet (the `cryptography` package: AES in CBC mode with an HMAC, a timestamped token)
with one key per farm, in a file only the server reads: a dump of the database alone
opens nothing. Every server process on one database needs the same key file; the first
process that needs a key and finds none writes one.
"""

import os
from pathlib import Path

import msgspec
from cryptography.fernet import Fernet, InvalidToken


class SecretsUnreadable(Exception):
    """The stored secrets do not open with this server's key (another farm's key file)."""


class Secrets:
    def __init__(self, key_file: Path) -> None:
        self._key_file = key_file
        self._fernet: Fernet | None = None

    def seal(self, values: dict[str, str]) -> bytes | None:
        """`values` encrypted, None when there are none."""
        if not values:
            return None
        return self._box().encrypt(msgspec.json.encode(values))

    def open(self, sealed: bytes | None) -> dict[str, str]:
        if sealed is None:
            return {}
        try:
            return msgspec.json.decode(self._box().decrypt(sealed), type=dict[str, str])
        except InvalidToken:
            raise SecretsUnreadable(
                f"stored secrets do not open with the key in {self._key_file}"
            ) from None

    def _box(self) -> Fernet:
        if self._fernet is None:
            self._fernet = Fernet(self._key())
        return self._fernet

    def _key(self) -> bytes:
        try:
            return self._key_file.read_bytes().strip()
        except FileNotFoundError:
            pass
        self._key_file.parent.mkdir(parents=True, exist_ok=True)
        key = Fernet.generate_key()
        # written whole under another name, then linked into place: a process racing to
        # write one reads either no file or a whole key, and the first link wins
        draft = self._key_file.with_name(f".{self._key_file.name}.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key)
        try:
            os.link(draft, self._key_file)
        except FileExistsError:
            return self._key_file.read_bytes().strip()
        finally:
            draft.unlink()
        return key
