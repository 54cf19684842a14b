"""Scheduling plugins: loading them (the built-in ones and the example package of
docs/examples/corral-nightshift, installed for real), `corral plugins`, configuration
errors, each built-in policy's decisions through the plugin manager, and the `limits`
plugin holding jobs back in a real dispatch."""

import importlib
import importlib.metadata
import json
import re
import site
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.config import Config, DispatchConfig
from core.hookspecs import (
    DependencyView,
    FarmView,
    JobView,
    RetryDecision,
    RunOutcome,
    RunView,
    WorkerView,
)
from core.plugins import Plugins
from tests.conftest import Sql

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "corral-nightshift"
DIST = "corral-nightshift"
CORRAL = [sys.executable, "-m", "api.cli"]

BUILT_IN: dict[str, tuple[bool, list[str], dict[str, Any]]] = {
    # name: enabled by default, hooks, default settings
    "affinity": (True, ["corral_affinity_rank"], {"unaffiliated_last": True}),
    "dependencies": (True, ["corral_dependencies_met"], {}),
    "ordering": (True, ["corral_order"], {"tie_break": "fifo"}),
    "retry": (True, ["corral_retry"], {"backoff": 0.0, "factor": 2.0, "max_backoff": 600.0}),
    "timeout": (True, ["corral_timeout"], {"default_timeout": 0}),
    "limits": (
        False,
        ["corral_admit"],
        {"per_tag": {}, "per_user": {}, "default_per_user": 0},
    ),
    "coalition_workers": (True, [], {}),
    "placement": (True, ["corral_admit"], {}),
}
NIGHTSHIFT_DEFAULTS: dict[str, Any] = {
    "tag": "heavy",
    "night_start": 20,
    "night_end": 7,
    "max_heavy_by_day": 2,
    "log_path": "",
    "pretend_hour": None,
}


# --- the example package, installed as a studio would ----------------------------------


def _activate(dist_name: str) -> None:
    """Process the .pth files an install just added, as a fresh interpreter would at
    start-up: an editable install makes its package importable through one."""
    dist = importlib.metadata.distribution(dist_name)
    for file in dist.files or []:
        if file.suffix == ".pth":
            path = Path(str(dist.locate_file(file)))
            site.addpackage(str(path.parent), path.name, None)


@pytest.fixture(scope="session", autouse=True)
def nightshift_installed() -> None:
    """Install docs/examples/corral-nightshift into the running environment (editable)
    unless it already is, so its `corral` entry point is there for the server, the
    command line and the plugin manager."""
    try:
        importlib.import_module("corral_nightshift")
    except ImportError:
        pass
    else:
        return
    # the dev extra brings a setuptools that builds editable installs without the index
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "-e", str(EXAMPLE)],
        check=True,
    )  # fmt: skip
    importlib.invalidate_caches()
    _activate(DIST)
    importlib.import_module("corral_nightshift")


# --- `corral plugins` -------------------------------------------------------------------


