"""Named affinities: the slots that give job and worker affinity names their numbers."""

import unicodedata

from core.db import Conn, Database
from core.errors import Invalid
from core.sql import Queries

Q = Queries("affinities.sql")


def check_name(name: str) -> None:
    """An affinity name is any text without ',' (it separates the names of a set), ';'
    or a line break (they separate a worker's rules) or other control characters; spaces
    inside it are kept ("windows project"), as Coalition allows."""
    for c in name:
        if c in ",;" or unicodedata.category(c) in ("Cc", "Zl", "Zp"):
            raise Invalid(
                f"affinity name {name!r} must not contain {c!r}: ',' separates the names "
                "of a set, ';' and line breaks separate a worker's rules"
            )


def parse_names(text: str) -> list[str]:
    """The affinity names of a comma-separated set, trimmed, in order, without repeats."""
    names: list[str] = []
    for part in text.split(","):
        name = part.strip()
        if not name:
            continue
        check_name(name)
        if name not in names:
            names.append(name)
    return names


async def resolve(conn: Conn, names: list[str], *, create: bool) -> list[int]:
    """The slot numbers of `names`, in the same order; unknown names get new slots when
    `create` is set and are refused otherwise."""
    if not names:
        return []
    known = {r["name"]: r["id"] for r in await conn.fetch(Q["select_by_names"], names)}
    missing = [n for n in names if n not in known]
    if missing:
        if not create:
            raise Invalid(
                f"unknown affinity {', '.join(map(repr, missing))}; "
                "name it first with POST /api/affinities"
            )
        await conn.execute(Q["lock_names"])
        # another writer may have named them while we waited for the lock
        known |= {r["name"]: r["id"] for r in await conn.fetch(Q["select_by_names"], missing)}
        missing = [n for n in missing if n not in known]
        if missing:
            created = await conn.fetch(Q["insert_names"], missing)
            known |= {r["name"]: r["id"] for r in created}
    return [known[n] for n in names]


async def slots(conn: Conn) -> dict[str, str]:
    """Every named slot: {"1": "linux", ...}."""
    return {str(r["id"]): r["name"] for r in await conn.fetch(Q["select_all"])}


async def set_slots(conn: Conn, changes: dict[str, str]) -> None:
    """Name (or, with "", clear) the given slots; the legacy client sends all of them."""
    wanted: dict[int, str] = {}
    for key, value in changes.items():
        try:
            slot = int(key)
        except ValueError:
            raise Invalid(f"affinity slot {key!r} is not a number") from None
        if slot <= 0 or slot > 2**31 - 1:
            raise Invalid(f"affinity slot {slot} is out of range")
        name = value.strip()
        check_name(name)
        wanted[slot] = name
    current = {int(k): v for k, v in (await slots(conn)).items()}
    final = {k: v for k, v in (current | wanted).items() if v}
    seen: dict[str, int] = {}
    for slot, name in sorted(final.items()):
        if name in seen:
            raise Invalid(f"affinity {name!r} is named in slots {seen[name]} and {slot}")
        seen[name] = slot
    changed = [s for s, n in wanted.items() if current.get(s, "") != n]
    await conn.execute(Q["delete_slots"], changed)
    named = [s for s in changed if wanted[s]]
    await conn.execute(Q["insert_slots"], named, [wanted[s] for s in named])
    await conn.execute(Q["reserve_slots"], named)


class Affinities:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def slots(self) -> dict[str, str]:
        return await self._db.read(slots)

    async def set_slots(self, changes: dict[str, str]) -> None:
        await self._db.transact(lambda c: set_slots(c, changes))
