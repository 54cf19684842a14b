"""Who may call what: API tokens (`Authorization: Bearer <token>`, `Token <token>` as
Scale's clients send it, `OAuth <token>` as AWE's clients and AWE's worker do, or HTTP
Basic with the token as the password, which a browser asks its user for) and their
roles; and client-group tokens (`Authorization: CG_TOKEN <token>`, sent by AWE's worker),
which make the caller a client of that group (core/client_groups.py).

Every route declares its access in its `opt` (`access=...`); one check, the app's
middleware around every route, runs it before the handler:

- `public`: anyone, token or none (the dashboard's own files, which hold no farm data:
  every API call the page makes is authorized as any other caller's);
- `read`: admin and user tokens, and anyone (any token or none) when `[auth]
  public_reads` is on;
- `submit`: user and admin tokens;
- `jobs`: changing or deleting jobs: admin tokens, and user tokens for their own jobs
  (the handler checks ownership with `own_jobs`, unless `[auth] users_change_any`);
- `worker`: the worker protocols: worker tokens as their own worker only, client-group
  tokens as clients of their group and on AWE's routes only, and admins;
- `data`: AWE's node store, which AWE's worker calls with the job's data token (a user's
  token, as `OAuth`) and users with theirs: every role; reads are open to anyone with
  `[auth] public_reads`, as `read` is;
- `admin`: admin tokens only.

A route that declares nothing is `read` when it only reads (GET) and `admin` otherwise,
so a new route is closed until it says otherwise. While no token was ever created the
server runs open and every caller is an admin (the server refuses to listen beyond
loopback in that state: see `api.cli`). A client-group token is looked at in open mode
too, and refused when unknown: AWE's registration rules need the caller's group, and a
deleted token must stop admitting its clients.
"""

import base64
import binascii
from typing import Literal

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send

from core.errors import Forbidden, NotFound
from core.service import Core
from core.tokens import OPEN, Identity

Access = Literal["public", "read", "submit", "jobs", "worker", "data", "admin"]

_ALLOWED: dict[Access, frozenset[str]] = {
    "public": frozenset({"admin", "user", "worker", "cgroup"}),
    "read": frozenset({"admin", "user"}),
    "submit": frozenset({"admin", "user"}),
    "jobs": frozenset({"admin", "user"}),
    "worker": frozenset({"admin", "worker", "cgroup"}),
    "data": frozenset({"admin", "user", "worker", "cgroup"}),
    "admin": frozenset({"admin"}),
}
_WHAT: dict[Access, str] = {
    "public": "load this",
    "read": "read the farm",
    "submit": "submit jobs",
    "jobs": "change jobs",
    "worker": "speak the worker protocol",
    "data": "use the node store",
    "admin": "do this (admin only)",
}
_HOW = (
    "send Authorization: Bearer <token> (or OAuth <token>); an admin creates one with "
    "`corral token create`; AWE workers send CG_TOKEN <their client group's token>"
)
# Bearer for programs; Basic (any user name, the token as password) so that a browser
# asks for the token, as Coalition's web page expects of its server
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="Corral", Basic realm="Corral"'}

_READS = frozenset({"GET", "HEAD"})

# the caller, injected by name into the handlers that need it
IdentityDep = NamedDependency[Identity]


def access(level: Access) -> dict[str, object]:
    """A route's `opt`: `@post(..., opt=access("submit"))`."""
    return {"access": level}