def corral(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CORRAL, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def listed(stdout: str) -> dict[str, dict[str, Any]]:
    """The output of `corral plugins`, by plugin name."""
    found: dict[str, dict[str, Any]] = {}
    lines = stdout.splitlines()
    for index, line in enumerate(lines):
        head = re.fullmatch(r"(\S+) \((enabled|disabled)\) from (.+)", line)
        if head is None:
            continue
        hooks = lines[index + 1].removeprefix("  hooks: ")
        settings = lines[index + 2].removeprefix("  settings: ")
        found[head[1]] = {
            "enabled": head[2] == "enabled",
            "source": head[3],
            "hooks": [] if hooks == "-" else hooks.split(", "),
            "settings": json.loads(settings),
        }
    return found


def nightshift_source() -> str:
    version = importlib.metadata.version(DIST)
    return f"corral_nightshift.plugin:NightShiftPlugin ({DIST} {version})"


def test_corral_plugins_lists_the_built_in_ones_and_the_installed_nightshift() -> None:
    result = corral("plugins")
    assert result.returncode == 0, result.stderr
    plugins = listed(result.stdout)
    for name, (enabled, hooks, settings) in BUILT_IN.items():
        assert plugins[name] == {
            "enabled": enabled,
            "source": "built-in",
            "hooks": hooks,
            "settings": settings,
        }, name
    assert plugins["nightshift"] == {
        "enabled": False,
        "source": nightshift_source(),
        "hooks": ["corral_admit", "corral_job_state_changed"],
        "settings": NIGHTSHIFT_DEFAULTS,
    }
    assert importlib.metadata.version(DIST) == "0.1.0"


def test_corral_plugins_shows_what_the_config_file_switches_on_and_sets(tmp_path: Path) -> None:
    config = tmp_path / "corral.toml"
    log = tmp_path / "jobs.log"
    config.write_text(
        "[plugins.nightshift]\n"
        "enabled = true\n"
        "night_start = 22\n"
        "night_end = 6\n"
        "max_heavy_by_day = 0\n"
        f'log_path = "{log}"\n'
        "\n"
        "[plugins.limits]\n"
        "enabled = true\n"
        "per_tag = { nuke = 4 }\n"
        "\n"
        "[plugins.coalition_workers]\n"
        "enabled = false\n"
    )
    result = corral("plugins", "--config", str(config))
    assert result.returncode == 0, result.stderr
    plugins = listed(result.stdout)
    assert plugins["nightshift"] == {
        "enabled": True,
        "source": nightshift_source(),
        "hooks": ["corral_admit", "corral_job_state_changed"],
        "settings": {
            **NIGHTSHIFT_DEFAULTS,
            "night_start": 22,
            "night_end": 6,
            "max_heavy_by_day": 0,
            "log_path": str(log),
        },
    }
    assert plugins["limits"]["enabled"] is True
    assert plugins["limits"]["settings"]["per_tag"] == {"nuke": 4}
    assert plugins["coalition_workers"]["enabled"] is False
    assert plugins["retry"]["enabled"] is True


BAD_CONFIGS = [
    pytest.param("[plugins.nosuch]\n", ["nosuch", "unknown plugin"], id="unknown-plugin"),
    pytest.param(
        "[plugins.nightshift]\nbogus = 1\n",
        ["[plugins.nightshift]", "bogus"],
        id="unknown-setting",
    ),
    pytest.param(
        '[plugins.limits]\nper_tag = "x"\n', ["[plugins.limits]", "per_tag"], id="wrong-type"
    ),
    pytest.param(
        '[plugins.retry]\nenabled = "yes"\n', ["[plugins.retry]", "enabled"], id="enabled-str"
    ),
    pytest.param(
        "[plugins.nightshift]\nnight_start = 24\n",
        ["[plugins.nightshift]", "night_start", "23"],
        id="out-of-range",
    ),
]


@pytest.mark.parametrize(("toml", "named"), BAD_CONFIGS)
def test_a_bad_plugin_setting_stops_corral_plugins_naming_plugin_and_key(
    tmp_path: Path, toml: str, named: list[str]
) -> None:
    config = tmp_path / "corral.toml"
    config.write_text(toml)
    result = corral("plugins", "--config", str(config))
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    [message] = result.stderr.strip().splitlines()
    assert message.startswith(f"corral: config file {config}: [plugins")
    for word in named:
        assert word in message


@pytest.mark.parametrize(("toml", "named"), BAD_CONFIGS)
def test_a_bad_plugin_setting_stops_corral_serve_before_anything_starts(
    tmp_path: Path, toml: str, named: list[str]
) -> None:
    config = tmp_path / "corral.toml"
    config.write_text(toml)
    data = tmp_path / "data"
    result = corral("serve", "--config", str(config), "--data-dir", str(data), "--port", "0")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    [message] = result.stderr.strip().splitlines()
    assert message.startswith(f"corral: config file {config}: [plugins")
    for word in named:
        assert word in message
    assert not data.exists(), "no embedded PostgreSQL was started"


# --- each policy's decisions, through the plugin manager --------------------------------


def job(
    job_id: int = 1,
    *,
    title: str = "",
    user: str = "alice",
    prio_path: tuple[int, ...] = (1000,),
    tags: tuple[str, ...] = (),
    retry: int = 0,
    run_done: int = 0,
    timeout: int = 0,
) -> JobView:
    return JobView(
        id=job_id,
        parent=0,
        title=title or f"job {job_id}",
        user=user,
        priority=prio_path[-1],
        prio_path=prio_path,
        affinities=frozenset(),
        tags=frozenset(tags),
        retry=retry,
        run_done=run_done,
        timeout=timeout,
    )


def worker(*rules: set[str]) -> WorkerView:
    return WorkerView(name="node-1", rules=tuple(frozenset(r) for r in rules), slots=4, running=0)


def farm(tags: dict[str, int] | None = None, users: dict[str, int] | None = None) -> FarmView:
    users = users or {}
    return FarmView(running_by_tag=tags or {}, running_by_user=users, running=sum(users.values()))


def run_of(the_job: JobView, elapsed: float) -> RunView:
    return RunView(job=the_job, worker="node-1", event=7, started=1000.0, elapsed=elapsed)


def rank(plugins: Plugins, affinities: set[str], the_worker: WorkerView) -> int | None:
    answer: int | None = plugins.hook.corral_affinity_rank(
        affinities=frozenset(affinities), worker=the_worker
    )
    return answer


def admit(plugins: Plugins, the_job: JobView, the_farm: FarmView) -> list[str]:
    """The reasons given to hold `the_job` back; none lets it through."""
    reasons: list[str] = plugins.hook.corral_admit(job=the_job, worker=worker(), farm=the_farm)
    return reasons


def test_affinity_ranks_by_rule_order_puts_unaffiliated_jobs_last_and_refuses() -> None:
    plugins = Plugins({})
    node = worker({"GPU"}, {"LINUX", "NUKE"})
    assert rank(plugins, {"GPU"}, node) == 0
    assert rank(plugins, {"NUKE"}, node) == 1
    assert rank(plugins, {"LINUX", "NUKE"}, node) == 1
    assert rank(plugins, set(), node) == 2, "no affinity: after every rule"
    assert rank(plugins, {"GPU", "LINUX"}, node) is None, "no single rule has both"
    assert rank(plugins, {"MAYA"}, node) is None
    assert rank(plugins, set(), worker()) == 0
    assert rank(plugins, {"GPU"}, worker()) is None


def test_affinity_settings_and_switching_it_off() -> None:
    first = Plugins({"affinity": {"unaffiliated_last": False}})
    assert rank(first, set(), worker({"GPU"}, {"LINUX"})) == 0
    off = Plugins({"affinity": {"enabled": False}})
    assert not off.implements("corral_affinity_rank"), "the planner then lets anyone take all"


def test_dependencies_are_met_when_every_one_finished() -> None:
    plugins = Plugins({})

    def met(*states: str) -> bool | None:
        deps = [DependencyView(id=i, title=f"dep {i}", state=s) for i, s in enumerate(states)]
        answer: bool | None = plugins.hook.corral_dependencies_met(job=job(9), dependencies=deps)
        return answer

    assert met("FINISHED", "FINISHED") is True
    assert met() is True
    assert met("FINISHED", "WORKING") is False
    assert met("ERROR") is False


def test_ordering_is_hierarchical_priority_then_first_come_first_served() -> None:
    candidates = [
        job(1, prio_path=(1000, 10)),
        job(2, prio_path=(2000, 1)),  # a low job of a high group goes first
        job(3, prio_path=(1000, 10)),
        job(4, prio_path=(1000, 50)),
        job(5, prio_path=(999, 9999)),
    ]

    def order(settings: Mapping[str, Mapping[str, object]]) -> list[int]:
        ordered = Plugins(settings).hook.corral_order(candidates=candidates, worker=worker())
        return [j.id for j in ordered]

    assert order({}) == [2, 4, 1, 3, 5]
    assert order({"ordering": {"tie_break": "lifo"}}) == [2, 4, 3, 1, 5]
    off = Plugins({"ordering": {"enabled": False}})
    assert off.hook.corral_order(candidates=candidates, worker=worker()) is None, "id order"


def test_retry_requeues_while_run_done_is_at_most_retry() -> None:
    plugins = Plugins({})

    def decide(retry: int, run_done: int) -> RetryDecision | None:
        failed = job(3, retry=retry, run_done=run_done)
        outcome = RunOutcome(run=run_of(failed, 5.0), exit_code=1, timed_out=False)
        answer: RetryDecision | None = plugins.hook.corral_retry(job=failed, outcome=outcome)
        return answer

    # run_done counts the failed run: retry=2 allows runs 1, 2 and 3
    assert decide(2, 1) == RetryDecision(action="requeue", delay=0.0)
    assert decide(2, 2) == RetryDecision(action="requeue", delay=0.0)
    assert decide(2, 3) == RetryDecision(action="fail")
    assert decide(0, 1) == RetryDecision(action="fail")


def test_retry_backoff_grows_by_its_factor_up_to_its_cap() -> None:
    plugins = Plugins({"retry": {"backoff": 10, "factor": 3, "max_backoff": 100}})
    delays = []
    for run_done in range(1, 6):
        failed = job(3, retry=10, run_done=run_done)
        outcome = RunOutcome(run=run_of(failed, 5.0), exit_code=None, timed_out=True)
        decision = plugins.hook.corral_retry(job=failed, outcome=outcome)
        assert decision.action == "requeue"
        delays.append(decision.delay)
    assert delays == [10, 30, 90, 100, 100]
    off = Plugins({"retry": {"enabled": False}})
    failed = job(3, retry=10, run_done=1)
    outcome = RunOutcome(run=run_of(failed, 1.0), exit_code=1, timed_out=False)
    assert off.hook.corral_retry(job=failed, outcome=outcome) is None, "then: ERROR"


def test_timeout_stops_runs_past_the_job_timeout_or_the_default() -> None:
    def stops(settings: Mapping[str, Mapping[str, object]], timeout: int, elapsed: float) -> bool:
        plugins = Plugins(settings)
        decision = plugins.hook.corral_timeout(
            run=run_of(job(4, timeout=timeout), elapsed), now=2000.0
        )
        return decision is not None

    assert stops({}, 60, 61)
    assert not stops({}, 60, 59)
    assert not stops({}, 0, 1e6), "no timeout anywhere: no limit"
    default = {"timeout": {"default_timeout": 30}}
    assert stops(default, 0, 31)
    assert not stops(default, 0, 29)
    assert not stops(default, 60, 45), "the job's own timeout wins over the default"
    decision = Plugins({}).hook.corral_timeout(run=run_of(job(4, timeout=60), 61), now=0.0)
    assert "60" in decision.reason


def test_limits_are_off_by_default() -> None:
    assert admit(Plugins({}), job(tags=("nuke",)), farm({"nuke": 100}, {"alice": 100})) == []


def test_limits_per_tag_per_user_and_default_per_user() -> None:
    plugins = Plugins(
        {
            "limits": {
                "enabled": True,
                "per_tag": {"nuke": 2},
                "per_user": {"intern": 1, "guest": 0},
                "default_per_user": 3,
            }
        }
    )
    nuke = job(tags=("nuke", "comp"))
    assert admit(plugins, nuke, farm({"nuke": 1})) == []
    held = admit(plugins, nuke, farm({"nuke": 2}))
    assert len(held) == 1
    assert "nuke" in held[0]
    assert admit(plugins, job(), farm({"nuke": 2})) == [], "untagged jobs are not limited"

    intern = job(user="intern")
    assert admit(plugins, intern, farm(users={"intern": 0})) == []
    assert "intern" in admit(plugins, intern, farm(users={"intern": 1}))[0]
    assert admit(plugins, job(user="guest"), farm()) != [], "a per_user limit of 0: none"

    assert admit(plugins, job(user="bob"), farm(users={"bob": 2})) == []
    assert "bob" in admit(plugins, job(user="bob"), farm(users={"bob": 3}))[0]
    unlimited = Plugins({"limits": {"enabled": True}})
    assert admit(unlimited, job(user="bob"), farm(users={"bob": 1000})) == []


# --- the example plugin -----------------------------------------------------------------


def nightshift(hour: int | None, **settings: object) -> Plugins:
    table: dict[str, object] = {"enabled": True, "max_heavy_by_day": 1, **settings}
    if hour is not None:
        table["pretend_hour"] = hour
    return Plugins({"nightshift": table})


def test_nightshift_is_off_until_switched_on() -> None:
    plugins = Plugins({"nightshift": {"pretend_hour": 12, "max_heavy_by_day": 0}})
    assert not plugins.enabled("nightshift")
    assert admit(plugins, job(tags=("heavy",)), farm()) == []


def test_nightshift_holds_heavy_jobs_by_day_once_enough_run() -> None:
    heavy = job(tags=("heavy", "houdini"))
    noon = nightshift(12)
    assert admit(noon, heavy, farm()) == [], "below max_heavy_by_day"
    held = admit(noon, heavy, farm({"heavy": 1}))
    assert len(held) == 1
    assert "night" in held[0]
    assert admit(noon, job(tags=("houdini",)), farm({"heavy": 5})) == [], "only heavy jobs"
    # the night ends at night_end:00
    assert admit(nightshift(7), heavy, farm({"heavy": 1})) != []
    assert admit(nightshift(19), heavy, farm({"heavy": 1})) != []
    assert admit(nightshift(12, max_heavy_by_day=0), heavy, farm()) != []


def test_nightshift_lets_heavy_jobs_run_at_night() -> None:
    heavy = job(tags=("heavy",))
    busy = farm({"heavy": 50})
    for hour in (20, 23, 0, 3, 6):
        assert admit(nightshift(hour), heavy, busy) == [], hour
    # a night that does not span midnight
    assert admit(nightshift(3, night_start=1, night_end=5), heavy, busy) == []
    assert admit(nightshift(5, night_start=1, night_end=5), heavy, busy) != []
    assert admit(nightshift(23, night_start=1, night_end=5), heavy, busy) != []
    # another tag
    sims = nightshift(12, tag="sim")
    assert admit(sims, heavy, busy) == []
    assert admit(sims, job(tags=("sim",)), farm({"sim": 1})) != []


def test_nightshift_and_limits_are_both_asked() -> None:
    plugins = Plugins(
        {
            "nightshift": {"enabled": True, "pretend_hour": 12, "max_heavy_by_day": 1},
            "limits": {"enabled": True, "per_tag": {"heavy": 1}},
        }
    )
    assert len(admit(plugins, job(tags=("heavy",)), farm({"heavy": 1}))) == 2
    assert admit(plugins, job(tags=("heavy",)), farm()) == []


def test_nightshift_reads_the_clock_without_pretend_hour() -> None:
    plugins = nightshift(None, night_start=0, night_end=0, max_heavy_by_day=1)
    # night_start == night_end: never night, whatever the time
    assert admit(plugins, job(tags=("heavy",)), farm({"heavy": 1})) != []
    assert admit(plugins, job(tags=("heavy",)), farm()) == []


def test_nightshift_writes_a_line_per_job_state_change(tmp_path: Path) -> None:
    log = tmp_path / "jobs.log"
    log.write_text("earlier line\n")
    plugins = nightshift(12, log_path=str(log))
    comp = job(42, title="sh010 comp", user="alice")
    plugins.hook.corral_job_state_changed(job=comp, old="WORKING", new="FINISHED")
    plugins.hook.corral_job_state_changed(job=job(43, user=""), old="WORKING", new="ERROR")
    lines = log.read_text().splitlines()
    assert len(lines) == 3
    assert lines[0] == "earlier line"
    assert lines[1].endswith(" job 42 'sh010 comp' of alice: WORKING -> FINISHED")
    assert lines[2].endswith(" job 43 'job 43' of -: WORKING -> ERROR")


def test_nightshift_never_fails_the_farm_over_its_log(tmp_path: Path) -> None:
    plugins = nightshift(12, log_path=str(tmp_path / "no such dir" / "jobs.log"))
    plugins.hook.corral_job_state_changed(job=job(), old="WORKING", new="FINISHED")
    silent = nightshift(12)
    silent.hook.corral_job_state_changed(job=job(), old="WORKING", new="FINISHED")
    assert list(tmp_path.iterdir()) == []


# --- a real dispatch --------------------------------------------------------------------


@pytest.fixture
def config() -> Config:
    return Config(
        dispatch=DispatchConfig(interval=0.2, pick_wait=2, retry_interval=0.2),
        plugins={"limits": {"enabled": True, "per_tag": {"nuke": 1}}},
    )


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2) as executor:
        yield executor


