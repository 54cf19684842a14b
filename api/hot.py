"""The worker protocols' hot routes, answered before the Litestar app is reached.

A farm's requests are mostly its workers' picks and heartbeats. Through Litestar each one
costs about 0.3 ms of the server's CPU, two thirds of it the framework's per-request
machinery (the request object, the handler's signature model, the response object);
answered here, from the ASGI scope and the raw body, about 0.13 ms (docs/bench-profile.md).

A hot route answers only the requests it is sure of: its method and path, a body that
decodes into its Struct, a caller that `authorize` would let through as the worker it
acts for. Every other request, a malformed or refused one included, goes on to the
Litestar route of the same path with its body as it came, so that route stays what the
OpenAPI schema documents and what answers refusals in the face's own words. Both call
the same function for the answer. What the Litestar app does around every request is
done here too: the request is counted by its route's template (api/metrics.py) and an
error raised while answering leaves in Corral's error shape (api/errors.py).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import msgspec
from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import (
    HTTPRequestEvent,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    HTTPScope,
    Receive,
    ReceiveMessage,
    Scope,
    Send,
)

from api.access import works_as
from api.errors import failure
from core import metrics
from core.service import Core

# the longest worker name a path names, as the routes' WorkerName allows
_NAME_LENGTH = 255


class HotCall(Protocol):
    """A request a hot route decoded, ready to answer."""

    @property
    def worker(self) -> str:
        """The worker the call acts as: the caller must be authorized as it."""

    async def answer(self, core: Core) -> bytes:
        """The answer's body; an error raised leaves as Corral's error answer."""


@dataclass(frozen=True)
class HotRequest:
    """What a hot route reads of a request."""

    # the path's `{name}` ("" for a route without one)
    name: str
    body: bytes
    query_string: bytes
    content_type: str
    # the caller's address
    client: str


@dataclass(frozen=True)
class HotRoute:
    """`method` on `template`, a path with at most one `{name}` segment (and the route's
    label in the request metrics, as Litestar's path template names it). `decode` turns
    a request into the call, None when it cannot."""

    method: str
    template: str
    decode: Callable[[HotRequest], HotCall | None]
    media_type: bytes = b"application/json"

    def name_in(self, path: str) -> str | None:
        """The `{name}` of `path` ("" for a template without one); None if `path` is not
        this route's."""
        prefix, marker, suffix = self.template.partition("{name}")
        if not marker:
            return "" if path == prefix else None
        if not (path.startswith(prefix) and path.endswith(suffix)):
            return None
        name = path[len(prefix) : len(path) - len(suffix)]
        if not name or "/" in name or len(name) > _NAME_LENGTH:
            return None
        return name


class HotRoutes:
    """An ASGI app: `routes` answered here, everything else by `app`."""

    def __init__(self, app: Litestar, routes: Sequence[HotRoute], max_body: int) -> None:
        self.app = app
        self._routes = routes
        self._max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            for route in self._routes:
                if scope["method"] == route.method:
                    name = route.name_in(scope["path"])
                    if name is not None:
                        await self._serve(route, name, scope, receive, send)
                        return
        await self.app(scope, receive, send)

    async def _serve(
        self, route: HotRoute, name: str, scope: HTTPScope, receive: Receive, send: Send
    ) -> None:
        read, final = await _body(receive, self._max_body)
        body = b"".join(read)
        if not final or len(body) > self._max_body:
            # too large (the app refuses it), or the client went away
            await self.app(scope, _replaying(read, receive, final=final), send)
            return
        client = scope.get("client")
        request = HotRequest(
            name=name,
            body=body,
            query_string=scope["query_string"],
            content_type=_header(scope, b"content-type"),
            client=client[0] if client else "",
        )
        call = route.decode(request)
        core: Core = self.app.state.core
        if call is None or not await _allowed(core, _header(scope, b"authorization"), call):
            await self.app(scope, _replaying([body], receive, final=True), send)
            return
        status, media_type = 200, route.media_type
        try:
            answer = await call.answer(core)
        except Exception as exc:  # every failure leaves as an answer, as in the app
            status, detail, headers = failure(exc, route.method, scope["path"])
            answer = msgspec.json.encode({"status_code": status, "detail": detail})
            media_type = b"application/json"
            extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        else:
            extra = []
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", media_type),
                (b"content-length", b"%d" % len(answer)),
                *extra,
            ],
        }
        await send(start)
        whole: HTTPResponseBodyEvent = {
            "type": "http.response.body",
            "body": answer,
            "more_body": False,
        }
        await send(whole)
        metrics.http_request(route.method, route.template, status)


async def _allowed(core: Core, authorization: str, call: HotCall) -> bool:
    """Whether the caller may make `call`; not when that cannot be told (the database
    gone), which the app then answers as it answers any request."""
    try:
        return await works_as(core, authorization, call.worker)
    except Exception:  # the app's route meets it again and answers it in its words
        return False


def _header(scope: HTTPScope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return ""


async def _body(receive: Receive, limit: int) -> tuple[list[bytes], bool]:
    """The body's chunks read, up to the first past `limit` bytes in all, and whether
    they end it (not when the client went away first)."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        message = await receive()
        if message["type"] != "http.request":
            return chunks, False
        chunk: bytes = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return chunks, True
    return chunks, False


def _replaying(read: list[bytes], receive: Receive, *, final: bool) -> Receive:
    """`receive`, with the chunks already `read` given again first (`final`: they are
    the whole body)."""
    given = 0

    async def again() -> ReceiveMessage:
        nonlocal given
        if given == len(read):
            return await receive()
        given += 1
        more = given < len(read) or not final
        chunk: HTTPRequestEvent = {
            "type": "http.request",
            "body": read[given - 1],
            "more_body": more,
        }
        return chunk

    return again
