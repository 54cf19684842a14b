"""The `corral` command against a real server and a real worker: output, exit codes, a
pipe closed early, Ctrl-C, a server with no answer, and a start that imports no server."""

import ast
import json
import signal
import subprocess
import sys
import time

import httpx

from tests.farm import until
from tests.processes import CORRAL, Processes, free_port


def corral(server: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    # before a command's `--`; after the action of `workers` (whose own --server it reads)
    at = 2 if args[0] == "workers" and len(args) > 1 and not args[1].startswith("-") else 1
    return subprocess.run(
        [*CORRAL, *args[:at], "--server", server, *args[at:]],
        capture_output=True, text=True, timeout=120, check=False, input=stdin,
    )  # fmt: skip


# what a start-up must not load: the server, and any HTTP library beyond the standard one
_HEAVY = ("litestar", "asyncpg", "uvicorn", "core", "httpx", "httpcore", "rich")


def _loaded(argv: list[str]) -> tuple[list[str], str]:
    """The heavy modules `corral <argv>` loaded, run in a fresh interpreter, and what it
    wrote to stderr itself."""
    probe = (
        "import sys\nfrom api import cli\n"
        f"try:\n    cli.main({argv!r})\nexcept SystemExit:\n    pass\n"
        f"loaded = [m for m in sys.modules if m.split('.')[0] in {_HEAVY!r}]\n"
        "print('loaded:', loaded, file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    said, _, loaded = done.stderr.rpartition("loaded: ")
    return ast.literal_eval(loaded), said


def test_help_imports_no_server() -> None:
    assert _loaded(["--help"]) == ([], "")
    # a client command
    loaded, said = _loaded(["jobs", "--server", f"http://127.0.0.1:{free_port()}"])
    assert loaded == []
    assert "no answer from" in said
    version = subprocess.run([*CORRAL, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("corral ")


def test_no_answer_is_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(
        [*CORRAL, "jobs", "--server", url], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.startswith(f"corral: no answer from {url}: ")
    assert len(done.stderr.splitlines()) == 1


def test_commands(processes: Processes) -> None:
    server = processes.serve(["--data-dir", str(processes.logs / "data")])
    server.wait_ready()
    processes.worker(server.url, "node-1", affinity="LINUX")
    url = server.url

    ok = corral(url, "submit", "--wait", "--env", "X=1", "--tag", "t1", "--", "echo", "hello")
    assert ok.returncode == 0, ok.stderr
    job = int(ok.stdout.splitlines()[0])
    assert "FINISHED" in ok.stdout.splitlines()[-1]
    bad = corral(url, "submit", "--wait", "--title", "failing", "--", "exit 3")
    assert bad.returncode == 1
    assert "exit code 3" in bad.stdout.splitlines()[-1]
    failed = int(bad.stdout.splitlines()[0])
    held = corral(url, "submit", "--affinity", "GPU", "--after", str(job), "--", "echo", "gpu")
    gpu = int(held.stdout)

    listed = corral(url, "jobs")
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:3] == ["ID", "TITLE", "STATE"]
    assert [row.split()[0] for row in rows] == [str(job), str(failed), str(gpu)]
    assert rows[0].split()[1:3] == ["echo", "hello"]
    assert header.split()[-2:] == ["LAST", "RUN"]
    assert rows[1].split()[-2:] == ["exit", "3"]
    assert corral(url, "jobs", "--output", "id,exit_code", "--state", "ERROR").stdout == (
        f"{failed}\t3\n"
    )
    as_json = json.loads(corral(url, "jobs", "--json", "--state", "ERROR").stdout)
    assert [j["id"] for j in as_json] == [failed]
    columns = corral(url, "jobs", "--output", "id,state,affinity", "--affinity", "GPU")
    assert columns.stdout == f"{gpu}\tWAITING\tGPU\n"
    assert corral(url, "jobs", "--output", "nope").returncode == 2
    paged = corral(url, "jobs", "--limit", "1")
    assert f"add --after {job}" in paged.stderr

    assert corral(url, "log", str(job)).stdout == "hello\n"
    # several words are each one argument: the space inside one survives the shell
    words = corral(url, "submit", "--wait", "--", "printf", "%s|", "a b", "c")
    assert words.returncode == 0, words.stderr
    assert corral(url, "log", words.stdout.splitlines()[0]).stdout == "a b|c|"
    assert corral(url, "log", str(job), "--tail", "1", "--follow").stdout == "hello\n"
    events = corral(url, "events", str(failed)).stdout.splitlines()
    assert events[0].split() == ["RUN", "WORKER", "STATE", "START", "DURATION", "EXIT", "REASON"]
    assert events[1].split()[1:3] == ["node-1", "ERROR"]
    assert events[1].split()[-1] == "3"
    shown = corral(url, "show", str(gpu)).stdout
    assert f"waits for         {job} echo hello (FINISHED)" in shown
    assert "last run          exit 3\n" in corral(url, "show", str(failed)).stdout
    assert json.loads(corral(url, "show", str(job), "--json").stdout)["dependants"] == [gpu]

    # a filter asks first; nobody can answer on a pipe
    refused = corral(url, "pause", "--state", "WAITING")
    assert refused.returncode == 1
    assert "add --yes" in refused.stderr
    assert corral(url, "pause", "--state", "WAITING", "--yes").stdout == f"paused 1 job: {gpu}\n"
    assert corral(url, "start", str(gpu)).returncode == 0
    assert corral(url, "priority", "7", str(gpu)).returncode == 0
    assert json.loads(corral(url, "show", str(gpu), "--json").stdout)["job"]["priority"] == 7
    unknown = corral(url, "reset", "999")
    assert unknown.returncode == 1
    assert unknown.stderr == "corral: the server answered 404: no such job: 999\n"
    assert corral(url, "delete", str(gpu)).returncode == 1
    assert corral(url, "delete", str(gpu), "--yes").returncode == 0
    assert corral(url, "pause").returncode == 2

    edit = corral(url, "workers", "edit", "node-1", "--affinity", "LINUX;GPU")
    assert edit.returncode == 0, edit.stderr
    assert corral(url, "workers", "stop", "node-1").stdout == "stopped node-1\n"
    workers = json.loads(corral(url, "workers", "--json").stdout)
    assert [(w["affinity"], w["active"]) for w in workers] == [("LINUX\nGPU", 0)]
    assert corral(url, "workers", "start", "node-1").returncode == 0
    assert corral(url, "workers", "stop", "nobody").returncode == 1


def test_closed_pipe_and_ctrl_c(processes: Processes) -> None:
    server = processes.serve(["--data-dir", str(processes.logs / "data")])
    server.wait_ready()
    ids = [
        subprocess.run(
            [*CORRAL, "submit", "--server", server.url, "--affinity", "NONE", "--", "echo", str(i)],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout.strip()
        for i in range(3)
    ]  # fmt: skip
    # a reader that goes away after one line
    listing = subprocess.Popen(
        [*CORRAL, "jobs", "--watch", "0.1", "--server", server.url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert listing.stdout is not None
    assert listing.stderr is not None
    listing.stdout.readline()
    listing.stdout.close()
    listing.wait(timeout=60)
    assert b"Traceback" not in listing.stderr.read()

    waiting = subprocess.Popen(
        [*CORRAL, "submit", "--wait", "--server", server.url, "--after", ids[0], "--", "true"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert waiting.stdout is not None
    assert waiting.stdout.readline().strip().isdigit()
    # why it waits, from GET /api/v2/jobs/{id}/wait
    assert "waiting for job" in waiting.stdout.readline()
    waiting.send_signal(signal.SIGINT)
    _, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 130
    assert "Traceback" not in err
    assert "keeps running" in err


def test_serve_stops_quietly_with_its_local_worker(processes: Processes) -> None:
    server = processes.serve(
        ["--data-dir", str(processes.logs / "data"), "--local-worker",
         "--local-worker-affinity", "LINUX"]
    )  # fmt: skip
    server.wait_ready()
    until(lambda: "registered" in server.output())
    workers = httpx.get(f"{server.url}/api/workers").json()
    assert [w["affinity"] for w in workers] == ["LINUX"]
    # the local worker's pick is open, waiting for work
    time.sleep(1)
    server.process.send_signal(signal.SIGINT)
    assert server.process.wait(timeout=60) == 0
    assert "Traceback" not in server.output()
    assert "CancelledError" not in server.output()


def test_worker_keeps_edited_rules_across_restart(processes: Processes) -> None:
    server = processes.serve(["--data-dir", str(processes.logs / "data")])
    server.wait_ready()
    first = processes.worker(server.url, "node-r", affinity="LINUX")

    def rules() -> list[str]:
        return [w["affinity"] for w in httpx.get(f"{server.url}/api/workers").json()]

    until(lambda: rules() == ["LINUX"])
    assert corral(server.url, "workers", "edit", "node-r", "--affinity", "GPU").returncode == 0
    assert first.stop() == 0

    # started again without --affinity: the rules an admin gave it stay
    again = processes.worker(server.url, "node-r", affinity=None)
    until(lambda: "registered as node-r" in again.output())
    assert rules() == ["GPU"]
    assert again.stop() == 0

    # given, they replace what it had
    third = processes.worker(server.url, "node-r", affinity="LINUX;GPU")
    until(lambda: "registered as node-r" in third.output())
    assert rules() == ["LINUX\nGPU"]


def test_frames_and_groups(processes: Processes) -> None:
    server = processes.serve(["--data-dir", str(processes.logs / "data")])
    server.wait_ready()
    processes.worker(server.url, "node-f", affinity="LINUX")
    url = server.url

    group = corral(url, "submit", "--group", "--title", "shot 030")
    assert group.returncode == 0, group.stderr
    shot = group.stdout.strip()
    # the last frame fails (one slot: they run in order), so the group ends in error and
    # --wait says how many finished
    frames = corral(
        url, "submit", "--wait", "--parent", shot, "--title", "plates", "--frames", "1-3",
        "--affinity", "LINUX", "--progress-pattern", r"(\d+)%",
        "--", "echo 50%; echo {frame}; test {frame} -ne 3",
    )  # fmt: skip
    assert frames.returncode == 1, frames.stderr
    plates = frames.stdout.splitlines()[0]
    assert frames.stdout.splitlines()[-1] == f"job {plates} ERROR: 2/3 finished, 1 failed"
    listed = corral(url, "jobs", "--parent", plates, "--output", "title,state,affinity,command")
    assert listed.stdout.splitlines() == [
        f"frame {n}\t{state}\tLINUX\techo 50%; echo {n}; test {n} -ne 3"
        for n, state in ((1, "FINISHED"), (2, "FINISHED"), (3, "ERROR"))
    ]
    first = corral(url, "jobs", "--parent", plates, "--output", "id", "--limit", "1")
    assert corral(url, "log", first.stdout.strip()).stdout == "50%\n1\n"
    # the frames' group sits in the group given, and carries no command of its own
    assert corral(url, "jobs", "--parent", shot, "--output", "id,title,command").stdout == (
        f"{plates}\tplates\t\n"
    )
    asked = corral(url, "reset", shot)
    assert f"Reset 1 job ({shot}), a group of 3 jobs?" in asked.stderr

    for wrong in (["--frames", "3-1"], ["--frames", "1-x"], ["--frames", "1-1000000000"]):
        refused = corral(url, "submit", *wrong, "--", "echo {frame}")
        assert refused.returncode == 2
        assert "argument --frames" in refused.stderr
    no_frame = corral(url, "submit", "--frames", "1-3", "--", "echo")
    assert no_frame.returncode == 2
    assert no_frame.stderr == "corral: --frames needs {frame} in the command: render -f {frame}\n"
    assert corral(url, "submit", "--group", "--", "echo").returncode == 2
    both = corral(url, "submit", "--group", "--frames", "1-3", "--", "echo {frame}")
    assert both.returncode == 2
    assert "not allowed with argument --group" in both.stderr
    # nothing was submitted by the refusals
    assert corral(url, "jobs", "--output", "id").stdout == f"{shot}\n"
