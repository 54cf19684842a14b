"""W6 listing: how fast the job listings answer on big farms, timed from a plain httpx
client (one keep-alive connection, one request at a time, the whole answer read).

Two farms, each filled through the bulk path on an emptied database (tests.bench.run
empties and analyzes it):
- root jobs only: `GET /api/jobs`, Coalition's complete list of the roots;
- groups of 1,000 frames: Coalition's paged where query over the roots, the native keyset
  pages (`GET /api/v2/jobs`) walked through the children of groups and through the roots,
  bare and filtered, and Coalition's children of a group.

Every answer is checked against what the farm holds: a listing the server refuses or
answers wrongly is recorded with the reason instead of figures, so the report shows what
the server does rather than stopping the whole run.
"""

import asyncio
import functools
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import httpx
import msgspec

FRAMES = 1000
PAGE = 100
USERS = ("ana", "ben", "chloe", "dan")
# every tenth frame is created paused, so that a state filter has something to leave out
PAUSED_EVERY = 10
WAITING_FRAMES = FRAMES - FRAMES // PAUSED_EVERY
# bulk requests in flight during a fill: the server's Python and PostgreSQL take turns on
# the cores, and one request at a time leaves one of them idle
CONNECTIONS = 3
# groups whose children the walks and Coalition's children lists take in turn
WALKED = 20
ROOTS_BATCH = 10_000

Params = tuple[tuple[str, str | int], ...]


@dataclass
class Listing:
    """One kind of request: seconds per answer, and the mean answer's size in bytes."""

    request: str
    # jobs in the farm
    farm: int
    p50: float = 0.0
    p99: float = 0.0
    size: float = 0.0
    samples: int = 0
    # why there are no figures: what the server answered instead
    error: str = ""


@dataclass
class Listings:
    # the first farm's root jobs; the second farm's groups, and how long filling them took
    roots: int
    groups: int
    filled_in: float
    # (a) the complete list of the roots, (b) the where pages, (c) the keyset walks and
    # (d) the children of a group
    every: Listing
    wheres: list[Listing]
    walks: list[Listing]
    children: Listing

    @property
    def rows(self) -> list[Listing]:
        return [self.every, *self.wheres, *self.walks, self.children]


class Row(msgspec.Struct):
    # the fields the checks read; msgspec skips the others without building them
    id: int
    parent: int
    state: str
    user: str


class Page(msgspec.Struct):
    jobs: list[Row]
    next: int | None


@dataclass(frozen=True)
class Filter:
    """The jobs a listing holds: as the native query's parameters, and as a row's check."""

    parent: int
    state: str = ""
    user: str = ""

    def params(self) -> Params:
        named = (("state", self.state), ("user", self.user))
        return (("parent", self.parent), *((k, v) for k, v in named if v))

    def admits(self, row: Row) -> bool:
        if row.parent != self.parent:
            return False
        # an empty state or user filters nothing
        return self.state in ("", row.state) and self.user in ("", row.user)


@dataclass(frozen=True)
class Get:
    """A Coalition listing: its request, and the `count` jobs of `jobs` it must answer."""

    path: str
    params: Params
    count: int
    jobs: Filter


@dataclass
class Timed:
    # seconds to each whole answer, and its size in bytes
    times: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)


class Wrong(Exception):
    """The server refused a listing or answered against its contract."""


_ROWS = msgspec.json.Decoder(list[Row])
_PAGE = msgspec.json.Decoder(Page)


async def fill_roots(url: str, roots: int) -> None:
    """`roots` root jobs (leaves), their users taken in turn from USERS."""
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        batches = iter(range(0, roots, ROOTS_BATCH))

        async def submit() -> None:
            for first in batches:
                jobs = [
                    {"title": f"job {i}", "command": "true", "user": USERS[i % len(USERS)]}
                    for i in range(first, min(first + ROOTS_BATCH, roots))
                ]
                await _bulk(client, 0, jobs)

        await asyncio.gather(*(submit() for _ in range(CONNECTIONS)))


