"""The state rules of the Coalition face: group counters and roll-up, dependencies,
pause, start, reset and delete on whole subtrees, affinity inheritance."""

import httpx

from tests.conftest import Sql
from tests.farm import append_log, finish, get, ok, run, start, submit, try_finish, try_start


def states(api: httpx.Client, *ids: int) -> list[str]:
    return [get(api, i)["state"] for i in ids]


def counters(api: httpx.Client, job_id: int) -> dict[str, int]:
    job = get(api, job_id)
    keys = ("finished", "errors", "working", "total", "total_finished", "total_errors")
    return {k: job[k] for k in (*keys, "total_working")}


def test_group_counters_follow_their_leaves(api: httpx.Client, sql: Sql) -> None:
    shot = submit(api, title="shot")
    frames = [submit(api, parent=shot, title=f"f{i}", command="render") for i in range(3)]
    assert counters(api, shot) == {
        "finished": 0, "errors": 0, "working": 0, "total": 3,
        "total_finished": 0, "total_errors": 0, "total_working": 0,
    }  # fmt: skip
    assert get(api, shot)["state"] == "WAITING"

    first = start(sql, frames[0])
    assert get(api, shot)["state"] == "WORKING"
    assert counters(api, shot)["working"] == counters(api, shot)["total_working"] == 1
    finish(sql, first)
    assert counters(api, shot)["finished"] == counters(api, shot)["total_finished"] == 1
    assert get(api, shot)["progress"] == 1 / 3
    assert get(api, frames[0])["progress"] == 1.0

    run(sql, frames[1], exit_code=3)
    assert get(api, shot)["state"] == "ERROR"
    assert counters(api, shot)["errors"] == 1

    ok(api.post("/api/resetjobs", json=[frames[1]]))
    run(sql, frames[1])
    run(sql, frames[2])
    assert get(api, shot)["state"] == "FINISHED"
    assert counters(api, shot)["total_finished"] == 3
    assert get(api, shot)["progress"] == 1.0


def test_direct_counters_count_direct_leaves_and_totals_all_below(
    api: httpx.Client, sql: Sql
) -> None:
    show = submit(api, title="show")
    seq = submit(api, parent=show, title="seq")
    own = submit(api, parent=show, title="own frame", command="render")
    frames = [submit(api, parent=seq, title=f"f{i}", command="render") for i in range(2)]
    run(sql, frames[0])
    run(sql, own)
    assert counters(api, show) == {
        "finished": 1, "errors": 0, "working": 0, "total": 3,
        "total_finished": 2, "total_errors": 0, "total_working": 0,
    }  # fmt: skip
    assert counters(api, seq)["finished"] == 1
    assert counters(api, seq)["total"] == 2


def test_an_empty_group_never_blocks_its_parent(api: httpx.Client, sql: Sql) -> None:
    show = submit(api, title="show")
    submit(api, parent=show, title="empty for now")
    frame = submit(api, parent=show, title="f", command="render")
    run(sql, frame)
    assert get(api, show)["state"] == "FINISHED"


def test_group_start_time_and_duration(api: httpx.Client, sql: Sql) -> None:
    shot = submit(api, title="shot")
    a = submit(api, parent=shot, title="a", command="render")
    b = submit(api, parent=shot, title="b", command="render")
    event_a = start(sql, a)
    event_b = start(sql, b, worker="node-2")
    # as if they had started 100 and 50 seconds ago
    sql.execute("UPDATE jobs SET start_time = corral_epoch() - 100 WHERE id = $1", a)
    sql.execute("UPDATE jobs SET start_time = corral_epoch() - 50 WHERE id = $1", b)
    started_a = sql.fetchval("SELECT start_time::bigint FROM jobs WHERE id = $1", a)
    assert get(api, shot)["start_time"] == started_a
    assert get(api, shot)["duration"] >= 150, "running leaves count their elapsed time"
    finish(sql, event_a)
    finish(sql, event_b)
    durations = [get(api, a)["duration"], get(api, b)["duration"]]
    # each figure is rounded to whole seconds on its own
    assert abs(get(api, shot)["duration"] - sum(durations)) <= 1
    ok(api.post("/api/resetjobs", json=[a]))
    assert get(api, shot)["start_time"] == get(api, b)["start_time"]
    ok(api.post("/api/resetjobs", json=[shot]))
    assert get(api, shot)["start_time"] == 0


def test_dependencies_hold_jobs_pending_until_finished(api: httpx.Client, sql: Sql) -> None:
    shot = submit(api, title="shot")
    a = submit(api, parent=shot, title="a", command="render")
    b = submit(api, parent=shot, title="b", command="render")
    comp = submit(api, parent=shot, title="comp", command="comp", dependencies=[a, b])
    assert states(api, a, b, comp) == ["WAITING", "WAITING", "PENDING"]
    assert try_start(sql, comp) is None

    run(sql, a)
    assert get(api, comp)["state"] == "PENDING"
    run(sql, b, exit_code=1)
    assert get(api, comp)["state"] == "PENDING", "a failed dependency keeps blocking"
    ok(api.post("/api/resetjobs", json=[b]))
    run(sql, b)
    assert get(api, comp)["state"] == "WAITING"
    run(sql, comp)
    assert get(api, shot)["state"] == "FINISHED"


