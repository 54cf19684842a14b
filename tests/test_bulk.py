"""The bulk path: many jobs under one parent in one request and one transaction."""

import httpx

from tests.conftest import Sql
from tests.farm import get, submit


def bulk(api: httpx.Client, parent: int, jobs: list[dict[str, object]]) -> httpx.Response:
    return api.post("/api/v2/jobs/bulk", json={"parent": parent, "jobs": jobs})


def test_bulk_creates_jobs_in_order_under_their_group(api: httpx.Client) -> None:
    shot = submit(api, title="shot", affinity="LINUX")
    frames = [{"title": f"frame {i}", "command": f"render {i}", "priority": i} for i in range(50)]
    response = bulk(api, shot, frames)
    assert response.status_code == 200, response.text
    ids = response.json()["ids"]
    assert len(ids) == 50
    children = api.get(f"/api/jobs/{shot}/children").json()
    assert [c["id"] for c in children] == ids
    assert [c["title"] for c in children] == [f"frame {i}" for i in range(50)]
    assert [c["priority"] for c in children] == list(range(50))
    group = get(api, shot)
    assert (group["total"], group["state"]) == (50, "WAITING")


def test_bulk_jobs_inherit_affinity_pause_and_blocking(api: httpx.Client, sql: Sql) -> None:
    first = submit(api, title="first", command="prep")
    shot = submit(api, title="shot", affinity="LINUX", dependencies=[first], paused=True)
    [job] = bulk(api, shot, [{"title": "f", "command": "x", "affinity": "GPU"}]).json()["ids"]
    row = sql.fetch("SELECT state, paused, prio_path FROM jobs WHERE id = $1", job)[0]
    assert (row["state"], row["paused"], row["prio_path"]) == ("PENDING", True, [1000, 1000])
    names = {v: int(k) for k, v in api.get("/api/affinities").json().items()}
    stored = sql.fetchval("SELECT affinity_ids FROM jobs WHERE id = $1", job)
    assert stored == sorted([names["LINUX"], names["GPU"]])


def test_bulk_dependencies_on_existing_jobs(api: httpx.Client) -> None:
    prep = submit(api, title="prep", command="prep")
    ids = bulk(
        api,
        0,
        [{"title": "a", "command": "x", "dependencies": [prep]}, {"title": "b", "command": "x"}],
    ).json()["ids"]
    assert get(api, ids[0])["dependencies"] == [prep]
    assert [get(api, i)["state"] for i in ids] == ["PENDING", "WAITING"]


def test_a_refused_bulk_creates_nothing(api: httpx.Client, sql: Sql) -> None:
    shot = submit(api, title="shot")
    before = sql.snapshot()
    # a job below the group depending on the group itself would wait for itself
    cycle = bulk(
        api, shot, [{"title": "ok", "command": "x"}, {"command": "y", "dependencies": [shot]}]
    )
    assert cycle.status_code == 400
    assert "cycle" in cycle.json()["detail"]
    unknown = bulk(api, shot, [{"command": "x", "dependencies": [999999]}])
    assert unknown.status_code == 400
    assert "999999" in unknown.json()["detail"]
    stray = bulk(api, shot, [{"command": "x", "parent": 12345}])
    assert stray.status_code == 400
    assert "12345" in stray.json()["detail"]
    empty = bulk(api, shot, [])
    assert empty.status_code == 400
    wrong = bulk(api, shot, [{"command": "x", "priority": "high"}])
    assert wrong.status_code == 400
    assert "priority" in wrong.json()["detail"]
    assert sql.snapshot() == before
    leaf = submit(api, title="leaf", command="x")
    before = sql.snapshot()
    under_leaf = bulk(api, leaf, [{"command": "x"}])
    assert under_leaf.status_code == 400
    assert sql.snapshot() == before
