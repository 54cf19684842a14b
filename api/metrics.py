"""`GET /metrics`: Corral's figures in the Prometheus text format (docs/operations.md), and
the middleware that counts HTTP requests by route and status."""

from litestar import Response, get
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api.access import access
from api.params import CoreDep
from core import metrics
from core.errors import CorralError

# the classic text format every Prometheus reads (Litestar adds the charset)
_TEXT_FORMAT = "text/plain; version=0.0.4"


@get("/metrics", opt=access("read"))
async def scrape(core: CoreDep) -> Response[bytes]:
    """This process's counters and histograms, and the farm's jobs and workers by state."""
    farm = await metrics.farm(core.db)
    return Response(metrics.exposition(farm), media_type=_TEXT_FORMAT)


def counting(app: ASGIApp) -> ASGIApp:
    """Count every routed request once its status is known, by its route's path template
    (not its path: ids would make a series per job)."""

    async def count(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        method = scope["method"]
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, sending)
        except HTTPException as exc:
            # refused by a middleware (authorization): the app's handler answers it
            status = exc.status_code
            raise
        except CorralError as exc:
            status = exc.status
            raise
        except Exception:
            status = 500
            raise
        finally:
            route = scope.get("path_template") or scope["path"]
            metrics.http_request(method, route, status)

    return count
