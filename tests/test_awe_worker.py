"""AWE's own Go worker (awe-worker 0.9.68, built from ../shared) runs workflows against a
real Corral server: checkout through the dispatcher, inputs by URL from the node store,
outputs uploaded to it, reports (docs/awe.md)."""

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import httpx

from tests.awe import awe_worker, awe_worker_binary, wait_for
from tests.processes import CORRAL

__all__ = ["awe_worker_binary"]

# task 0 lingers after its echo: awe-worker copies a command's stdout in a goroutine that
# its cmd.Wait() races, and the report of a command that exits at once can lack it
WORKFLOW: dict[str, Any] = {
    "info": {"name": "demo", "user": "ana", "pipeline": "demo"},
    "tasks": [
        {"taskid": "0",
         "cmd": {"name": "bash", "args": "-c 'echo made a; echo hello > a.txt; sleep 1'"},
         "outputs": [{"filename": "a.txt"}]},
        {"taskid": "1", "cmd": {"name": "bash", "args": "-c 'echo rank; cat a.txt a.txt > b.txt'"},
         "inputs": [{"filename": "a.txt", "origin": "0"}], "outputs": [{"filename": "b.txt"}],
         "totalwork": 2},
        {"taskid": "2", "cmd": {"name": "bash", "args": "-c 'echo done'"}, "dependsOn": ["1"]},
    ],
}  # fmt: skip


def job(api: httpx.Client, job_id: str) -> dict[str, Any]:
    response = api.get(f"/awe/job/{job_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()["data"]
    return found


def test_a_three_task_workflow_runs_to_completed_with_its_files_in_the_node_store(
    api: httpx.Client, awe_worker_binary: Path, tmp_path: Path
) -> None:
    submitted = api.post("/awe/job", files={"upload": ("wf.json", json.dumps(WORKFLOW).encode())})
    assert submitted.status_code == 200, submitted.text
    job_id = submitted.json()["data"]["id"]
    with awe_worker(awe_worker_binary, str(api.base_url), tmp_path / "w1"):
        wait_for(lambda: job(api, job_id)["state"] == "completed", timeout=120)
    done = job(api, job_id)
    assert [(t["task_name"], t["state"], t["remainwork"]) for t in done["tasks"]] == [
        ("0", "completed", 0), ("1", "completed", 0), ("2", "completed", 0)
    ]  # fmt: skip
    nodes = {o["filename"]: o["node"] for t in done["tasks"] for o in t["outputs"]}
    a = api.get(f"/awe/node/{nodes['a.txt']}", params={"download": ""})
    assert a.content == b"hello\n"
    # two ranks, each its part of the parts node, joined in rank order
    b = api.get(f"/awe/node/{nodes['b.txt']}", params={"download": ""})
    assert b.content == b"hello\nhello\n" * 2
    meta = api.get(f"/awe/node/{nodes['b.txt']}").json()["data"]
    assert meta["file"]["checksum"]["md5"] == hashlib.md5(b.content).hexdigest()
    stdout = api.get(f"/awe/work/{job_id}_0_0", params={"report": "stdout"}).json()
    assert stdout["data"].startswith("made a")
    # the same job is a group tree in Corral's own API
    roots = {j["title"]: j for j in api.get("/api/jobs").json()}
    assert roots["demo"]["state"] == "FINISHED"
    assert roots["demo"]["total"] == 4
    # and `corral jobs --tree` shows it: the job, its tasks, their workunits
    listed = subprocess.run(
        [*CORRAL, "jobs", "--tree", "--server", str(api.base_url)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    title = slice(header.index("TITLE"), header.index("STATE"))
    assert [row[title].rstrip() for row in rows] == [
        "demo", "  0", "    0_0", "  1", "    1_1", "    1_2", "  2", "    2_0"
    ]  # fmt: skip
