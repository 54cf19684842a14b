"""AWE's answers: every JSON answer in its envelope, `{"status", "data", "error"}`, with
`status` equal to the HTTP status, and the CORS headers AWE's web clients rely on."""

from typing import Final

import msgspec
from litestar import Request, Response
from litestar.datastructures import State

HEADERS: Final = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET, PUT, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Datatoken",
}


class Envelope(msgspec.Struct, kw_only=True):
    status: int
    data: object
    error: list[str] | None


class AweError(msgspec.Struct, kw_only=True):
    """Every refusal of the AWE face: the status again, no data, the message."""

    status: int
    data: None
    error: list[str]


class PageEnvelope(msgspec.Struct, kw_only=True):
    status: int
    data: object
    error: list[str] | None
    limit: int
    offset: int
    total_count: int


def ok(data: object, headers: dict[str, str] | None = None) -> Response[Envelope]:
    return Response(
        Envelope(status=200, data=data, error=None),
        status_code=200,
        headers={**HEADERS, **(headers or {})},
    )


def page(data: object, limit: int, offset: int, total: int) -> Response[PageEnvelope]:
    return Response(
        PageEnvelope(status=200, data=data, error=None, limit=limit, offset=offset,
                     total_count=total),
        status_code=200,
        headers=HEADERS,
    )  # fmt: skip


def error_body(
    request: Request[object, object, State], status: int, detail: str, extra: object
) -> dict[str, object]:
    """Refusals under /awe: the message alone, as AWE's workers compare it, and the
    status the answer has (a method a route does not serve is 405 where AWE answers 501:
    Corral keeps 5xx for its own faults)."""
    return {"status": status, "data": None, "error": [detail]}
