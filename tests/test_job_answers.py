"""What the answers say about a job's last run, with a real server and a real `corral
worker`: the exit code and the reason it ended on the job and its events (native and
Coalition), progress sent rounded, and a paused frame that does not look finished."""

import httpx

from tests.farm import get, ok, submit, until
from tests.processes import Processes


def test_jobs_and_events_say_how_the_last_run_ended(processes: Processes) -> None:
    server = processes.serve(["--data-dir", str(processes.logs / "data")])
    server.wait_ready()
    api = httpx.Client(base_url=server.url, timeout=30)
    fails = submit(api, title="fails", command="sh -c 'echo oops; exit 7'")
    # 0.4 as a real (float4) read as a double would be 0.4000000059604645
    slow = submit(
        api,
        title="slow",
        command="sh -c 'echo Progress: 40%; sleep 120'",
        progress_pattern="Progress: %percent%",
    )
    untouched = submit(api, title="never run", command="true", affinity="NOWHERE")
    processes.worker(server.url, "node-1", slots=2)

    until(lambda: get(api, fails)["state"] == "ERROR")
    failed = get(api, fails)
    assert (failed["exit_code"], failed["reason"]) == (7, "")
    [event] = api.get("/api/events", params={"job": fails}).json()
    assert (event["state"], event["exit_code"], event["reason"]) == ("ERROR", 7, "")
    page = api.get("/api/v2/jobs", params={"parent": 0}).json()["jobs"]
    assert {j["id"]: j["exit_code"] for j in page} == {fails: 7, slow: None, untouched: None}

    until(lambda: get(api, slow)["progress"] > 0)
    running = get(api, slow)
    assert running["progress"] == 0.4
    assert (running["state"], running["exit_code"], running["reason"]) == ("WORKING", None, "")
    page = api.get("/api/v2/jobs", params={"parent": 0}).json()["jobs"]
    assert [j["progress"] for j in page if j["id"] == slow] == [0.4]

    ok(api.post("/api/pausejobs", json=[slow]))
    paused = get(api, slow)
    # stopped, not done: its progress stays where it was, it has no exit code, and both
    # the job and its run say why
    assert paused["state"] == "PAUSED"
    assert (paused["progress"], paused["run_done"]) == (0.4, 0)
    assert (paused["exit_code"], paused["reason"]) == (None, "paused")
    [run] = api.get("/api/events", params={"job": slow}).json()
    assert (run["state"], run["exit_code"], run["reason"]) == ("CANCELED", None, "paused")

    # a run starting again clears them: it has not ended
    ok(api.post("/api/startjobs", json=[slow]))
    until(lambda: get(api, slow)["state"] == "WORKING")
    again = get(api, slow)
    assert (again["exit_code"], again["reason"]) == (None, "")

    # the last run that ended with exit 0 (a pick carrying the end)
    done = submit(api, title="done", command="true")
    until(lambda: get(api, done)["state"] == "FINISHED")
    assert (get(api, done)["exit_code"], get(api, done)["reason"]) == (0, "")
    # a reset starts the job over: no outcome of a run is left on it, its events keep it
    # (parked on an affinity no worker has, so that it does not run again meanwhile)
    ok(api.post("/api/jobs", json={str(fails): {"affinity": "NOWHERE"}}))
    ok(api.post("/api/resetjobs", json=[fails]))
    assert get(api, fails)["state"] == "WAITING"
    reset = get(api, fails)
    assert (reset["exit_code"], reset["reason"]) == (None, "")
    assert [e["exit_code"] for e in api.get("/api/events", params={"job": fails}).json()][-1] == 7
    never = get(api, untouched)
    assert (never["state"], never["exit_code"], never["reason"]) == ("WAITING", None, "")
