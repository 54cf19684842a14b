"""The OpenAPI schema and its viewer, under `/schema`: Swagger UI at `/schema` and
`/schema/swagger`, the schema itself at `/schema/openapi.json` (and `.yaml`, `.yml`).

Litestar's viewers load their scripts, styles, fonts and icon from CDNs by default, which
a studio network without internet never reaches; here Swagger UI's files are those that
`make install` copies from the npm package swagger-ui-dist into the page's vendor folder
(api/dashboard/vendor.mjs), served by this server at `/dashboard/vendor/`. The other
viewers Litestar knows (ReDoc, RapiDoc, Stoplight Elements, Scalar) are not offered: their
paths answer 404 rather than a page that reaches out to a CDN. See docs/architecture.md.

The routes keep the access of any route that declares none (`read`, api/access.py); the
files they load are the page's, which are public.
"""

from litestar import Router
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin, YamlRenderPlugin

PATH = "/schema"
VENDOR = "/dashboard/vendor"

# Litestar's page starts Swagger UI with an inline script holding the whole schema, so
# inline scripts must run; everything a viewer loads or calls is of this origin, which the
# browser then enforces should a newer Litestar's page name a CDN again
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; "
        "base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def openapi_config(title: str, version: str) -> OpenAPIConfig:
    """A new config for each app: Litestar registers the viewer's routes on its router."""
    swagger = SwaggerRenderPlugin(
        js_url=f"{VENDOR}/swagger-ui-bundle.js",
        css_url=f"{VENDOR}/swagger-ui.css",
        standalone_preset_js_url=f"{VENDOR}/swagger-ui-standalone-preset.js",
        # as Corral's page has it: an empty icon, which a browser does not fetch
        favicon="<link rel='icon' href='data:,'>",
        path=["/", "/swagger"],
    )
    return OpenAPIConfig(
        title=title,
        version=version,
        render_plugins=[swagger, JsonRenderPlugin(), YamlRenderPlugin()],
        openapi_router=Router(
            PATH, route_handlers=[], include_in_schema=False, response_headers=_HEADERS
        ),
    )
