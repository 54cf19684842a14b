"""`/cgroup`: client groups and their tokens, for admins (docs/awe.md, "Client groups and
tokens"). A group's token is in the answer that makes it (`POST /cgroup/<name>`, `PUT
/cgroup/<id>/token`) and in no other: elsewhere `token` is "" and `has_token` says
whether the group has one."""

from typing import Annotated, Final

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.datastructures import State
from litestar.params import PathParameter

from api.access import access
from api.awe.envelope import Envelope, PageEnvelope, ok, page
from api.awe.wire import rfc3339
from api.params import CoreDep
from core.client_groups import ClientGroup
from core.errors import Invalid

GroupId = Annotated[str, PathParameter(description="the client group's id, a UUID")]
GroupName = Annotated[str, PathParameter(description="the new group's name")]
# AWE's page size
_LIMIT: Final = 25
# what a listing's query may hold besides the filters
_PAGING: Final = ("limit", "offset", "order", "direction")
_FILTERS: Final = ("name", "id")


class ClientGroupOut(msgspec.Struct, kw_only=True):
    """AWE's ClientGroup (lib/core/clientgroup.go), plus `has_token`: AWE shows the token
    on every read, Corral only when it is made."""

    id: str
    ip_cidr: str = "0.0.0.0/0"
    name: str
    token: str
    created_on: str
    expiration: str
    last_modified: str
    has_token: bool


def group_out(group: ClientGroup) -> ClientGroupOut:
    return ClientGroupOut(
        id=group.id,
        name=group.name,
        token=group.token,
        created_on=rfc3339(group.created_on.timestamp()),
        expiration=rfc3339(group.expiration.timestamp()),
        last_modified=rfc3339(group.last_modified.timestamp()),
        has_token=group.has_token,
    )


def _number(text: str | None, default: int) -> int:
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        # AWE's words (Go's strconv.Atoi)
        raise Invalid(f'strconv.Atoi: parsing "{text}": invalid syntax') from None


def _values(request: Request[object, object, State], key: str) -> list[str] | None:
    """A filter's values: a comma list, the key repeated, or both; None when absent."""
    given = request.query_params.getall(key, [])
    if not given:
        return None
    return [v for text in given for v in text.split(",") if v]


class ClientGroupsController(Controller):
    path = "/cgroup"

    @post("/{name:str}", status_code=200, opt=access("admin"))
    async def create(
        self, core: CoreDep, name: GroupName, request: Request[object, object, State]
    ) -> Response[Envelope]:
        """A new group with a fresh token, shown in this answer only. The request has no
        body: one sent is refused rather than ignored, as it says something not done."""
        if await request.body():
            raise Invalid("POST /cgroup/<name> takes no body: the group is named by the path")
        return ok(group_out(await core.client_groups.create(name)))

    @get("/", opt=access("admin"))
    async def groups(
        self, core: CoreDep, request: Request[object, object, State]
    ) -> Response[PageEnvelope]:
        """A page of groups: `limit`, `offset`, `order` (`name`, `created_on`,
        `expiration`, `last_modified`), `direction`, and `name`, `id` filters."""
        query = request.query_params
        unknown = sorted(set(query) - {*_PAGING, *_FILTERS})
        if unknown:
            raise Invalid(
                f"unknown clientgroup query parameter {unknown[0]!r}: use "
                f"{', '.join(_PAGING + _FILTERS)}"
            )
        # the page holds at most [limits] max_page groups, as every answer does
        limit = min(_number(query.get("limit"), _LIMIT), core.config.limits.max_page)
        offset = _number(query.get("offset"), 0)
        direction = query.get("direction") or "desc"
        if direction not in ("asc", "desc"):
            raise Invalid(f"direction must be asc or desc, not {direction[:64]!r}")
        found = await core.client_groups.page(
            limit,
            offset,
            order=query.get("order") or "last_modified",
            descending=direction == "desc",
            names=_values(request, "name"),
            ids=_values(request, "id"),
        )
        return page([group_out(g) for g in found.groups], limit, offset, found.total)

    @get("/{group_id:str}", opt=access("admin"))
    async def group(self, core: CoreDep, group_id: GroupId) -> Response[Envelope]:
        return ok(group_out(await core.client_groups.get(group_id)))

    @delete("/{group_id:str}", status_code=200, opt=access("admin"))
    async def remove(self, core: CoreDep, group_id: GroupId) -> Response[Envelope]:
        """Remove the group; its token admits nobody from now on."""
        await core.client_groups.delete(group_id)
        return ok(None)

    @put("/{group_id:str}/token", status_code=200, opt=access("admin"))
    async def new_token(self, core: CoreDep, group_id: GroupId) -> Response[Envelope]:
        """A new token, once the old one was deleted; shown in this answer only."""
        return ok(group_out(await core.client_groups.new_token(group_id)))

    @delete("/{group_id:str}/token", status_code=200, opt=access("admin"))
    async def delete_token(self, core: CoreDep, group_id: GroupId) -> Response[Envelope]:
        """Take the token away: its clients are refused from their next call on."""
        return ok(group_out(await core.client_groups.delete_token(group_id)))
