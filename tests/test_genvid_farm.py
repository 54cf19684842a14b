"""A Genvid service on a real farm: `corral serve` with a service in its config file, real
`corral worker` processes, and tasks that are real processes (docs/genvid.md)."""

import base64
import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import Processes, Served

PATIENCE = 60.0
SECRET = "s3cr3t-only-in-the-task"
TASK = """\
d="$RUNDIR/$NOMAD_ALLOC_ID"
mkdir -p "$d"
echo "$GENVID_COMMAND_SECRET" > "$d/secret"
echo "$GENVID_LOG_LEVEL_LEAF" > "$d/level"
echo "$GENVID_LOGGERS_FILE" > "$d/loggers"
echo $$ > "$d/pid"
i=0
while true; do
  i=$((i + 1))
  echo "tick $i"
  echo "warn $i" >&2
  sleep 0.2
done
"""


def wait_until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"never happened within {PATIENCE} s: {what}")


@pytest.fixture
def rundir(tmp_path: Path) -> Iterator[Path]:
    runs = tmp_path / "runs"
    runs.mkdir()
    yield runs
    # the tasks of a SIGKILLed worker outlive it: end them with the test
    for pid_file in runs.glob("*/pid"):
        with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)


@pytest.fixture
def farm(tmp_path: Path, rundir: Path, processes: Processes) -> Served:
    task = tmp_path / "task.sh"
    task.write_text(TASK)
    config = tmp_path / "corral.toml"
    config.write_text(
        f"""
[dispatch]
interval = 0.2
worker_timeout = 4.0
dead_worker_interval = 0.5

[genvid.settings]
reconcile_interval = 0.2

[genvid.jobs.web.groups.web]
command = "RUNDIR={rundir} exec sh {task}"
count_init = 2
count_max = 3
secrets = ["command"]
"""
    )
    server = processes.serve(["--data-dir", str(tmp_path / "data"), "--config", str(config)])
    server.wait_ready()
    return server


def summary(api: httpx.Client) -> dict[str, int]:
    [job] = api.get("/v1/jobs").json()
    counts: dict[str, int] = job["taskGroups"][0]["summary"]
    return counts


def live(rundir: Path, api: httpx.Client) -> dict[str, int]:
    """The running allocations' task process ids, by allocation id."""
    running = {m["allocID"] for m in api.get("/v1/log/meta/web").json() if m["status"] == "running"}
    pids: dict[str, int] = {}
    for alloc in running:
        pid_file = rundir / alloc / "pid"
        if pid_file.exists() and pid_file.read_text().strip():
            pids[alloc] = int(pid_file.read_text())
    return pids


def frames(api: httpx.Client, alloc: str, stream: str) -> bytes:
    """The whole stream, read as a tail loop reads it: frame after frame by offset."""
    data, offset = b"", 0
    while True:
        frame = api.get(f"/v1/log/fs/{alloc}/web/{stream}", params={"offset": offset}).json()
        if not frame["Data"]:
            return data
        data += base64.b64decode(frame["Data"])
        assert frame["Offset"] == len(data)
        offset = frame["Offset"]


