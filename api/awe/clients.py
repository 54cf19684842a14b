"""`/client`: AWE clients register, heartbeat (both generations), are listed, suspended
and resumed."""

from typing import Annotated

import msgspec
from litestar import Controller, Request, Response, delete, get, post, route
from litestar.datastructures import State, UploadFile
from litestar.params import PathParameter

from api.access import IdentityDep, access, as_client, as_worker, identity_of
from api.awe.envelope import Envelope, ok
from api.awe.wire import rfc3339
from api.params import CoreDep
from core.clients import Client
from core.errors import Forbidden, Invalid, NotFound

ClientId = Annotated[str, PathParameter(description="the client's id")]


class WorkState(msgspec.Struct, kw_only=True):
    data: list[str] = msgspec.field(default_factory=list)


class HeartbeatBody(msgspec.Struct, kw_only=True):
    """What 0.9.6x workers (`busy`, `current_work`) and 2.x ones (`healthy`) send."""

    busy: bool = False
    current_work: WorkState | None = None


class WorkList(msgspec.Struct, kw_only=True):
    data: list[str]


class ClientOut(msgspec.Struct, kw_only=True, rename={"status": "Status"}):
    """A client as AWE 0.9 shows one: its registered profile's fields, then its state."""

    id: str
    name: str
    group: str
    user: str
    domain: str
    instance_id: str
    instance_type: str
    hostname: str
    host_ip: str
    cores: int
    apps: list[str]
    git_commit_hash: str
    version: str
    busy: bool
    current_work: WorkList
    regtime: str
    lastcompleted: str
    serve_time: str
    total_checkout: int
    total_completed: int
    total_failed: int
    skip_work: list[str]
    proxy: bool
    subclients: int
    online: bool
    suspended: bool
    suspend_reason: str
    status: str
    assigned_work: WorkList


def _text(profile: dict[str, object], key: str) -> str:
    value = profile.get(key)
    return value if isinstance(value, str) else ""


def client_out(client: Client) -> ClientOut:
    profile = client.profile
    cores = profile.get("cores")
    apps = profile.get("apps")
    return ClientOut(
        id=client.name,
        name=_text(profile, "name"),
        group=_text(profile, "group"),
        user=_text(profile, "user"),
        domain=_text(profile, "domain"),
        instance_id=_text(profile, "instance_id"),
        instance_type=_text(profile, "instance_type"),
        hostname=_text(profile, "hostname"),
        host_ip=_text(profile, "host_ip"),
        cores=cores if isinstance(cores, int) else 0,
        apps=[a for a in apps if isinstance(a, str)] if isinstance(apps, list) else [],
        git_commit_hash=_text(profile, "git_commit_hash"),
        version=_text(profile, "version"),
        busy=bool(client.running),
        current_work=WorkList(data=client.running),
        regtime=rfc3339(client.registered),
        lastcompleted=rfc3339(None),
        serve_time="0",
        total_checkout=client.checkouts,
        total_completed=client.completed,
        total_failed=client.failed,
        skip_work=client.skip,
        proxy=False,
        subclients=0,
        online=not client.lost,
        suspended=client.suspended,
        suspend_reason=client.suspend_reason,
        status=client.status,
        assigned_work=WorkList(data=client.running),
    )


def _listed(client: Client, query: dict[str, str]) -> bool:
    """Whether the client passes the list's filters (AWE takes the first one given)."""
    if client.lost:
        return False
    if "busy" in query:
        return bool(client.running)
    if "group" in query:
        return _text(client.profile, "group") == query["group"]
    if "status" in query:
        wanted = query["status"]
        return wanted in (client.status, client.status.rpartition("-")[2])
    if "app" in query:
        apps = client.profile.get("apps")
        return isinstance(apps, list) and query["app"] in apps
    return True


class ClientsController(Controller):
    path = "/client"

    @get("/", opt=access("read"))
    async def clients(
        self, core: CoreDep, request: Request[object, object, State]
    ) -> Response[Envelope]:
        """The clients not lost; `?busy`, `?group=`, `?status=` or `?app=` filter them."""
        query = dict(request.query_params)
        found = await core.clients.clients()
        return ok([client_out(c) for c in found if _listed(c, query)])

    @route("/", http_method=["PUT"], status_code=200, opt=access("admin"))
    async def change_all(
        self, core: CoreDep, request: Request[object, object, State]
    ) -> Response[Envelope]:
        """`?suspendall` or `?resumeall`."""
        query = request.query_params
        if "suspendall" in query:
            n = await core.clients.suspend(None, "suspended by admin")
            return ok(f"{n} clients suspended")
        if "resumeall" in query:
            n = await core.clients.resume(None)
            return ok(f"{n} suspended clients resumed")
        raise Invalid("requested client operation not supported")

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
            return ok(client_out(await core.clients.client(client_id)))
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
        if identity_of(request).role != "admin" and (
            "suspend" in request.query_params or "resume" in request.query_params
        ):
            raise Forbidden("only an admin suspends or resumes a client")
        try:
            if "suspend" in request.query_params:
                await core.clients.suspend([client_id], "suspended by admin")
                return ok("client suspended")
            if "resume" in request.query_params:
                await core.clients.resume([client_id])
                return ok("client resumed")
        except NotFound as exc:
            raise Invalid(exc.message) from None
        raise Invalid("requested client operation not supported")

    @delete("/{client_id:str}", status_code=200, opt=access("admin"))
    async def remove(self, client_id: ClientId) -> Response[Envelope]:
        raise Invalid("this functionality has been removed from AWE")


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
