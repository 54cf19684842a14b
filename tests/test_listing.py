"""Listing jobs: every listing answers exactly what job_view says of each job, however the
server builds it; Coalition's paged where-query; the native keyset pages and their filters.
"""

from typing import Any

import httpx
import pytest

from core.config import Config, LimitsConfig
from tests.conftest import ServerThread, Sql
from tests.farm import ok, run, start, submit

# the columns of job_view that change while a job is read: a running job's duration
MOVING = {"duration"}


def reference(sql: Sql, where: str = "TRUE", *args: Any) -> list[dict[str, Any]]:
    """Jobs as job_view, the definition every face shows, has them: the expected answers."""
    rows = sql.fetch(
        f"SELECT * FROM job_view WHERE {where} ORDER BY id",  # the tests' own literals
        *args,
    )
    return [
        {k: v for k, v in dict(r).items() if k not in ("paused", "prio_path", "own_affinity_ids")}
        for r in rows
    ]


def steady(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in job.items() if k not in MOVING} for job in jobs]


@pytest.fixture
def farm(api: httpx.Client, sql: Sql) -> dict[str, int]:
    """Groups and leaves in every state, with affinities named, renamed and cleared."""
    ok(api.post("/api/affinities", json={"1": "linux", "2": "windows project", "3": "gpu"}))
    ids = {
        "shot": submit(api, title="shot", user="ana", affinity="windows project, gpu"),
        "solo": submit(api, title="solo", command="echo solo", user="bob", affinity="gpu"),
        "plain": submit(api, title="plain", command="echo plain", url="http://x/1"),
    }
    ids["f1"] = submit(api, title="f1", command="echo 1", parent=ids["shot"], affinity="linux")
    ids["f2"] = submit(api, title="f2", command="echo 2", parent=ids["shot"])
    ids["f3"] = submit(
        api, title="f3", command="false", parent=ids["shot"], dependencies=[ids["f2"]]
    )
    ids["sub"] = submit(api, title="sub", parent=ids["shot"])
    ids["f4"] = submit(api, title="f4", command="echo 4", parent=ids["sub"], environment="A=1")
    run(sql, ids["f1"])
    run(sql, ids["solo"], exit_code=3)
    start(sql, ids["f2"])
    ok(api.post("/api/pausejobs", json=[ids["plain"]]))
    # a renamed slot shows its new name, a cleared one disappears from the jobs using it
    ok(api.post("/api/affinities", json={"3": "cuda", "1": ""}))
    return ids


def test_every_listing_shows_each_job_as_job_view_does(
    api: httpx.Client, sql: Sql, farm: dict[str, int]
) -> None:
    roots = reference(sql, "parent = 0")
    assert [j["affinity"] for j in roots] == ["windows project,cuda", "cuda", ""]
    assert steady(api.get("/api/jobs").json()) == steady(roots)
    shot = farm["shot"]
    children = reference(sql, "parent = $1", shot)
    assert [j["title"] for j in children] == ["f1", "f2", "f3", "sub"]
    assert children[0]["affinity"] == "", "the cleared slot is gone"
    assert steady(api.get(f"/api/jobs/{shot}/children").json()) == steady(children)
    for job in reference(sql):
        one = api.get(f"/api/jobs/{job['id']}").json()
        assert steady([{k: v for k, v in one.items() if k != "dependencies"}]) == steady([job])
    dependencies = reference(sql, "id = $1", farm["f2"])
    assert steady(api.get(f"/api/jobs/{farm['f3']}/dependencies").json()) == steady(dependencies)
    everything = api.get("/api/jobs/where", params={"where_clause": "", "max": 100})
    assert steady(everything.json()) == steady(reference(sql))
    page = api.get("/api/v2/jobs", params={"parent": shot}).json()
    assert steady(page["jobs"]) == steady(children)
    assert page["next"] is None


