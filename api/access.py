"""Who may call what: API tokens (`Authorization: Bearer <token>`, `Token <token>` as
Scale's clients send it, or HTTP Basic with the token as the password, which a browser
asks its user for) and their roles.

Every route declares its access in its `opt` (`access=...`); one check, the app's
middleware around every route, runs it before the handler:

- `read`: admin and user tokens, and anyone (any token or none) when `[auth]
  public_reads` is on;
- `submit`: user and admin tokens;
- `jobs`: changing or deleting jobs: admin tokens, and user tokens for their own jobs
  (the handler checks ownership with `own_jobs`, unless `[auth] users_change_any`);
- `worker`: the worker protocols: worker tokens as their own worker only, and admins;
- `admin`: admin tokens only.

A route that declares nothing is `read` when it only reads (GET) and `admin` otherwise,
so a new route is closed until it says otherwise. While no token was ever created the
server runs open and every caller is an admin (the server refuses to listen beyond
loopback in that state: see `api.cli`).
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

from core.errors import Forbidden
from core.service import Core
from core.tokens import OPEN, Identity

Access = Literal["read", "submit", "jobs", "worker", "admin"]

_ALLOWED: dict[Access, frozenset[str]] = {
    "read": frozenset({"admin", "user"}),
    "submit": frozenset({"admin", "user"}),
    "jobs": frozenset({"admin", "user"}),
    "worker": frozenset({"admin", "worker"}),
    "admin": frozenset({"admin"}),
}
_WHAT: dict[Access, str] = {
    "read": "read the farm",
    "submit": "submit jobs",
    "jobs": "change jobs",
    "worker": "speak the worker protocol",
    "admin": "do this (admin only)",
}
_HOW = "send Authorization: Bearer <token>; an admin creates one with `corral token create`"
# Bearer for programs; Basic (any user name, the token as password) so that a browser
# asks for the token, as Coalition's web page expects of its server
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="Corral", Basic realm="Corral"'}

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
    identity = await _identify(connection, core)
    connection.state.identity = identity
    level: Access = handler.opt.get("access") or (
        "read" if set(getattr(handler, "http_methods", ())) <= {"GET", "HEAD"} else "admin"
    )
    if level == "read" and core.config.auth.public_reads:
        return
    if identity is None:
        raise NotAuthorizedException(f"this server needs an API token: {_HOW}", headers=_CHALLENGE)
    if identity.role not in _ALLOWED[level]:
        raise PermissionDeniedException(f"a {identity.role} token may not {_WHAT[level]}")
    name = connection.path_params.get("name")
    if level == "worker" and isinstance(name, str):
        as_worker(identity, name)


def as_worker(identity: Identity, worker: str) -> None:
    """A worker token acts only as the worker it was created for."""
    if identity.role == "worker" and identity.name != worker:
        raise Forbidden(f"this worker token belongs to {identity.name!r}, not {worker!r}")


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


async def _identify(
    connection: ASGIConnection[object, object, object, State], core: Core
) -> Identity | None:
    if not await core.tokens.required():
        return OPEN
    header = connection.headers.get("authorization", "")
    if not header:
        return None
    secret = _secret(header)
    if not secret:
        raise NotAuthorizedException(
            f"the Authorization header must be 'Bearer <token>' (or Basic with the token as "
            f"the password); {_HOW}",
            headers=_CHALLENGE,
        )
    identity = await core.tokens.identify(secret)
    if identity is None:
        # never echo what was sent: it may be a real secret pasted in the wrong place
        raise NotAuthorizedException("the token is unknown or revoked", headers=_CHALLENGE)
    return identity


def _secret(header: str) -> str:
    """The token of an Authorization header: `Bearer <token>` (or `Token <token>`), or
    `Basic` with the token as the password (the user name is not looked at); "" when
    there is none."""
    scheme, _, value = header.partition(" ")
    # `Token <key>` is how Scale's clients send theirs
    if scheme.lower() in ("bearer", "token"):
        return value.strip()
    if scheme.lower() != "basic":
        return ""
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[2].strip()
