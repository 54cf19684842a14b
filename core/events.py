"""Events: the history of runs, newest first."""

import msgspec

from core.config import Config
from core.db import Conn, Database
from core.models import Event
from core.sql import Queries

Q = Queries("events.sql")


class Events:
    def __init__(self, db: Database, config: Config) -> None:
        self._db = db
        self._config = config

    async def list(
        self,
        *,
        job: int | None = None,
        worker: str | None = None,
        howlong: float | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        cap = self._config.limits.max_page
        count = cap if limit is None else min(limit, cap)

        async def work(conn: Conn) -> list[Event]:
            rows = await conn.fetch(Q["select_events"], job, worker, howlong, count)
            return [msgspec.convert(dict(r.items()), Event) for r in rows]

        return await self._db.read(work)
