"""Service jobs through the native API: definitions (as in the config file's
`[genvid.jobs]`), start, stop, counts and allocations (docs/services.md)."""

from typing import Annotated

import msgspec
from litestar import Controller, get, post, put
from litestar.params import JSONBody, PathParameter

from api.access import access
from api.params import CoreDep
from core.config import Count, Name
from core.services import (
    Allocation,
    GroupDefinition,
    Listing,
    ServiceDefinition,
    ServiceStatus,
)

ServiceName = Annotated[str, PathParameter(description="the service's name")]
GroupName = Annotated[str, PathParameter(description="a task group's name")]


class GroupIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # run through /bin/sh -c by corral worker
    command: Annotated[str, msgspec.Meta(min_length=1)]
    count_init: Count = 1
    count_max: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 1
    # ids of stored secrets whose names and values join each run's environment
    secrets: list[str] = msgspec.field(default_factory=list)
    affinity: str = ""


class ServiceIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name
    autostart: bool = False
    groups: Annotated[dict[Name, GroupIn], msgspec.Meta(min_length=1)]


class CountIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    count: Count


class ServicesController(Controller):
    path = "/services"

    @get("/", summary="Every service with its groups' counts and summaries")
    async def services(self, core: CoreDep) -> Listing:
        return await core.services.listing()

    @put(
        "/",
        summary="Define a service, or change one (its later allocations run the change)",
        opt=access("admin"),
    )
    async def define(self, core: CoreDep, data: JSONBody[ServiceIn]) -> ServiceStatus:
        return await core.services.define(
            ServiceDefinition(
                name=data.name,
                autostart=data.autostart,
                groups=[
                    GroupDefinition(name=name, **msgspec.structs.asdict(group))
                    for name, group in sorted(data.groups.items())
                ],
            )
        )

    @get("/{name:str}", summary="One service")
    async def service(self, core: CoreDep, name: ServiceName) -> ServiceStatus:
        return await core.services.status(name)

    @post("/{name:str}/start", status_code=200, opt=access("submit"))
    async def start(self, core: CoreDep, name: ServiceName) -> ServiceStatus:
        """Start a stopped service, every group at its initial count."""
        return await core.services.start(name)

    @post("/{name:str}/stop", status_code=200, opt=access("submit"))
    async def stop(self, core: CoreDep, name: ServiceName) -> ServiceStatus:
        return await core.services.stop(name)

    @post("/{name:str}/groups/{group:str}/count", status_code=200, opt=access("submit"))
    async def count(
        self, core: CoreDep, name: ServiceName, group: GroupName, data: JSONBody[CountIn]
    ) -> ServiceStatus:
        """Set a group's desired count, within [0, count_max]."""
        return await core.services.scale(name, group, count=data.count)

    @get("/{name:str}/groups/{group:str}/allocations")
    async def allocations(
        self,
        core: CoreDep,
        name: ServiceName,
        group: GroupName,
    ) -> list[Allocation]:
        """The group's allocations, newest first, the last ended ones included."""
        return await core.services.allocations(name, group)