def test_a_where_page_is_rows_min_to_max_in_id_order(api: httpx.Client, sql: Sql) -> None:
    group = submit(api, title="g")
    ids = [submit(api, title=f"r{i}", command="echo") for i in range(30)]
    submit(api, title="child", command="echo", parent=group)

    def rows(first: int, last: int) -> list[int]:
        params = {"where_clause": "(parent = 0)", "min": first, "max": last}
        return [job["id"] for job in api.get("/api/jobs/where/", params=params).json()]

    roots = [group, *ids]
    assert rows(0, 10) == roots[:10]
    assert rows(10, 25) == roots[10:25]
    assert rows(25, 1_000_000_000) == roots[25:]
    count = api.get("/api/jobs/count/where/", params={"where_clause": "(parent = 0)"})
    assert count.json() == len(roots)


def test_the_where_rows_are_json_text_that_jquery_leaves_to_the_page(api: httpx.Client) -> None:
    """Coalition's page JSON.parses this answer itself (its `datatype` option is misspelt),
    so jQuery must not parse it first: it parses application/json (and sniffs nothing
    else); text/plain comes through as text, and cannot be shown as a page either."""
    submit(api, title="<b>bold</b>", command="echo")
    response = api.get("/api/jobs/where/", params={"where_clause": "parent = 0"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert [job["title"] for job in response.json()] == ["<b>bold</b>"]


# -- the native keyset pages -------------------------------------------------------------


@pytest.fixture
def big_group(api: httpx.Client, sql: Sql) -> tuple[int, list[int]]:
    """A group of 250 frames: every fifth paused, every seventh finished, users by thirds,
    titles with the characters a LIKE pattern would take for wildcards."""
    group = submit(api, title="big")
    ids = []
    for i in range(250):
        title = f"frame {i:03d}" + (" 50%_done" if i % 50 == 0 else "")
        user = ("ana", "bob", "eve")[i % 3]
        ids.append(submit(api, title=title, command="echo", parent=group, user=user))
    ok(api.post("/api/pausejobs", json=ids[::5]))
    for job_id in ids[::7]:
        if job_id not in ids[::5]:
            run(sql, job_id)
    return group, ids


def pages(api: httpx.Client, **params: Any) -> list[list[int]]:
    """Every page, following `next` to the end."""
    seen: list[list[int]] = []
    after = 0
    while True:
        response = api.get("/api/v2/jobs", params={**params, "after": after})
        assert response.status_code == 200, response.text
        page = response.json()
        seen.append([job["id"] for job in page["jobs"]])
        if page["next"] is None:
            return seen
        assert page["next"] == seen[-1][-1]
        after = page["next"]


def test_keyset_pages_walk_the_children_in_id_order(
    api: httpx.Client, big_group: tuple[int, list[int]]
) -> None:
    group, ids = big_group
    walked = pages(api, parent=group, limit=100)
    assert [len(p) for p in walked] == [100, 100, 50]
    assert [i for p in walked for i in p] == ids
    # a page that ends exactly at the last job says so without an empty page after it
    assert [len(p) for p in pages(api, parent=group, limit=125)] == [125, 125]
    middle = api.get("/api/v2/jobs", params={"parent": group, "after": ids[9], "limit": 3})
    assert [job["id"] for job in middle.json()["jobs"]] == ids[10:13]
    roots = api.get("/api/v2/jobs").json()
    assert [job["id"] for job in roots["jobs"]] == [group]
    assert roots["next"] is None


def test_keyset_pages_filter_by_state_user_and_title(
    api: httpx.Client, sql: Sql, big_group: tuple[int, list[int]]
) -> None:
    group, _ = big_group

    def ids_of(where: str, *args: Any) -> list[int]:
        return [j["id"] for j in reference(sql, f"parent = $1 AND {where}", group, *args)]

    def walked(**params: Any) -> list[int]:
        return [i for p in pages(api, parent=group, limit=40, **params) for i in p]

    paused = ids_of("state = 'PAUSED'")
    assert len(paused) == 50
    assert walked(state="PAUSED") == paused
    both = ids_of("state IN ('PAUSED', 'FINISHED')")
    assert walked(state=["PAUSED", "FINISHED"]) == both
    assert walked(user="bob") == ids_of('"user" = $2', "bob")
    assert walked(user="bob", state="FINISHED") == ids_of(
        "\"user\" = $2 AND state = 'FINISHED'", "bob"
    )
    # any case, and % and _ are themselves, not wildcards
    assert walked(title="FRAME 01") == ids_of("title LIKE 'frame 01%'")
    assert walked(title="50%_") == ids_of("title LIKE '%50\\%\\_%'")
    assert len(walked(title="50%_")) == 5
    assert walked(title="0%0") == []


@pytest.mark.parametrize(
    ("sort", "column"),
    [("priority", "priority"), ("state", "state"), ("title", "title"), ("start", "start_time")],
)
def test_sorted_pages_walk_the_children_by_a_column_then_id(
    api: httpx.Client, sql: Sql, big_group: tuple[int, list[int]], sort: str, column: str
) -> None:
    group, ids = big_group
    # priorities repeat, so ties are broken by id
    ok(api.post("/api/jobs", json={str(i): {"priority": n % 4} for n, i in enumerate(ids)}))
    rows = reference(sql, "parent = $1", group)
    up = [r["id"] for r in sorted(rows, key=lambda r: (r[column], r["id"]))]
    assert [i for p in pages(api, parent=group, limit=60, sort=sort) for i in p] == up
    down = [i for p in pages(api, parent=group, limit=60, sort=f"-{sort}") for i in p]
    assert down == up[::-1]
    # filters and order together
    paused = [r["id"] for r in sorted(rows, key=lambda r: (r[column], r["id"]))
              if r["state"] == "PAUSED"]  # fmt: skip
    assert [i for p in pages(api, parent=group, limit=7, sort=sort, state="PAUSED")
            for i in p] == paused  # fmt: skip


def test_pages_by_id_descending_and_a_cursor_gone(
    api: httpx.Client, big_group: tuple[int, list[int]]
) -> None:
    group, ids = big_group
    assert [i for p in pages(api, parent=group, limit=70, sort="-id") for i in p] == ids[::-1]
    # the job a sorted page was asked after is gone: the pages start again
    ok(api.request("DELETE", "/api/jobs", json=[ids[5]]))
    page = api.get(
        "/api/v2/jobs", params={"parent": group, "sort": "title", "after": ids[5], "limit": 3}
    ).json()
    assert [j["id"] for j in page["jobs"]] == ids[:3]


@pytest.mark.parametrize(
    ("params", "status", "named"),
    [
        ({"parent": 999_999}, 404, "999999"),
        ({"state": "RUNNING"}, 400, "RUNNING"),
        ({"limit": 0}, 400, "limit"),
        ({"limit": 10_001}, 400, "limit"),
        ({"after": -1}, 400, "after"),
        ({"parent": "x"}, 400, "parent"),
        ({"sort": "user"}, 400, "sort"),
    ],
)
def test_a_bad_page_request_is_refused_saying_why(
    api: httpx.Client, params: dict[str, Any], status: int, named: str
) -> None:
    response = api.get("/api/v2/jobs", params=params)
    assert response.status_code == status, response.text
    assert named in response.json()["detail"]


def test_a_page_holds_no_more_than_the_servers_max_page(
    database_url: str, big_group: tuple[int, list[int]]
) -> None:
    group, ids = big_group
    small = Config(limits=LimitsConfig(max_page=40))
    with ServerThread(small, database_url) as base, httpx.Client(base_url=base) as client:
        page = client.get("/api/v2/jobs", params={"parent": group, "limit": 10_000}).json()
    assert [job["id"] for job in page["jobs"]] == ids[:40]
    assert page["next"] == ids[39]