def test_a_service_is_kept_at_its_count_through_kills_and_scaling(
    farm: Served, processes: Processes, rundir: Path
) -> None:
    api = httpx.Client(base_url=farm.url, timeout=30)
    assert api.post("/v1/log/logs", json=[{"id": "web", "job": "web"}]).status_code == 200
    assert api.post("/v1/log/defaults/leaf", json={"leaf": "debug"}).status_code == 200
    secret = api.post("/v1/secrets/secret/command", json={"GENVID_COMMAND_SECRET": SECRET})
    assert secret.status_code == 200, secret.text
    index = int(api.get("/v1/jobs").headers["waitIndex"])
    workers = {name: processes.worker(farm.url, name, slots=3) for name in ("node-a", "node-b")}
    assert api.post("/v1/jobs/start/web").json()["taskGroups"][0]["count"] == 2
    wait_until(lambda: len(live(rundir, api)) == 2, "two allocations running")
    assert int(api.get("/v1/jobs").headers["waitIndex"]) > index

    # each task got the secret, its logger levels and the loggers file
    for alloc in live(rundir, api):
        assert (rundir / alloc / "secret").read_text().strip() == SECRET
        assert (rundir / alloc / "level").read_text().strip() == "debug"
        loggers_file = Path((rundir / alloc / "loggers").read_text().strip())
        assert json.loads(loggers_file.read_text()) == {"leaf": "debug"}

    # a level changed for one running allocation reaches its loggers file
    alloc = sorted(live(rundir, api))[0]
    changed = api.post(f"/v1/log/allocs/{alloc}/leaf", json={"leaf": "error"})
    assert changed.json() == {"leaf": "error"}
    loggers_file = Path((rundir / alloc / "loggers").read_text().strip())
    wait_until(
        lambda: json.loads(loggers_file.read_text()) == {"leaf": "error"}, "the file rewritten"
    )

    # stdout and stderr are kept apart, and read frame by frame
    wait_until(lambda: b"tick 3\n" in frames(api, alloc, "stdout"), "three ticks")
    out, err = frames(api, alloc, "stdout"), frames(api, alloc, "stderr")
    assert out.startswith(b"tick 1\ntick 2\ntick 3\n")
    assert b"warn" not in out
    assert err.startswith(b"warn 1\nwarn 2\n")
    assert b"tick" not in err

    # a task killed is replaced
    killed = sorted(live(rundir, api))[0]
    os.kill(live(rundir, api)[killed], signal.SIGKILL)
    wait_until(lambda: summary(api)["failed"] == 1, "the killed allocation failed")
    wait_until(lambda: len(live(rundir, api)) == 2 and killed not in live(rundir, api), "replaced")

    # a worker killed: its allocations are lost and come back on the other
    def running_on() -> set[str]:
        return {e["worker"] for e in api.get("/api/events").json() if e["state"] == "WORKING"}

    victim = sorted(running_on())[0]
    survivor = next(name for name in workers if name != victim)
    before = summary(api)["lost"]
    workers[victim].kill()
    wait_until(lambda: summary(api)["lost"] > before, "allocations lost with their worker")
    wait_until(lambda: summary(api)["running"] == 2, "two running again")
    assert running_on() == {survivor}

    # scaling up and down
    assert (
        api.post(
            "/v1/jobs/updatecounts", json={"jobID": "web", "taskGroup": "web", "count": 1}
        ).json()["taskGroups"][0]["count"]
        == 3
    )
    wait_until(lambda: summary(api)["running"] == 3, "three running")
    completed = summary(api)["complete"]
    api.post("/v1/jobs/updatecounts", json={"jobID": "web", "taskGroup": "web", "count": -2})
    wait_until(lambda: summary(api)["running"] == 1, "one running")
    assert summary(api)["complete"] == completed + 2

    # the secret is in no answer, log or event
    answers = [
        api.get("/v1/jobs").text,
        api.get("/api/jobs").text,
        api.get("/api/events").text,
        api.get("/v1/log/meta/web").text,
        *(api.get(f"/api/jobs/{j['id']}/log").text for j in api.get("/api/jobs").json()),
        *(frames(api, a["allocID"], "stdout").decode() for a in api.get("/v1/log/meta/web").json()),
        api.get("/schema/openapi.json").text,
    ]
    for text in answers:
        assert SECRET not in text
    processes.close()
    for log in processes.logs.glob("*.log"):
        assert SECRET not in log.read_text(errors="replace"), log.name


def test_a_poll_on_one_server_process_wakes_on_a_change_through_another(
    tmp_path: Path, processes: Processes, database_url: str
) -> None:
    config = tmp_path / "corral.toml"
    config.write_text(
        f"""
[server]
database_url = "{database_url}"

[genvid.jobs.web.groups.web]
command = "sleep 600"
count_init = 1
count_max = 2
"""
    )
    first, second = (processes.serve(["--config", str(config)]) for _ in range(2))
    first.wait_ready()
    second.wait_ready()
    index = int(httpx.get(f"{first.url}/v1/jobs").headers["waitIndex"])
    with httpx.Client(base_url=first.url, timeout=PATIENCE) as api:
        answers: list[httpx.Response] = []
        poll = threading.Thread(
            target=lambda: answers.append(api.get("/v1/jobs", headers={"waitIndex": str(index)}))
        )
        poll.start()
        time.sleep(1.0)
        assert not answers, "the poll answered before any change"
        started = httpx.post(f"{second.url}/v1/jobs/start/web")
        assert started.status_code == 200, started.text
        poll.join(timeout=PATIENCE)
    (answer,) = answers
    assert int(answer.headers["waitIndex"]) > index
    [job] = answer.json()
    assert job["taskGroups"][0]["count"] == 1
