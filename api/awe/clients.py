"""`/client`: AWE clients register, heartbeat (both generations) and are listed."""

from typing import Annotated

import msgspec
from litestar import Controller, Request, Response, get, post, route
from litestar.datastructures import State, UploadFile
from litestar.params import PathParameter

from api.access import IdentityDep, access, as_client, as_worker
from api.awe.envelope import Envelope, ok
from api.params import CoreDep
from core.errors import Invalid, NotFound

ClientId = Annotated[str, PathParameter(description="the client's id")]


class WorkState(msgspec.Struct, kw_only=True):
    data: list[str] = msgspec.field(default_factory=list)


class HeartbeatBody(msgspec.Struct, kw_only=True):
    """What 0.9.6x workers (`busy`, `current_work`) and 2.x ones (`healthy`) send."""

    busy: bool = False
    current_work: WorkState | None = None


class ClientsController(Controller):
    path = "/client"

    @post("/", status_code=200, opt=access("worker"))
    async def register(
        self, core: CoreDep, identity: IdentityDep, request: Request[object, object, State]
    ) -> Response[Envelope]:
        """A client's profile (file `profile`); answered with it and the server's UUID. A
        client sending a client group's token (`CG_TOKEN`) joins that group only; one
        sending none joins any group not made through /cgroup."""
        profile: dict[str, object] | None = None
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form()
            part = form.get("profile")
            if isinstance(part, UploadFile):
                try:
                    profile = msgspec.json.decode(await part.read(), type=dict[str, object])
                except msgspec.DecodeError:
                    raise Invalid("Error in registering new client:profile is not JSON") from None
        if profile is None:
            raise Invalid("Error in registering new client:Profile file not provided")
        name = profile.get("id")
        if not isinstance(name, str) or not name or "/" in name:
            raise Invalid("Error in registering new client:the profile has no id")
        group = profile.get("group", "")
        if not isinstance(group, str):
            raise Invalid("Error in registering new client:the profile's group must be a string")
        try:
            await core.client_groups.admit(group, identity.group)
        except Invalid as exc:
            raise Invalid(f"Error in registering new client:{exc.message}") from None
        if identity.role == "worker":
            # a worker token registers only the client of its own name
            as_worker(identity, name)
        # nor does a group's token take over a client registered in another group
        await as_client(core, identity, name)
        host = request.client.host if request.client else ""
        await core.clients.register(name, host, profile)
        server = await core.workflows.server()
        return ok({**profile, "server_uuid": server.uuid})

    @get("/{client_id:str}", opt=access("worker"))
    async def client(
        self, core: CoreDep, client_id: ClientId, request: Request[object, object, State]
    ) -> Response[Envelope]:
        if "heartbeat" in request.query_params:
            return await _heartbeat(core, client_id, [])
        try:
            return ok(await core.clients.profile(client_id))
        except NotFound as exc:
            raise Invalid(exc.message) from None

    @route("/{client_id:str}", http_method=["PUT"], status_code=200, opt=access("worker"))
    async def change(
        self, core: CoreDep, client_id: ClientId, request: Request[object, object, State]
    ) -> Response[Envelope]:
        if "heartbeat" in request.query_params:
            body = await request.body()
            state = (
                msgspec.json.decode(body, type=HeartbeatBody) if body.strip() else HeartbeatBody()
            )
            running = state.current_work.data if state.current_work else []
            return await _heartbeat(core, client_id, running)
        raise Invalid("requested client operation not supported")


async def _heartbeat(core: CoreDep, client_id: str, running: list[str]) -> Response[Envelope]:
    try:
        discard = await core.clients.heartbeat(client_id, running)
    except NotFound as exc:
        raise Invalid(exc.message) from None
    server = await core.workflows.server()
    answer = {"server-uuid": server.uuid}
    if discard:
        answer["discard"] = ",".join(discard)
    return ok(answer)
