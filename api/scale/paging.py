"""Scale's pages (`{"count", "next", "previous", "results"}`) and its absolute URLs.

URLs follow the request: its scheme and host (or the first `X-Forwarded-Proto` and
`X-Forwarded-Host` a proxy set) and the prefix it came in on (`/v6` or `/api/v6`), so
a client behind a proxy or under `/api` is sent back where it came from.
"""

from collections.abc import Sequence
from math import ceil
from typing import Annotated, Final, Generic, TypeVar
from urllib.parse import parse_qsl, urlencode

import msgspec
from litestar import Request
from litestar.datastructures import State
from litestar.params import QueryParameter

from core.errors import NotFound

T = TypeVar("T")
PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 1000
ScaleRequest = Request[object, object, State]


class Page(msgspec.Struct, Generic[T], kw_only=True):
    count: int
    next: str | None
    previous: str | None
    results: list[T]


def origin(request: ScaleRequest) -> str:
    """`scheme://host` as the client sees it."""
    forwarded_host = request.headers.get("x-forwarded-host", "").split(",")[0].strip()
    forwarded_proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip()
    host = forwarded_host or request.headers.get("host", "") or request.url.netloc
    return f"{forwarded_proto or request.url.scheme}://{host}"


def prefix(request: ScaleRequest) -> str:
    return "/api/v6" if request.url.path.startswith("/api/v6") else "/v6"


def absolute(request: ScaleRequest, path: str) -> str:
    """The absolute URL of `path` (below the face's prefix, starting with `/`)."""
    return f"{origin(request)}{prefix(request)}{path}"


class Paging:
    """The page a list request asks for (`page`, `page_size`), injected into the list
    routes as `paging`; it documents both parameters."""

    def __init__(self, request: ScaleRequest, page: str | None, page_size: str | None) -> None:
        self._request = request
        self._number = _page(page)
        self._size = _page_size(page_size)

    def window(self) -> tuple[int, int]:
        """The rows asked for, as an offset and a limit, for a list paged in SQL."""
        return (self._number - 1) * self._size, self._size

    def answer(self, count: int, rows: Sequence[T]) -> Page[T]:
        """The page of a list paged in SQL: `rows` of `window()`, out of `count`."""
        if not rows and self._number > 1:
            raise NotFound("Invalid page.")
        last = max(1, ceil(count / self._size))
        return Page(
            count=count,
            next=_link(self._request, self._number + 1) if self._number < last else None,
            previous=_link(self._request, self._number - 1) if self._number > 1 else None,
            results=list(rows),
        )

    def page(self, rows: Sequence[T]) -> Page[T]:
        """The page of `rows` asked for. A page that is not a whole number from 1, or past
        the last, is 404 `Invalid page.`; a page size that is not a whole number from 1 is
        the default, and at most 1,000."""
        number, size = self._number, self._size
        pages = max(1, ceil(len(rows) / size))
        if number > pages:
            raise NotFound("Invalid page.")
        start = (number - 1) * size
        return Page(
            count=len(rows),
            next=_link(self._request, number + 1) if number < pages else None,
            previous=_link(self._request, number - 1) if number > 1 else None,
            results=list(rows[start : start + size]),
        )


def paging(
    request: ScaleRequest,
    page: Annotated[str | None, QueryParameter(description="the page, from 1 (default 1)")] = None,
    page_size: Annotated[
        str | None, QueryParameter(description="results a page, 1 to 1,000 (default 100)")
    ] = None,
) -> Paging:
    return Paging(request, page, page_size)


def _page(text: str | None) -> int:
    if text is None:
        return 1
    if not (text.isascii() and text.isdigit()) or len(text) > 9 or int(text) < 1:
        raise NotFound("Invalid page.")
    return int(text)


def _page_size(text: str | None) -> int:
    if text is None or not (text.isascii() and text.isdigit()) or len(text) > 9:
        return PAGE_SIZE
    size = int(text)
    return PAGE_SIZE if size < 1 else min(size, MAX_PAGE_SIZE)


def _link(request: ScaleRequest, number: int) -> str:
    """This request's URL at page `number`, every other parameter kept; page 1 has no
    `page` parameter, as Scale's."""
    # from the query string itself: the parsed parameters do not keep their order
    query_string = request.scope.get("query_string", b"").decode("latin-1")
    pairs = [(k, v) for k, v in parse_qsl(query_string, keep_blank_values=True) if k != "page"]
    if number > 1:
        pairs.append(("page", str(number)))
    raw = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
    query = urlencode(pairs)
    return f"{origin(request)}{raw}" + (f"?{query}" if query else "")