def test_a_dependency_on_a_group_waits_for_all_of_it(api: httpx.Client, sql: Sql) -> None:
    renders = submit(api, title="renders")
    frames = [submit(api, parent=renders, title=f"f{i}", command="render") for i in range(2)]
    comp = submit(api, title="comp", command="comp", dependencies=[renders])
    run(sql, frames[0])
    assert get(api, comp)["state"] == "PENDING"
    run(sql, frames[1])
    assert get(api, renders)["state"] == "FINISHED"
    assert get(api, comp)["state"] == "WAITING"


def test_a_group_dependency_blocks_everything_below_it(api: httpx.Client, sql: Sql) -> None:
    first = submit(api, title="first", command="prep")
    shot = submit(api, title="shot")
    seq = submit(api, parent=shot, title="seq")
    deep = submit(api, parent=seq, title="deep", command="render")
    ok(api.post(f"/api/jobs/{shot}/dependencies", json=[first]))
    assert states(api, shot, deep) == ["PENDING", "PENDING"]
    late = submit(api, parent=seq, title="late", command="render")
    assert get(api, late)["state"] == "PENDING", "a new leaf below a blocked group is blocked"
    run(sql, first)
    assert states(api, shot, deep, late) == ["WAITING", "WAITING", "WAITING"]


def test_replacing_and_clearing_dependencies(api: httpx.Client) -> None:
    a = submit(api, title="a", command="x")
    b = submit(api, title="b", command="x")
    c = submit(api, title="c", command="x", dependencies=[a])
    ok(api.post(f"/api/jobs/{c}/dependencies", json=[b]))
    assert get(api, c)["dependencies"] == [b]
    ok(api.post(f"/api/jobs/{c}/dependencies", json=[]))
    assert get(api, c)["dependencies"] == []
    assert get(api, c)["state"] == "WAITING"


def test_deleting_a_dependency_releases_its_dependents(api: httpx.Client, sql: Sql) -> None:
    a = submit(api, title="a", command="x")
    b = submit(api, title="b", command="x", dependencies=[a])
    ok(api.request("DELETE", "/api/jobs", json=[a]))
    assert get(api, b)["state"] == "WAITING"
    assert get(api, b)["dependencies"] == []
    assert sql.fetchval("SELECT count(*) FROM dependencies") == 0


def test_start_requeues_finished_and_blocks_their_dependents_again(
    api: httpx.Client, sql: Sql
) -> None:
    a = submit(api, title="a", command="x")
    b = submit(api, title="b", command="x", dependencies=[a])
    run(sql, a)
    assert states(api, a, b) == ["FINISHED", "WAITING"]
    ok(api.post("/api/startjobs", json=[a]))
    assert states(api, a, b) == ["WAITING", "PENDING"]


def test_pause_stops_running_descendants_which_wait_paused(api: httpx.Client, sql: Sql) -> None:
    shot = submit(api, title="shot")
    frame = submit(api, parent=shot, title="f", command="render")
    other = submit(api, parent=shot, title="g", command="render")
    event = start(sql, frame, worker="node-1")
    ok(api.post("/api/pausejobs", json=[shot]))
    assert states(api, shot, frame, other) == ["PAUSED", "PAUSED", "PAUSED"]
    assert sql.fetchval("SELECT state FROM jobs WHERE id = $1", frame) == "WAITING"
    assert sql.fetchval("SELECT state FROM events WHERE id = $1", event) == "CANCELED"
    worker = api.get("/api/workers").json()[0]
    assert (worker["state"], worker["current_event"]) == ("WAITING", 0)
    assert counters(api, shot)["total_working"] == 0
    # the killed process reporting its exit afterwards changes nothing
    assert not try_finish(sql, event)
    assert try_start(sql, frame) is None, "paused jobs do not run"

    ok(api.post("/api/startjobs", json=[shot]))
    assert states(api, shot, frame, other) == ["WAITING", "WAITING", "WAITING"]
    run(sql, frame)


def test_reset_clears_runs_logs_and_pause(api: httpx.Client, sql: Sql) -> None:
    shot = submit(api, title="shot")
    frame = submit(api, parent=shot, title="f", command="render")
    event = start(sql, frame)
    append_log(sql, frame, b"50%\n")
    finish(sql, event, exit_code=2)
    ok(api.post("/api/pausejobs", json=[shot]))
    ok(api.post("/api/resetjobs", json=[shot]))
    job = get(api, frame)
    assert (job["state"], job["run_done"], job["start_time"]) == ("WAITING", 0, 0)
    assert api.get(f"/api/jobs/{frame}/log").json() == ""
    assert get(api, shot)["state"] == "WAITING"
    assert counters(api, shot)["total_errors"] == 0