def authorizing(app: ASGIApp) -> ASGIApp:
    """`authorize` before every route. Middleware rather than a guard: Litestar copies the
    route handler for each guard call, a tenth of the server's time per heartbeat."""

    async def check(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            await authorize(ASGIConnection(scope, receive, send), scope["route_handler"])
        await app(scope, receive, send)

    return check


async def authorize(
    connection: ASGIConnection[object, object, object, State], handler: BaseRouteHandler
) -> None:
    """Identify the caller and check the route's access level."""
    core: Core = connection.app.state.core
    if connection.scope.get("method") == "OPTIONS" or handler.opt.get("access") == "public":
        # a browser's CORS preflight never carries credentials, and neither it nor a
        # public route (the dashboard's own files: with tokens, the page must load before
        # it can ask its user for one) tells anything of the farm
        connection.state.identity = None
        return
    identity = await _identify(connection.headers.get("authorization", ""), core)
    connection.state.identity = identity
    level: Access = handler.opt.get("access") or (
        "read" if set(getattr(handler, "http_methods", ())) <= {"GET", "HEAD"} else "admin"
    )
    reading = level == "read" or (level == "data" and connection.scope.get("method") in _READS)
    if reading and core.config.auth.public_reads:
        return
    if identity is None:
        raise NotAuthorizedException(f"this server needs an API token: {_HOW}", headers=_CHALLENGE)
    if identity.role not in _ALLOWED[level]:
        what = "client group" if identity.role == "cgroup" else identity.role
        raise PermissionDeniedException(f"a {what} token may not {_WHAT[level]}")
    if level != "worker":
        return
    name = connection.path_params.get("name")
    if isinstance(name, str):
        as_worker(identity, name)
    if identity.role == "cgroup":
        # AWE's routes name the client as a path parameter or as `?client=`
        client = connection.path_params.get("client_id") or connection.query_params.get("client")
        if isinstance(client, str) and client:
            await as_client(core, identity, client)


def as_worker(identity: Identity, worker: str) -> None:
    """A worker token acts only as the worker it was created for; a client group's token
    speaks only AWE's protocol, where clients are not Corral's own workers."""
    if identity.role == "worker" and identity.name != worker:
        raise Forbidden(f"this worker token belongs to {identity.name!r}, not {worker!r}")
    if identity.role == "cgroup":
        raise Forbidden(
            f"a client group token (of {identity.name!r}) speaks only AWE's worker protocol, "
            f"under /awe; worker {worker!r} needs a worker token"
        )


async def as_client(core: Core, identity: Identity, client: str) -> None:
    """A client group's token acts only for the AWE clients registered in its group (an
    unknown client is left to the route, which answers AWE's `Client not found`)."""
    if identity.role != "cgroup":
        return
    try:
        profile = await core.clients.profile(client)
    except NotFound:
        return
    group = profile.get("group", "")
    if group != identity.group:
        raise Forbidden(
            f"this client group token belongs to {identity.group!r}; client {client} is "
            f"registered in {group!r}"
        )


async def own_jobs(core: Core, identity: Identity, ids: list[int]) -> None:
    """A user token changes only its own jobs (unless the config says otherwise)."""
    if identity.role != "user" or core.config.auth.users_change_any or not ids:
        return
    foreign = await core.jobs.foreign(ids, identity.name)
    if foreign:
        shown = ", ".join(str(i) for i in foreign[:10]) + (", ..." if len(foreign) > 10 else "")
        raise Forbidden(
            f"job(s) {shown} belong to other users; a user token changes only its own jobs"
        )


def submitted_as(identity: Identity, user: str) -> str:
    """The `user` a new job gets: a user token submits as itself (an empty `user` becomes
    its name; another name is refused)."""
    if identity.role != "user":
        return user
    if user and user != identity.name:
        raise Forbidden(f"a user token submits as its own name {identity.name!r}, not {user!r}")
    return identity.name


def identity_of(request: Request[object, object, State]) -> Identity:
    """The caller `authorize` identified (anonymous reads: an empty user name)."""
    found = getattr(request.state, "identity", None)
    return found if isinstance(found, Identity) else Identity(name="", role="user")


async def works_as(core: Core, authorization: str, worker: str) -> bool:
    """Whether a caller sending `authorization` passes `authorize` on a `worker` route
    naming `worker` (api/hot.py asks it; every other caller is left to the route, whose
    refusal says why)."""
    try:
        identity = await _identify(authorization, core)
    except NotAuthorizedException:
        return False
    if identity is None or identity.role not in _ALLOWED["worker"]:
        return False
    try:
        as_worker(identity, worker)
    except Forbidden:
        return False
    return True


async def _identify(header: str, core: Core) -> Identity | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "cg_token":
        return await _client_group(core, value.strip())
    if not await core.tokens.required():
        return OPEN
    if not header:
        return None
    secret = _secret(header)
    if not secret:
        raise NotAuthorizedException(
            f"the Authorization header must be 'Bearer <token>' (or OAuth, or Basic with the "
            f"token as the password); {_HOW}",
            headers=_CHALLENGE,
        )
    identity = await core.tokens.identify(secret)
    if identity is None:
        # never echo what was sent: it may be a real secret pasted in the wrong place
        raise NotAuthorizedException("the token is unknown or revoked", headers=_CHALLENGE)
    return identity


async def _client_group(core: Core, secret: str) -> Identity:
    """The caller a client group's token makes: in open mode an admin still (as every
    caller is), who belongs to the group; otherwise a client of the group, no more."""
    if not secret:
        raise NotAuthorizedException(
            "the Authorization header CG_TOKEN needs the client group's token",
            headers=_CHALLENGE,
        )
    group = await core.client_groups.identify(secret)
    if group is None:
        raise NotAuthorizedException(
            "the client group token is unknown, deleted or expired", headers=_CHALLENGE
        )
    if not await core.tokens.required():
        return Identity(name=OPEN.name, role=OPEN.role, group=group)
    return Identity(name=group, role="cgroup", group=group)


def api_token(request: Request[object, object, State]) -> str:
    """The API token the caller was identified by; "" in open mode (no token is needed
    there) and for anonymous or client-group callers."""
    identity = identity_of(request)
    if identity == OPEN or identity.role == "cgroup":
        return ""
    return _secret(request.headers.get("authorization", ""))


def _secret(header: str) -> str:
    """The token of an Authorization header: `Bearer <token>` (or `Token <token>`, or
    `OAuth <token>`), or `Basic` with the token as the password (the user name is not
    looked at); "" when there is none."""
    scheme, _, value = header.partition(" ")
    # `Token <key>` is how Scale's clients send theirs, `OAuth <token>` AWE's clients and
    # AWE's worker (the job's data token, on the node store's routes)
    if scheme.lower() in ("bearer", "token", "oauth"):
        return value.strip()
    if scheme.lower() != "basic":
        return ""
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[2].strip()
