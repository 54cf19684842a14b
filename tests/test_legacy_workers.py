"""The legacy Coalition worker protocol (/workers/pickjob, /workers/heartbeat,
/workers/endjob): form-encoded or query-string arguments, plain-text answers that the
legacy worker evaluates. The worker is simulated with plain HTTP calls against the real
server."""

import ast
import base64
import time
from typing import Any

import httpx
import pytest

from core.config import Config, DispatchConfig
from tests.conftest import Sql
from tests.farm import get, ok, submit

NOTHING = "(-1, '', '', '', None)"
PATIENCE = 30.0
FAST = DispatchConfig(
    interval=0.2,
    pick_wait=3,
    legacy_pick_wait=0.5,
    worker_timeout=3,
    timeout_interval=0.2,
    dead_worker_interval=0.2,
    retry_interval=0.1,
)


@pytest.fixture
def config(request: pytest.FixtureRequest) -> Config:
    """Fast dispatch; a test may pass plugin settings through an indirect parameter."""
    plugins: dict[str, dict[str, object]] = getattr(request, "param", {})
    return Config(dispatch=FAST, plugins=plugins)


def machine(host: str, **extra: Any) -> dict[str, str]:
    fields = {"hostname": host, "load": "[37]", "free_memory": "1000", "total_memory": "4000"}
    fields |= {k: str(v) for k, v in extra.items()}
    return fields


