"""Corral's own page, the dashboard: served at `/`, its files under `/dashboard/`.

No build step: the page is ES modules (static/*.js) that import Preact, htm, uPlot and an
EventSource able to send a token from static/vendor, where `make install` copies them
from the npm packages of package.json (vendor.mjs); the Python package ships the folder.
Swagger UI's files are there too, for the OpenAPI viewer at /schema (api/openapi.py).
See docs/dashboard.md and docs/architecture.md.
"""

import base64
import hashlib
import re
from pathlib import Path
from typing import Final

from litestar import Response, Router, get
from litestar.static_files import create_static_files_router

from api.access import access

STATIC: Final = Path(__file__).parent / "static"
_IMPORT_MAP = re.compile(rb'<script type="importmap">(.*?)</script>', re.DOTALL)


def _headers() -> dict[str, str]:
    """The page's scripts come from this origin only (and its one inline script, the import
    map naming the libraries, by its hash), and nothing of another origin may frame it: a
    job title holding markup could not run script even if the page failed to escape it."""
    page = (STATIC / "index.html").read_bytes()
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(m).digest()).decode()}'"
        for m in _IMPORT_MAP.findall(page)
    )
    return {
        "Content-Security-Policy": (
            f"default-src 'self'; script-src 'self' {hashes}; img-src 'self' data:; "
            "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; "
            "form-action 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


@get("/", include_in_schema=False, opt=access("public"), media_type="text/html")
async def index() -> Response[bytes]:
    if not (STATIC / "vendor").is_dir():
        # a source tree where `make install` has not run: say so rather than serve a page
        # that cannot load its libraries
        return Response(
            b"Corral's page needs its libraries: run `make install` (npm ci) first.\n",
            status_code=503,
            media_type="text/plain",
        )
    return Response((STATIC / "index.html").read_bytes(), headers=_headers())


def dashboard_routers() -> list[Router]:
    return [
        Router("/", route_handlers=[index], include_in_schema=False),
        create_static_files_router(
            path="/dashboard",
            directories=[STATIC],
            name="dashboard",
            opt=access("public"),
            include_in_schema=False,
        ),
    ]
