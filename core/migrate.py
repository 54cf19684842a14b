"""Apply the numbered SQL files of the `migrations` package, each once, in order."""

import re
from importlib import resources

from core.db import Conn

_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# any constant shared by every Corral process: start-ups on one database take turns
_LOCK_KEY = 0x636F7272616C  # "corral"


class Migration:
    def __init__(self, version: int, name: str, sql: str) -> None:
        self.version = version
        self.name = name
        self.sql = sql


def available() -> list[Migration]:
    """Every migration shipped with this Corral, in order."""
    found: list[Migration] = []
    for entry in resources.files("migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number: {versions}")
    return found


async def apply(conn: Conn) -> list[str]:
    """Apply what has not run yet, all in one transaction; return the names applied."""
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS corral_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM corral_migrations")}
        for migration in available():
            if migration.version in done:
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO corral_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
            applied.append(migration.name)
    return applied
