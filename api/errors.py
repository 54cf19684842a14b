"""Every error leaves as JSON: `{"status_code": ..., "detail": ...}`, as Litestar's own do."""

import logging

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


def _corral_error(request: Request[object, object, State], exc: CorralError) -> Response[object]:
    return Response({"status_code": exc.status, "detail": exc.message}, status_code=exc.status)


def _unexpected(request: Request[object, object, State], exc: Exception) -> Response[object]:
    if isinstance(exc, ValidationException):
        return Response(
            {"status_code": 400, "detail": _describe(exc), **_extra(exc)}, status_code=400
        )
    if isinstance(exc, HTTPException):
        return Response(
            {"status_code": exc.status_code, "detail": exc.detail, **_extra(exc)},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    if isinstance(exc, UNAVAILABLE):
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        return Response(
            {"status_code": 503, "detail": "the database is unavailable; try again shortly"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    # a bug: say so without leaking internals, keep the trace for the operator
    log.exception("internal error on %s %s", request.method, request.url.path)
    return Response({"status_code": 500, "detail": "internal server error"}, status_code=500)


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


def _extra(exc: HTTPException) -> dict[str, object]:
    return {"extra": exc.extra} if exc.extra else {}


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


def document_errors(routers: list[Router]) -> None:
    """List the refusals every route may answer in the OpenAPI schema, so clients (and
    the schema fuzzing) know their shape."""
    for router in routers:
        for route in router.routes:
            for handler in getattr(route, "route_handlers", ()):
                if isinstance(handler, HTTPRouteHandler):
                    extra = {
                        status: ResponseSpec(
                            data_container=ErrorBody, description=text, generate_examples=False
                        )
                        for status, text in _ERRORS.items()
                    }
                    handler.responses = {**extra, **(handler.responses or {})}