async def fill_groups(url: str, groups: int) -> list[int]:
    """`groups` root groups of FRAMES frames each, each group and its frames belonging to
    one of USERS in turn, every PAUSED_EVERY-th frame paused; the groups' ids."""
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        shots = [{"title": f"shot {g}", "user": USERS[g % len(USERS)]} for g in range(groups)]
        ids = await _bulk(client, 0, shots)
        todo = iter(enumerate(ids))

        async def submit() -> None:
            for g, group in todo:
                frames = [
                    {"title": f"frame {i}", "command": "true", "user": USERS[g % len(USERS)],
                     "paused": i % PAUSED_EVERY == PAUSED_EVERY - 1}
                    for i in range(FRAMES)
                ]  # fmt: skip
                await _bulk(client, group, frames)

        await asyncio.gather(*(submit() for _ in range(CONNECTIONS)))
        return ids


async def _bulk(
    client: httpx.AsyncClient, parent: int, jobs: Sequence[Mapping[str, object]]
) -> list[int]:
    response = await client.post("/api/v2/jobs/bulk", json={"parent": parent, "jobs": jobs})
    response.raise_for_status()
    ids: list[int] = response.json()["ids"]
    return ids


def roots_listing(url: str, roots: int, samples: int) -> Listing:
    """(a) Coalition's complete list of the roots, on a farm of `roots` root jobs."""
    every = Get("/api/jobs", (), roots, Filter(0))
    with httpx.Client(base_url=url, timeout=300) as client:
        return _measure(
            "`GET /api/jobs`", roots, functools.partial(_repeat, client, [every], samples)
        )


