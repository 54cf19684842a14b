"""`/api/workers` and the worker operations of the Coalition API."""

from litestar import Controller, delete, get, post
from litestar.params import JSONBody

from api.params import CoreDep
from core.models import Worker, WorkerEdit


class WorkersController(Controller):
    path = "/"

    @get("/workers", summary="Every worker")
    async def workers(self, core: CoreDep) -> list[Worker]:
        return await core.workers.list()

    @post("/workers", status_code=200, summary='Edit workers: {"<name>": {...}}; answers 1')
    async def edit(self, core: CoreDep, data: JSONBody[dict[str, WorkerEdit]]) -> int:
        await core.workers.edit(data)
        return 1

    @delete("/workers", status_code=200, summary="Remove workers; answers 1")
    async def delete(self, core: CoreDep, data: JSONBody[list[str]]) -> int:
        await core.workers.delete(data)
        return 1

    @post(
        "/stopworkers",
        status_code=200,
        summary="Take workers out of dispatch, their jobs back to the queue; answers 1",
    )
    async def stop(self, core: CoreDep, data: JSONBody[list[str]]) -> int:
        await core.workers.stop(data)
        return 1

    @post("/startworkers", status_code=200, summary="Put workers back in dispatch; answers 1")
    async def start(self, core: CoreDep, data: JSONBody[list[str]]) -> int:
        await core.workers.start(data)
        return 1