def pickjob(api: httpx.Client, host: str, **extra: Any) -> str:
    response = api.post("/workers/pickjob", data=machine(host, **extra), timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def pick_until_job(api: httpx.Client, host: str) -> tuple[Any, ...]:
    """Ask for a job until one comes, as the legacy worker loops; the evaluated tuple."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        answer = ast.literal_eval(pickjob(api, host))
        assert isinstance(answer, tuple)
        assert len(answer) == 5
        if answer[0] != -1:
            return answer
    pytest.fail(f"{host} got no job in {PATIENCE} s")


def heartbeat(api: httpx.Client, host: str, job: int, log: bytes = b"", **extra: Any) -> str:
    fields = machine(host, jobId=job, log=base64.b64encode(log).decode(), **extra)
    response = api.post("/workers/heartbeat", data=fields)
    assert response.status_code == 200, response.text
    return response.text


def endjob(api: httpx.Client, host: str, job: int, code: int) -> None:
    response = api.post("/workers/endjob", data={"hostname": host, "jobId": job, "errorCode": code})
    assert response.status_code == 200, response.text


def worker_row(api: httpx.Client, name: str) -> dict[str, Any]:
    response = api.get("/api/workers")
    assert response.status_code == 200, response.text
    rows = [w for w in response.json() if w["name"] == name]
    assert len(rows) == 1, f"worker {name} listed {len(rows)} times"
    return rows[0]


def log_of(api: httpx.Client, job: int) -> str:
    response = api.get(f"/api/jobs/{job}/log")
    assert response.status_code == 200, response.text
    text: str = response.json()
    return text


def events_of(api: httpx.Client, job: int) -> list[dict[str, Any]]:
    response = api.get("/api/events", params={"job": job})
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()
    return events


# -- pickjob ------------------------------------------------------------------------------


def test_pickjob_registers_on_first_contact_and_answers_nothing(
    api: httpx.Client, sql: Sql
) -> None:
    assert sql.fetchval("SELECT count(*) FROM workers") == 0
    text = pickjob(api, "legacy-1")
    assert text == NOTHING
    assert ast.literal_eval(text) == (-1, "", "", "", None)
    row = worker_row(api, "legacy-1")
    assert row["state"] == "WAITING"
    assert row["active"] == 1
    assert row["ip"] == "127.0.0.1"
    assert row["cpu"] == "[37]"
    assert (row["free_memory"], row["total_memory"]) == (1000, 4000)
    # a second contact keeps one worker
    assert pickjob(api, "legacy-1", free_memory=900) == NOTHING
    assert worker_row(api, "legacy-1")["free_memory"] == 900


def test_pickjob_answers_the_job_tuple(api: httpx.Client) -> None:
    job = submit(
        api,
        title="frame",
        command="render -f 1",
        dir="/shots/sq010",
        user="bob",
        environment="A=1\nB=2",
    )
    answer = pick_until_job(api, "legacy-1")
    assert answer == (job, "render -f 1", "/shots/sq010", "bob", "A=1\\nB=2")
    shown = get(api, job)
    assert shown["state"] == "WORKING"
    assert shown["worker"] == "legacy-1"
    assert [e["state"] for e in events_of(api, job)] == ["WORKING"]
    assert worker_row(api, "legacy-1")["state"] == "WORKING"
    # handed over once: another worker asking gets nothing
    assert pickjob(api, "legacy-2") == NOTHING


def test_the_environment_arrives_with_backslash_n_between_pairs(api: httpx.Client) -> None:
    job = submit(api, title="env", command="env", environment="A=1\nB=2")
    text = pickjob(api, "legacy-1")
    deadline = time.monotonic() + PATIENCE
    while text == NOTHING and time.monotonic() < deadline:
        text = pickjob(api, "legacy-1")
    answer = ast.literal_eval(text)
    assert answer[0] == job
    environment = answer[4]
    # the two characters backslash and n, not a newline
    assert environment == "A=1" + "\\" + "n" + "B=2"
    assert "\n" not in environment
    assert environment.split("\\n") == ["A=1", "B=2"]
    # and in the text itself that backslash is escaped, so the literal evaluates to it
    assert text.endswith("'A=1\\\\nB=2')")


def test_a_job_without_environment_sends_an_empty_text(api: httpx.Client) -> None:
    job = submit(api, title="plain", command="true")
    assert pick_until_job(api, "legacy-1") == (job, "true", "", "", "")


@pytest.mark.parametrize(
    "command",
    [
        "echo 'single' \"double\"",
        "echo it's \"a\" 'b' \"\"\" '''",
        "C:\\Program Files\\app\\render.exe -o C:\\out\\ \\\\server\\share\\",
        "printf 'a\\tb\\n' \\' \\\"",
        "echo héllo wörld — 日本語 🎬 ß",
        "line one\nline two\ttabbed\r\nend",
        "echo '\\x41' \"\\u00e9\" \\N{BULLET}",
        "ends with a backslash \\",
    ],
)
def test_a_command_round_trips_exactly_through_literal_eval(
    api: httpx.Client, command: str
) -> None:
    job = submit(api, title="quotes", command=command, dir='/d\'ir "x" \\y', user="o'brien")
    answer = pick_until_job(api, "legacy-1")
    assert answer == (job, command, '/d\'ir "x" \\y', "o'brien", "")


def test_pickjob_takes_its_arguments_from_the_query_string(api: httpx.Client) -> None:
    response = api.post("/workers/pickjob", params=machine("legacy-q", load="[5, 6]"))
    assert response.status_code == 200, response.text
    assert response.text == NOTHING
    row = worker_row(api, "legacy-q")
    assert row["cpu"] == "[5,6]"
    assert row["total_memory"] == 4000

    job = submit(api, title="q", command="echo q")
    deadline = time.monotonic() + PATIENCE
    answer: Any = (-1,)
    while answer[0] == -1 and time.monotonic() < deadline:
        response = api.post("/workers/pickjob", params={"hostname": "legacy-q"})
        assert response.status_code == 200, response.text
        answer = ast.literal_eval(response.text)
    assert answer == (job, "echo q", "", "", "")

    response = api.post(
        "/workers/heartbeat",
        params={"hostname": "legacy-q", "jobId": job, "log": base64.b64encode(b"hi\n").decode()},
    )
    assert response.text == "true"
    response = api.post(
        "/workers/endjob", params={"hostname": "legacy-q", "jobId": job, "errorCode": 0}
    )
    assert response.status_code == 200, response.text
    assert get(api, job)["state"] == "FINISHED"
    assert log_of(api, job) == "hi\n"


def test_a_legacy_worker_takes_only_jobs_without_affinity(api: httpx.Client) -> None:
    linux = submit(api, title="linux", command="echo linux", affinity="LINUX", priority=5000)
    free = submit(api, title="free", command="echo free")
    assert pick_until_job(api, "legacy-1")[0] == free
    endjob(api, "legacy-1", free, 0)
    assert pickjob(api, "legacy-1") == NOTHING
    assert get(api, linux)["state"] == "WAITING"


# -- heartbeat ----------------------------------------------------------------------------


def test_heartbeat_appends_the_decoded_log_and_answers_true(api: httpx.Client) -> None:
    job = submit(api, title="t", command="render", progress_pattern="#%percent")
    (picked, *_) = pick_until_job(api, "legacy-1")
    assert picked == job
    assert heartbeat(api, "legacy-1", job, b"* START\nframe #2") == "true"
    assert heartbeat(api, "legacy-1", job, "5 é\n".encode()) == "true"
    assert heartbeat(api, "legacy-1", job) == "true"
    assert log_of(api, job) == "* START\nframe #25 é\n"
    assert get(api, job)["progress"] == pytest.approx(0.25)


def test_heartbeat_answers_false_once_the_job_is_paused(api: httpx.Client) -> None:
    job = submit(api, title="t", command="render")
    assert pick_until_job(api, "legacy-1")[0] == job
    assert heartbeat(api, "legacy-1", job, b"going\n") == "true"
    ok(api.post("/api/pausejobs", json=[job]))
    assert heartbeat(api, "legacy-1", job, b"still going\n") == "false"
    assert get(api, job)["state"] == "PAUSED"
    assert [e["state"] for e in events_of(api, job)] == ["CANCELED"]
    # the output after the pause is not the job's any more
    assert log_of(api, job) == "going\n"


def test_heartbeat_for_a_job_not_running_on_that_host_answers_false(api: httpx.Client) -> None:
    job = submit(api, title="t", command="render")
    assert pick_until_job(api, "legacy-1")[0] == job
    assert pickjob(api, "legacy-2") == NOTHING
    # another known host, an unknown host, a job that does not exist
    assert heartbeat(api, "legacy-2", job, b"not mine\n") == "false"
    assert heartbeat(api, "stranger", job, b"not mine\n") == "false"
    assert heartbeat(api, "legacy-1", job + 1000, b"nothing\n") == "false"
    assert log_of(api, job) == ""
    # the real run goes on
    assert heartbeat(api, "legacy-1", job, b"mine\n") == "true"
    assert get(api, job)["state"] == "WORKING"


def test_heartbeat_load_shows_as_the_cpu_text(api: httpx.Client) -> None:
    job = submit(api, title="t", command="render")
    assert pick_until_job(api, "legacy-1")[0] == job
    assert heartbeat(api, "legacy-1", job, load="[37, 12]", free_memory=512) == "true"
    row = worker_row(api, "legacy-1")
    assert row["cpu"] == "[37,12]"
    assert row["free_memory"] == 512


def test_each_pickjob_stores_the_machine_it_reports(api: httpx.Client) -> None:
    # the first makes contact the long way (the worker is new), the next within the pick
    for load, free in (("[10, 20]", 100), ("[55, 5]", 300)):
        assert pickjob(api, "legacy-1", load=load, free_memory=free) == NOTHING
        row = worker_row(api, "legacy-1")
        assert (row["cpu"], row["free_memory"]) == (load.replace(" ", ""), free)
    # a figure left out keeps the one known
    bare = api.post("/workers/pickjob", data={"hostname": "legacy-1", "load": "[1]"}, timeout=60)
    assert bare.text == NOTHING
    row = worker_row(api, "legacy-1")
    assert (row["cpu"], row["free_memory"]) == ("[1]", 300)


# -- endjob -------------------------------------------------------------------------------


def test_endjob_with_zero_finishes_and_nonzero_fails(api: httpx.Client) -> None:
    good = submit(api, title="good", command="true")
    bad = submit(api, title="bad", command="false", retry=0)
    first = pick_until_job(api, "legacy-1")[0]
    assert first == good
    endjob(api, "legacy-1", good, 0)
    assert get(api, good)["state"] == "FINISHED"
    assert get(api, good)["progress"] == 1.0
    assert [e["state"] for e in events_of(api, good)] == ["FINISHED"]
    row = worker_row(api, "legacy-1")
    assert (row["finished"], row["error"], row["state"]) == (1, 0, "WAITING")

    assert pick_until_job(api, "legacy-1")[0] == bad
    endjob(api, "legacy-1", bad, 3)
    assert get(api, bad)["state"] == "ERROR"
    assert [e["state"] for e in events_of(api, bad)] == ["ERROR"]
    row = worker_row(api, "legacy-1")
    assert (row["finished"], row["error"], row["state"]) == (1, 1, "WAITING")
    assert row["last_job"] == bad


def test_endjob_for_a_job_not_running_on_that_host_changes_nothing(api: httpx.Client) -> None:
    job = submit(api, title="t", command="render")
    assert pick_until_job(api, "legacy-1")[0] == job
    assert pickjob(api, "legacy-2") == NOTHING
    endjob(api, "legacy-2", job, 0)
    assert get(api, job)["state"] == "WORKING"
    assert worker_row(api, "legacy-2")["finished"] == 0
    endjob(api, "legacy-1", job, 0)
    assert get(api, job)["state"] == "FINISHED"


def test_endjob_with_a_windows_crash_code_fails_the_job(api: httpx.Client) -> None:
    # Windows reports a crash as an unsigned 32-bit exit code (0xC0000005)
    job = submit(api, title="crash", command="render.exe", retry=0)
    assert pick_until_job(api, "legacy-1")[0] == job
    response = api.post(
        "/workers/endjob", data={"hostname": "legacy-1", "jobId": job, "errorCode": 0xC0000005}
    )
    assert response.status_code == 200, response.text
    assert get(api, job)["state"] == "ERROR"
    assert [e["state"] for e in events_of(api, job)] == ["ERROR"]
    assert worker_row(api, "legacy-1")["error"] == 1


def test_a_legacy_worker_asking_for_a_job_has_dropped_its_previous_run(
    api: httpx.Client,
) -> None:
    # a legacy worker runs one job at a time: asking for another (after a crash and
    # restart, say) means the previous run is over; it must not stay WORKING forever
    first = submit(api, title="first", command="render")
    assert pick_until_job(api, "legacy-1")[0] == first
    (event,) = events_of(api, first)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        pickjob(api, "legacy-1")
        (old,) = [e for e in events_of(api, first) if e["id"] == event["id"]]
        if old["state"] != "WORKING":
            break
        time.sleep(0.2)
    assert old["state"] != "WORKING", "the abandoned run stayed WORKING"


# -- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "fields"),
    [
        ("pickjob", {"load": "[1]"}),
        ("pickjob", {"hostname": ""}),
        ("heartbeat", {"jobId": "1", "log": ""}),
        ("endjob", {"jobId": "1", "errorCode": "0"}),
    ],
)
def test_a_missing_hostname_is_a_400_with_a_reason(
    api: httpx.Client, sql: Sql, route: str, fields: dict[str, str]
) -> None:
    response = api.post(f"/workers/{route}", data=fields)
    assert response.status_code == 400, response.text
    assert "hostname" in response.text
    assert "hostname" in response.headers.get("x-corral-error", "")
    assert sql.fetchval("SELECT count(*) FROM workers") == 0


def test_numbers_that_are_not_numbers_are_a_400(api: httpx.Client, sql: Sql) -> None:
    response = api.post("/workers/pickjob", data=machine("legacy-1", free_memory="lots"))
    assert response.status_code == 400, response.text
    assert response.text
    response = api.post(
        "/workers/endjob", data={"hostname": "legacy-1", "jobId": "x", "errorCode": "0"}
    )
    assert response.status_code == 400, response.text
    assert sql.fetchval("SELECT count(*) FROM workers") == 0


@pytest.mark.parametrize(
    ("route", "fields"),
    [
        ("heartbeat", {"jobId": str(2**63), "log": ""}),
        ("heartbeat", {"jobId": str(2**70), "log": ""}),
        ("endjob", {"jobId": str(2**63), "errorCode": "0"}),
        ("pickjob", {"free_memory": str(2**63)}),
        ("heartbeat", {"jobId": "1", "total_memory": str(2**64)}),
    ],
)
def test_out_of_range_numbers_are_refused_not_a_500(
    api: httpx.Client, route: str, fields: dict[str, str]
) -> None:
    response = api.post(f"/workers/{route}", data={"hostname": "legacy-1", **fields})
    assert response.status_code < 500, response.text
    if route == "heartbeat" and response.status_code == 200:
        assert response.text == "false"
    else:
        assert response.status_code == 400, response.text


# -- the plugin switched off --------------------------------------------------------------


@pytest.mark.parametrize("config", [{"coalition_workers": {"enabled": False}}], indirect=True)
def test_with_the_plugin_off_the_legacy_routes_are_gone(api: httpx.Client, sql: Sql) -> None:
    for route in ("pickjob", "heartbeat", "endjob"):
        response = api.post(f"/workers/{route}", data={"hostname": "legacy-1", "jobId": "1"})
        assert response.status_code in {404, 405}, (route, response.status_code, response.text)
    assert sql.fetchval("SELECT count(*) FROM workers") == 0
    # the rest of the API still works
    job = submit(api, title="still here", command="echo")
    assert get(api, job)["title"] == "still here"
    response = api.get("/api/jobs")
    assert response.status_code == 200, response.text
    assert [j["id"] for j in response.json()] == [job]