def test_reset_of_a_running_job_ends_its_run(api: httpx.Client, sql: Sql) -> None:
    frame = submit(api, title="f", command="render")
    event = start(sql, frame)
    ok(api.post("/api/resetjobs", json=[frame]))
    assert get(api, frame)["state"] == "WAITING"
    assert sql.fetchval("SELECT state FROM events WHERE id = $1", event) == "CANCELED"


def test_delete_removes_the_subtree_and_updates_the_old_parent(api: httpx.Client, sql: Sql) -> None:
    show = submit(api, title="show")
    seq = submit(api, parent=show, title="seq")
    frames = [submit(api, parent=seq, title=f"f{i}", command="render") for i in range(2)]
    keep = submit(api, parent=show, title="keep", command="render")
    event = start(sql, frames[0])
    append_log(sql, frames[0], b"output")
    ok(api.request("DELETE", "/api/jobs", json=[seq]))
    assert [c["id"] for c in api.get(f"/api/jobs/{show}/children").json()] == [keep]
    assert counters(api, show)["total"] == 1
    assert counters(api, show)["total_working"] == 0
    assert sql.fetchval("SELECT count(*) FROM jobs WHERE id = ANY($1)", frames) == 0
    assert sql.fetchval("SELECT count(*) FROM job_logs") == 0
    assert sql.fetchval("SELECT state FROM events WHERE id = $1", event) == "CANCELED"


def test_affinities_are_inherited_from_ancestors(api: httpx.Client, sql: Sql) -> None:
    shot = submit(api, title="shot", affinity="LINUX")
    frame = submit(api, parent=shot, title="f", command="render", affinity="GPU, LINUX")
    assert get(api, frame)["affinity"] == "GPU,LINUX"
    slots = api.get("/api/affinities").json()
    ids = {name: int(slot) for slot, name in slots.items()}
    stored = sql.fetchval("SELECT affinity_ids FROM jobs WHERE id = $1", frame)
    assert stored == sorted([ids["LINUX"], ids["GPU"]])
    ok(api.post("/api/jobs", json={str(shot): {"affinity": "WINDOWS"}}))
    ids = {name: int(slot) for slot, name in api.get("/api/affinities").json().items()}
    stored = sql.fetchval("SELECT affinity_ids FROM jobs WHERE id = $1", frame)
    assert stored == sorted([ids["LINUX"], ids["GPU"], ids["WINDOWS"]])


def test_stopping_a_worker_requeues_its_job(api: httpx.Client, sql: Sql) -> None:
    frame = submit(api, title="f", command="render")
    event = start(sql, frame, worker="node-7")
    ok(api.post("/api/stopworkers", json=["node-7"]))
    assert get(api, frame)["state"] == "WAITING"
    assert sql.fetchval("SELECT state FROM events WHERE id = $1", event) == "CANCELED"
    worker = api.get("/api/workers").json()[0]
    assert (worker["active"], worker["state"]) == (0, "WAITING")


def test_worker_affinity_rules_keep_their_order(api: httpx.Client, sql: Sql) -> None:
    start(sql, submit(api, title="f", command="x"), worker="node-1")
    ok(api.post("/api/workers", json={"node-1": {"affinity": "LINUX,GPU\nLINUX"}}))
    assert api.get("/api/workers").json()[0]["affinity"] == "LINUX,GPU\nLINUX"
    ok(api.post("/api/workers", json={"node-1": {"affinity": "WINDOWS;LINUX"}}))
    assert api.get("/api/workers").json()[0]["affinity"] == "WINDOWS\nLINUX"


def test_editing_a_paused_flag_and_state(api: httpx.Client) -> None:
    shot = submit(api, title="shot")
    frame = submit(api, parent=shot, title="f", command="render")
    ok(api.post("/api/jobs", json={str(shot): {"paused": 1}}))
    assert states(api, shot, frame) == ["PAUSED", "PAUSED"]
    ok(api.post("/api/jobs", json={str(shot): {"paused": False}}))
    assert states(api, shot, frame) == ["WAITING", "WAITING"]
    ok(api.post("/api/jobs", json={str(frame): {"state": "PAUSED"}}))
    assert states(api, shot, frame) == ["WAITING", "PAUSED"]
    ok(api.post("/api/jobs", json={str(frame): {"state": "WAITING"}}))
    assert states(api, frame) == ["WAITING"]


def test_a_job_submitted_paused(api: httpx.Client, sql: Sql) -> None:
    frame = submit(api, title="f", command="render", state="PAUSED")
    assert get(api, frame)["state"] == "PAUSED"
    assert try_start(sql, frame) is None
    shot = submit(api, title="shot", paused=True)
    child = submit(api, parent=shot, title="c", command="render")
    assert get(api, child)["state"] == "PAUSED", "a child of a paused group starts paused"
