"""Every error leaves as JSON in the shape of the face it came through: by default
`{"status_code": ..., "detail": ...}`, as Litestar's own do; a face whose clients expect
another shape registers it for its path prefixes (`shape_errors`)."""

import logging
from collections.abc import Callable

import msgspec
from litestar import Request, Response, Router
from litestar.datastructures import State
from litestar.exceptions import HTTPException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ExceptionHandlersMap

from core.db import UNAVAILABLE
from core.errors import CorralError

log = logging.getLogger("corral.api")


# The body of an error: from the request, its status and what was wrong (and the
# `extra` of a validation error, naming the field, when there is one).
ErrorShape = Callable[[Request[object, object, State], int, str, object], dict[str, object]]


def _corral_shape(
    request: Request[object, object, State], status: int, detail: str, extra: object
) -> dict[str, object]:
    return {"status_code": status, "detail": detail, **({"extra": extra} if extra else {})}


# path prefix -> the shape of the errors answered under it
_SHAPES: dict[str, ErrorShape] = {}


def shape_errors(prefixes: tuple[str, ...], shape: ErrorShape) -> None:
    """Answer the errors of requests under `prefixes` in `shape`."""
    for prefix in prefixes:
        _SHAPES[prefix] = shape


def _error(
    request: Request[object, object, State],
    status: int,
    detail: str,
    extra: object = None,
    headers: dict[str, str] | None = None,
) -> Response[object]:
    path = request.url.path
    shape = next((s for p, s in _SHAPES.items() if path.startswith(p)), _corral_shape)
    return Response(shape(request, status, detail, extra), status_code=status, headers=headers)


def _corral_error(request: Request[object, object, State], exc: CorralError) -> Response[object]:
    return _error(request, exc.status, exc.message)


def _unexpected(request: Request[object, object, State], exc: Exception) -> Response[object]:
    if isinstance(exc, ValidationException):
        return _error(request, 400, _describe(exc), exc.extra)
    if isinstance(exc, HTTPException):
        return _error(request, exc.status_code, exc.detail, exc.extra, exc.headers)

    status, detail, headers = failure(exc, request.method, request.url.path)
    return _error(request, status, detail, headers=headers)


def failure(exc: Exception, method: str, path: str) -> tuple[int, str, dict[str, str] | None]:
    """The status, detail and headers of an answer to `exc` (one of Corral's errors, the
    database gone, or a bug), logged as the operator needs it."""
    if isinstance(exc, CorralError):
        return exc.status, exc.message, None
    if isinstance(exc, UNAVAILABLE):
        log.warning("database unavailable on %s %s: %s", method, path, exc)
        return 503, "the database is unavailable; try again shortly", {"Retry-After": "1"}
    # a bug: say so without leaking internals, keep the trace for the operator
    log.exception("internal error on %s %s", method, path)
    return 500, "internal server error", None


def _describe(exc: ValidationException) -> str:
    """Say which parameter was wrong and how, not only that something was."""
    problems: list[str] = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            key, message = item.get("key"), item.get("message", "")
            if key == "data" and message == "'data'":
                # what Litestar says when a handler's body is missing altogether
                message = "a JSON request body is required"
            problems.append(f"{key}: {message}" if key and key != "data" else str(message))
    return "; ".join(problems) or str(exc.detail)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    CorralError: _corral_error,
    Exception: _unexpected,
}


class ErrorBody(msgspec.Struct):
    """What every refusal carries: the status again and what was wrong."""

    status_code: int
    detail: str


_ERRORS = {
    400: "the request is malformed or not acceptable; `detail` says why",
    401: "no token, or an unknown or revoked one (once the server has tokens)",
    403: "the token's role, the job's owner or the command policy forbids it",
    404: "a job, worker or token named by the request does not exist",
    503: "the database is unavailable; try again (Retry-After)",
}


def document_errors(routers: list[Router], body: type[msgspec.Struct] = ErrorBody) -> None:
    """List the refusals every route may answer in the OpenAPI schema, with the `body`
    of the face's errors, so clients (and the schema fuzzing) know their shape."""
    for router in routers:
        for route in router.routes:
            for handler in getattr(route, "route_handlers", ()):
                if isinstance(handler, HTTPRouteHandler):
                    extra = {
                        status: ResponseSpec(
                            data_container=body, description=text, generate_examples=False
                        )
                        for status, text in _ERRORS.items()
                    }
                    handler.responses = {**extra, **(handler.responses or {})}