def test_a_tag_limit_holds_jobs_back_in_a_real_dispatch(
    api: httpx.Client, sql: Sql, pool: ThreadPoolExecutor
) -> None:
    base = str(api.base_url)
    nodes = ["node-a", "node-b"]
    for name in nodes:
        response = api.post("/api/v2/workers/register", json={"name": name, "slots": 2})
        assert response.status_code == 200, response.text
    nuke = set()
    for shot in range(3):
        response = api.put(
            "/api/jobs",
            json={"title": f"comp {shot}", "command": f"nuke -x sh{shot}.nk", "tags": ["nuke"]},
        )
        assert response.status_code == 200, response.text
        nuke.add(response.json())
    response = api.put("/api/jobs", json={"title": "plain", "command": "true"})
    plain = response.json()

    def pick(name: str, slots: int) -> list[dict[str, Any]]:
        if slots == 0:
            return []
        answer = httpx.post(
            f"{base}/api/v2/workers/{name}/pick", json={"slots": slots, "wait": 1}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        runs: list[dict[str, Any]] = answer.json()["runs"]
        return runs

    def nuke_working() -> int:
        count: int = sql.fetchval(
            "SELECT count(*) FROM jobs WHERE state = 'WORKING' AND 'nuke' = ANY (tags)"
        )
        return count

    running: dict[int, tuple[str, int]] = {}  # job: (worker, event), delivered not finished
    delivered: list[int] = []
    finished: set[int] = set()
    held_rounds = 0
    deadline = time.monotonic() + 120
    while finished != nuke | {plain}:
        assert time.monotonic() < deadline, f"delivered {delivered}, finished {finished}"
        free = [2 - sum(1 for w, _ in running.values() if w == name) for name in nodes]
        for name, runs in zip(nodes, pool.map(pick, nodes, free), strict=True):
            for assigned in runs:
                assert assigned["job"] not in delivered, "a job was delivered twice"
                delivered.append(assigned["job"])
                running[assigned["job"]] = (name, assigned["event"])
        nuke_running = [j for j in running if j in nuke]
        assert len(nuke_running) <= 1, f"nuke jobs {nuke_running} were delivered at once"
        assert nuke_working() <= 1
        queued = sorted(nuke - finished - running.keys())
        states = sql.fetch("SELECT state FROM jobs WHERE id = ANY ($1::bigint[])", queued)
        assert {r["state"] for r in states} <= {"WAITING"}, "held back, still queued"
        if not running:
            continue
        # what was delivered runs a few more rounds of picks before it finishes, so the
        # other nuke jobs have every chance to be delivered wrongly meanwhile
        held_rounds += 1
        if held_rounds < 3:
            continue
        held_rounds = 0
        for job_id, (name, event) in list(running.items()):
            answer = api.post(
                f"/api/v2/workers/{name}/finish", json={"event": event, "exit_code": 0}
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["result"] == "FINISHED"
            finished.add(job_id)
            del running[job_id]

    assert plain in delivered
    assert sorted(delivered) == sorted(nuke | {plain})
    for job_id in nuke | {plain}:
        assert api.get(f"/api/jobs/{job_id}").json()["state"] == "FINISHED"
    overlapping = sql.fetchval(
        """
        SELECT count(*) FROM events a JOIN events b ON a.id < b.id
          JOIN jobs ja ON ja.id = a.job_id JOIN jobs jb ON jb.id = b.job_id
         WHERE 'nuke' = ANY (ja.tags) AND 'nuke' = ANY (jb.tags)
           AND a.start < b.start + b.duration AND b.start < a.start + a.duration
        """
    )
    assert overlapping == 0, "two nuke runs overlapped"
