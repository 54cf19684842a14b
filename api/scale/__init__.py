"""The Scale face: Scale's v6 REST API for job types and their jobs, at `/v6/` and at
`/api/v6/`, where Scale deployments serve it (docs/scale.md)."""

import msgspec
from litestar import Request, Router
from litestar.datastructures import State
from litestar.response import Redirect

from api.errors import shape_errors
from api.scale.body import ScaleRequest
from api.scale.job_types import JobTypesController
from api.scale.jobs import JobsController
from api.scale.statistics import StatisticsController

__all__ = ["ScaleError", "scale_routers"]

PREFIXES = ("/v6", "/api/v6")


class ScaleError(msgspec.Struct):
    """Every refusal of the Scale face: what was wrong, and nothing else."""

    detail: str


def scale_routers() -> list[Router]:
    shape_errors(tuple(f"{p}/" for p in PREFIXES) + PREFIXES, _error_body)
    return [
        Router(
            path=prefix,
            route_handlers=[JobTypesController, StatisticsController, JobsController],
            request_class=ScaleRequest,
            before_request=_slashed,
            tags=["scale"],
            include_in_schema=prefix == "/v6",
        )
        for prefix in PREFIXES
    ]


def _error_body(
    request: Request[object, object, State], status: int, detail: str, extra: object
) -> dict[str, object]:
    """Scale's refusals are `{"detail": ...}` and nothing else, with Django REST
    framework's words for a missing object and a missing method."""
    if status == 404 and not detail.endswith("."):
        detail = "Not found."
    elif status == 405:
        detail = f'Method "{request.method}" not allowed.'
    return {"detail": detail}


async def _slashed(request: Request[object, object, State]) -> Redirect | None:
    """A GET without its trailing slash is sent to the slashed URL, as Scale does."""
    raw: bytes = request.scope.get("raw_path", b"")
    if request.method != "GET" or raw.endswith(b"/"):
        return None
    query = request.scope.get("query_string", b"")
    target = raw.decode("latin-1") + "/" + (f"?{query.decode('latin-1')}" if query else "")
    return Redirect(target, status_code=301)
