"""Runs: a leaf starting on a worker and ending with an exit code.

Dispatch and the worker protocols call these; each is one transaction.
"""

from typing import Literal

from core.db import Conn, Database
from core.sql import Queries

Q = Queries("runs.sql")
LOGS = Queries("logs.sql")

NextState = Literal["FINISHED", "ERROR", "WAITING"]


class Runs:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def start(self, job_id: int, worker: str) -> int | None:
        """Start `job_id` on `worker`; the new event's id, or None if the job cannot run
        now (not waiting, paused, blocked or a group)."""

        async def work(conn: Conn) -> int | None:
            event: int | None = await conn.fetchval(Q["start_run"], job_id, worker)
            return event

        return await self._db.transact(work)

    async def finish(self, event_id: int, exit_code: int, next_state: NextState) -> int | None:
        """End the run `event_id`; the job id, or None if that run is no longer current
        (it was paused, reset, deleted or its worker stopped meanwhile)."""

        async def work(conn: Conn) -> int | None:
            job: int | None = await conn.fetchval(Q["finish_run"], event_id, exit_code, next_state)
            return job

        return await self._db.transact(work)

    async def append_log(self, job_id: int, data: bytes) -> None:
        async def work(conn: Conn) -> None:
            await conn.execute(LOGS["append"], job_id, data)

        await self._db.transact(work)
