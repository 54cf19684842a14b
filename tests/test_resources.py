"""Resources: jobs that declare what a run needs start only on workers with that much
free, through the real dispatch (the native worker protocol against a real server), the
`resources` plugin on its own, and `corral worker --resources`."""

import subprocess
from typing import Any

import httpx
import pytest

from core.config import Config, DispatchConfig, ServerConfig
from core.hookspecs import FarmView, JobView, WorkerView
from plugins.resources import ResourcesPlugin, ResourcesSettings
from tests.farm import get
from tests.processes import CORRAL


@pytest.fixture
def config(tmp_path: Any) -> Config:
    # a pick that finds nothing answers at once
    return Config(
        server=ServerConfig(data_dir=str(tmp_path)),
        dispatch=DispatchConfig(pick_wait=0.3, interval=0.1),
    )


def register(api: httpx.Client, name: str, slots: int, **resources: float) -> None:
    body = {"name": name, "slots": slots, "resources": resources}
    assert api.post("/api/v2/workers/register", json=body).status_code == 200


def pick(api: httpx.Client, name: str, slots: int) -> list[int]:
    response = api.post(f"/api/v2/workers/{name}/pick", json={"slots": slots, "wait": 0.3})
    assert response.status_code == 200, response.text
    return [run["job"] for run in response.json()["runs"]]


def submit(api: httpx.Client, title: str, **resources: float) -> int:
    response = api.put(
        "/api/jobs", json={"title": title, "command": "true", "resources": resources}
    )
    assert response.status_code == 200, response.text
    job_id: int = response.json()
    return job_id


def test_a_job_runs_only_where_what_it_needs_is_free(api: httpx.Client) -> None:
    register(api, "small", 4, cpus=2, gpus=0)
    # one slot, so that once it has its run it wants no more (a worker's demand outlives
    # its pick until it asks again)
    register(api, "big", 1, cpus=8, gpus=1)
    render = submit(api, "needs a gpu", gpus=1)
    # the small node asks first, and is offered nothing: it has no gpu
    assert pick(api, "small", 4) == []
    assert pick(api, "big", 1) == [render]
    frames = [submit(api, f"frame {i}", cpus=1) for i in range(3)]
    # two cores: two of the frames, though it has four slots (one pass counts its own)
    first = pick(api, "small", 4)
    assert first == frames[:2]
    assert pick(api, "small", 2) == [], "its cores are taken by the runs it has"
    events = {run["job"]: run["event"] for run in _runs(api, "small")}
    finished = api.post(
        "/api/v2/workers/small/finish",
        json={"event": events[first[0]], "exit_code": 0},
    )
    assert finished.status_code == 200, finished.text
    assert pick(api, "small", 2) == [frames[2]]
    # a job needing a licence nobody offers waits; a worker offering nothing (a legacy
    # Coalition worker) is not checked, and takes it
    licensed = submit(api, "licence", nuke=1)
    assert pick(api, "small", 1) == []
    register(api, "legacy", 1)
    assert pick(api, "legacy", 1) == [licensed]
    assert get(api, licensed)["worker"] == "legacy"


def _runs(api: httpx.Client, worker: str) -> list[dict[str, Any]]:
    events = api.get("/api/events", params={"worker": worker}).json()
    return [{"job": e["job_id"], "event": e["id"]} for e in events if e["state"] == "WORKING"]


def view(**resources: float) -> JobView:
    return JobView(
        id=1, parent=0, title="t", user="", priority=0, prio_path=(0,),
        affinities=frozenset(), tags=frozenset(), retry=0, run_done=0, timeout=0,
        resources=resources,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("needs", "offered", "in_use", "assigned", "held"),
    [
        ({}, {"cpus": 1}, {}, {}, None),
        ({"cpus": 4}, {}, {}, {}, None),
        ({"cpus": 4}, {"cpus": 4}, {}, {}, None),
        ({"cpus": 4}, {"cpus": 4}, {"cpus": 1}, {}, "needs 4 cpus; w has 3 free"),
        ({"cpus": 2}, {"cpus": 4}, {"cpus": 1}, {"cpus": 2}, "needs 2 cpus; w has 1 free"),
        ({"gpus": 1}, {"cpus": 4}, {}, {}, "needs 1 gpus; w has 0 free"),
        ({"mem": 512.5}, {"mem": 1024}, {"mem": 511.5}, {}, None),
    ],
)
def test_the_plugin_holds_a_job_back_while_its_needs_are_not_free(
    needs: dict[str, float],
    offered: dict[str, float],
    in_use: dict[str, float],
    assigned: dict[str, float],
    held: str | None,
) -> None:
    worker = WorkerView(name="w", rules=(), slots=4, running=0, resources=offered, in_use=in_use)
    farm = FarmView(running_by_tag={}, running_by_user={}, running=0, assigned={"w": assigned})
    plugin = ResourcesPlugin(ResourcesSettings())
    assert plugin.corral_admit(job=view(**needs), worker=worker, farm=farm) == held


@pytest.mark.parametrize(
    ("given", "says"),
    [("cpus", "is not name=amount"), ("gpus=lots", "not a number"), ("mem=-1", "negative")],
)
def test_bad_resources_on_the_command_line_are_refused(given: str, says: str) -> None:
    result = subprocess.run(
        [*CORRAL, "worker", "--resources", given],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert says in result.stderr
