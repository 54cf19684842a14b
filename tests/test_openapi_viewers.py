"""The OpenAPI viewer Corral serves (Swagger UI, at /schema and /schema/swagger) in headless
Chromium against a real `corral serve`: it shows the API and calls it, and every request
it makes goes to the server itself, so it works on a network with no internet. The
viewers whose files would come from a CDN are not offered, and the schema files are still
served. The page fixtures are those of tests/test_dashboard.py; who may open the viewer is
tests/test_auth.py's."""

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Request, expect

from tests.test_dashboard import Farm, Web, browser, farm_with, web

__all__ = ["browser", "web"]

VIEWERS = ["/schema", "/schema/swagger"]
# Litestar's other viewers, whose pages would load their files from CDNs
NOT_OFFERED = ["/schema/redoc", "/schema/rapidoc", "/schema/elements", "/schema/scalar"]
VENDOR = "/dashboard/vendor"
ASSETS = ["swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"]
URL = re.compile(r"https?://[^\s\"'<>()\\]+")


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    with farm_with(tmp_path_factory.mktemp("viewers"), "") as made:
        yield made


def origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


@pytest.mark.parametrize("path", VIEWERS)
def test_the_viewer_shows_and_calls_the_api_with_every_request_to_the_server(
    web: Web, farm: Farm, path: str
) -> None:
    requested: list[str] = []

    def record(request: Request) -> None:
        requested.append(request.url)

    web.page.on("request", record)
    web.page.goto(farm.url + path)
    expect(web.page.locator(".info .title")).to_contain_text("Corral")
    jobs = web.page.locator(".opblock-get").filter(
        has=web.page.locator(".opblock-summary-path[data-path='/api/jobs']")
    )
    expect(jobs).to_have_count(1)
    jobs.locator(".opblock-summary").click()
    jobs.locator(".try-out__btn").click()
    jobs.locator(".execute").click()
    expect(jobs.locator(".live-responses-table tbody .response-col_status")).to_have_text("200")

    assert f"{farm.url}{path}" in requested
    for asset in ASSETS:
        assert f"{farm.url}{VENDOR}/{asset}" in requested, asset
    assert f"{farm.url}/api/jobs" in requested, "the viewer's call of the API"
    foreign = [url for url in requested if origin(url) != origin(farm.url)]
    assert not foreign, f"requests to other hosts: {foreign}"


@pytest.mark.parametrize("path", VIEWERS)
def test_the_viewer_page_names_no_other_host(farm: Farm, path: str) -> None:
    response = httpx.get(farm.url + path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    for asset in ASSETS:
        assert f'"{VENDOR}/{asset}"' in page, asset
    assert URL.findall(page) == []
    # a browser enforces it too, should a newer Litestar's page name a CDN again
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self' 'unsafe-inline'" in policy


def test_the_viewer_files_are_served_from_the_npm_package(farm: Farm, repo_root: Path) -> None:
    modules = repo_root / "api" / "dashboard" / "node_modules" / "swagger-ui-dist"
    for asset in [*ASSETS, "LICENSE", "NOTICE"]:
        name = asset if asset in ASSETS else f"swagger-ui.{asset}"
        response = httpx.get(f"{farm.url}{VENDOR}/{name}")
        assert response.status_code == 200, name
        assert response.content == (modules / asset).read_bytes(), name


@pytest.mark.parametrize("path", NOT_OFFERED)
def test_a_viewer_that_would_load_from_a_cdn_is_not_offered(farm: Farm, path: str) -> None:
    response = httpx.get(farm.url + path)
    assert response.status_code == 404
    assert URL.findall(response.text) == []


def test_the_schema_is_still_served_as_json_and_yaml(farm: Farm) -> None:
    schema = httpx.get(farm.url + "/schema/openapi.json")
    assert schema.status_code == 200
    assert schema.json()["info"]["title"] == "Corral"
    assert "/api/jobs" in schema.json()["paths"]
    for path in ("/schema/openapi.yaml", "/schema/openapi.yml"):
        response = httpx.get(farm.url + path)
        assert response.status_code == 200, path
        assert "/api/jobs:" in response.text, path
