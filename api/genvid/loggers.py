"""`/v1/log/defaults` and `/v1/log/allocs`: logger levels, by default and for one
allocation (docs/genvid.md). The levels reach a task through its environment at start and
its worker's loggers file while it runs."""

from typing import Annotated

from litestar import Controller, get, post
from litestar.params import JSONBody, PathParameter

from api.access import access
from api.params import CoreDep
from core.errors import Invalid

Path = Annotated[str, PathParameter()]
# a logger's level in a body: `{"<logger>": "debug"}`, any one-key object, or a string
LevelBody = dict[str, object] | str


def level_in(body: LevelBody, logger: str) -> str:
    """The level a body names for `logger`."""
    value: object
    if isinstance(body, str):
        value = body
    elif logger in body:
        value = body[logger]
    elif len(body) == 1:
        [value] = body.values()
    else:
        raise Invalid(f'the body names no level for logger {logger!r}; send {{"{logger}": "info"}}')
    if not isinstance(value, str):
        raise Invalid(f"the level of logger {logger!r} must be a string")
    return value


class LoggersController(Controller):
    path = "/log"

    @get("/defaults", opt=access("read"))
    async def defaults(self, core: CoreDep) -> dict[str, str]:
        return await core.loggers.defaults()

    @post("/defaults/{logger:str}", status_code=200, opt=access("submit"))
    async def set_default(
        self, core: CoreDep, logger: Path, data: JSONBody[LevelBody]
    ) -> dict[str, str]:
        """Set a logger's default level ("" removes it); the defaults."""
        return await core.loggers.set_default(logger, level_in(data, logger))

    @get("/allocs/{alloc:str}", opt=access("read"))
    async def overrides(self, core: CoreDep, alloc: Path) -> dict[str, str]:
        return await core.loggers.overrides(alloc)

    @post("/allocs/{alloc:str}/{logger:str}", status_code=200, opt=access("submit"))
    async def set_override(
        self, core: CoreDep, alloc: Path, logger: Path, data: JSONBody[LevelBody]
    ) -> dict[str, str]:
        """Set an allocation's level for a logger ("" clears it); its map."""
        return await core.loggers.set_override(alloc, logger, level_in(data, logger))