def spread(groups: Sequence[int]) -> Sequence[int]:
    """The groups walked: spread over the farm, not only its first or last rows."""
    return groups[:: max(1, len(groups) // WALKED)][:WALKED]


def group_listings(
    url: str, groups: Sequence[int], samples: int, pages: int
) -> tuple[list[Listing], list[Listing], Listing]:
    """(b), (c) and (d) on the farm of fill_groups: `samples` answers of each single
    request, and keyset walks until `pages` pages of each kind are timed."""
    farm = len(groups) * (FRAMES + 1)
    walked = spread(groups)
    owner = USERS[0]
    # the first page and the last full one, where the two differ
    firsts = (0, len(groups) - PAGE) if len(groups) > PAGE else (0,)
    wheres = [
        (
            f"`GET /api/jobs/where/?where_clause=parent=0&min={first}&max={first + PAGE}`",
            Get(
                "/api/jobs/where/",
                (("where_clause", "parent=0"), ("min", first), ("max", first + PAGE)),
                min(PAGE, len(groups)),
                Filter(0),
            ),
        )
        for first in firsts
    ]
    walks = [
        (
            "`GET /api/v2/jobs?parent=<group>&after=<id>&limit=100`",
            [Filter(group) for group in walked],
            FRAMES,
        ),
        (
            "the same, `&state=WAITING`",
            [Filter(group, state="WAITING") for group in walked],
            WAITING_FRAMES,
        ),
        ("`GET /api/v2/jobs?parent=0&after=<id>&limit=100` (the roots)", [Filter(0)], len(groups)),
        (f"the same, `&user={owner}`", [Filter(0, user=owner)], len(groups[:: len(USERS)])),
    ]
    children = [Get(f"/api/jobs/{group}/children", (), FRAMES, Filter(group)) for group in walked]
    with httpx.Client(base_url=url, timeout=300) as client:
        return (
            [
                _measure(request, farm, functools.partial(_repeat, client, [where], samples))
                for request, where in wheres
            ],
            [
                _measure(request, farm, functools.partial(_walks, client, filters, count, pages))
                for request, filters, count in walks
            ],
            _measure(
                f"`GET /api/jobs/<group>/children` ({FRAMES:,} frames)",
                farm,
                functools.partial(_repeat, client, children, samples),
            ),
        )


def _measure(request: str, farm: int, work: Callable[[], Timed]) -> Listing:
    try:
        timed = work()
    except (Wrong, msgspec.DecodeError) as wrong:
        return Listing(request, farm, error=str(wrong))
    # the first answer of each kind warms the server's statement caches: not the steady state
    times = sorted(timed.times[1:])
    return Listing(
        request,
        farm,
        p50=times[len(times) // 2],
        p99=times[min(len(times) - 1, int(len(times) * 0.99))],
        size=sum(timed.sizes) / len(timed.sizes),
        samples=len(times),
    )


def _get(client: httpx.Client, path: str, params: Params, timed: Timed) -> bytes:
    start = time.perf_counter()
    response = client.get(path, params=params)
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        # one line: the reason goes into a list item of the report
        detail = " ".join(response.text[:160].split())
        raise Wrong(f"HTTP {response.status_code} to {response.request.url.raw_path.decode()}:"
                    f" {detail}")  # fmt: skip
    timed.times.append(elapsed)
    timed.sizes.append(len(response.content))
    return response.content


def _repeat(client: httpx.Client, gets: Sequence[Get], samples: int) -> Timed:
    """`samples` answers (and the warm-up one), taking the requests in turn."""
    timed = Timed()
    for get in itertools.islice(itertools.cycle(gets), samples + 1):
        rows = _ROWS.decode(_get(client, get.path, get.params, timed))
        if len(rows) != get.count:
            raise Wrong(f"{get.path} {get.params}: {len(rows)} jobs, {get.count} expected")
        for a, b in itertools.pairwise(rows):
            if a.id >= b.id:
                raise Wrong(f"{get.path} {get.params}: job {b.id} listed after {a.id}")
        strays = [r.id for r in rows if not get.jobs.admits(r)]
        if strays:
            raise Wrong(f"{get.path} {get.params}: jobs it should leave out, {strays[:5]}")
    return timed


def _walks(client: httpx.Client, filters: Sequence[Filter], count: int, pages: int) -> Timed:
    """Keyset walks, each from the first page to the one whose `next` is null, taking the
    filters in turn until `pages` pages (and the warm-up one) are timed; each walk must
    list `count` jobs."""
    timed = Timed()
    for listed in itertools.cycle(filters):
        if len(timed.times) > pages:
            break
        seen = _walk(client, listed, timed)
        if seen != count:
            raise Wrong(f"a walk of {listed.params()} listed {seen} jobs, {count} expected")
    return timed


def _walk(client: httpx.Client, listed: Filter, timed: Timed) -> int:
    """One walk through the pages of a query; how many jobs it listed."""
    seen = 0
    after: int | None = 0
    last = 0
    while after is not None:
        params = (*listed.params(), ("after", after), ("limit", PAGE))
        page = _PAGE.decode(_get(client, "/api/v2/jobs", params, timed))
        if len(page.jobs) > PAGE:
            raise Wrong(f"{params}: a page of {len(page.jobs)} jobs")
        for row in page.jobs:
            if row.id <= last or not listed.admits(row):
                raise Wrong(f"{params}: job {row.id} after {last}, or one to leave out")
            last = row.id
        seen += len(page.jobs)
        # a `next` short of the page's last id would list its jobs again, forever
        if page.next is not None and (not page.jobs or page.next < last):
            raise Wrong(f"{params}: next {page.next} after a page ending at {last}")
        after = page.next
    return seen


def describe(listing: Listing) -> str:
    """One line for the console."""
    if listing.error:
        return f"W6 {listing.request}: {listing.error}"
    return (
        f"W6 {listing.request} ({listing.farm:,} jobs): p50 {duration(listing.p50)},"
        f" p99 {duration(listing.p99)}, {size(listing.size)} an answer"
    )


def duration(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1000:.1f} ms"


def size(octets: float) -> str:
    if octets >= 1e6:
        return f"{octets / 1e6:.1f} MB"
    return f"{octets / 1e3:.1f} kB"
