"""`/api/affinities`: the named affinity slots."""

from litestar import Controller, get, post
from litestar.params import JSONBody

from api.params import CoreDep


class AffinitiesController(Controller):
    path = "/"

    @get("/affinities", summary='The named slots: {"1": "linux", ...}')
    async def slots(self, core: CoreDep) -> dict[str, str]:
        return await core.affinities.slots()

    @post(
        "/affinities",
        status_code=200,
        summary='Name slots: {"1": "linux", "2": ""} ("" clears one); answers 1',
    )
    async def set_slots(self, core: CoreDep, data: JSONBody[dict[str, str]]) -> int:
        await core.affinities.set_slots(data)
        return 1
