"""Property test: the counters, group states and dependency blocking that the triggers of
migrations/0001_initial.sql maintain incrementally always equal a from-scratch recount.

A hypothesis state machine drives random sequences of submits, dependency changes, runs,
pauses, starts, resets, deletes, moves and command edits through the real HTTP API (and
the core's run queries) against a real PostgreSQL. After every step it recounts, in
Python and from the raw rows only (parents, commands, leaf states, start times and the
dependency rows), what every stored counter, group state, `deps_unmet`, leaf
WAITING/PENDING state, `path`, `prio_path`, group `start_time` and group duration sums
must be, and compares; and what GET /api/jobs/{id} shows of every group.
It also predicts which requests must be refused (a cycle, a move below itself or under a
leaf, the depth limit, turning a running leaf into a group) and checks that a refused
request changed nothing.

One database and one server serve the whole test; each example starts from empty tables
(the invariants must hold after any history, so that is as good as a fresh database) and
a random seed tree.
"""

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from core.config import Config
from tests import farm
from tests.conftest import ServerThread, Sql

logging.getLogger("httpx").setLevel(logging.WARNING)
MAX_DEPTH = Config().limits.max_depth
SETTINGS = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
COUNTERS = (
    "total", "total_finished", "total_errors", "total_working", "total_pending",
    "finished", "errors", "working",
)  # fmt: skip
API_COUNTERS = tuple(c for c in COUNTERS if c != "total_pending")
PRIORITIES = st.sampled_from([1000, 0, 5, -7, 2**31 - 1])
# deleting is one choice among several, or the trees stay small
SUBTREE_ROUTES = [
    "pausejobs", "startjobs", "resetjobs", "reseterrorjobs",
    "pausejobs", "startjobs", "resetjobs", "reseterrorjobs", "delete",
]  # fmt: skip

# A model of the tree for predicting refusals: parent (None for a root) and dependency set
# of every job; the new job of a submit is NEW.
Parents = Mapping[int, int | None]
Deps = Mapping[int, set[int]]
NEW = -1


class LiveSql(Sql):
    """`Sql` over one connection kept open (one per call costs too much per step)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._runner = asyncio.Runner()
        self._conn: asyncpg.Connection[asyncpg.Record] = self._runner.run(asyncpg.connect(url))

    def _run(self, method: str, sql: str, *args: Any) -> Any:
        return self._runner.run(getattr(self._conn, method)(sql, *args))

    def close(self) -> None:
        self._runner.run(self._conn.close())
        self._runner.close()


# -- the model: ancestry, depth and the dependency cycles, from parents and deps only -------


def ancestors(parents: Parents, job: int) -> list[int]:
    """Ids above `job`, root first."""
    chain: list[int] = []
    up = parents[job]
    while up is not None:
        chain.append(up)
        up = parents[up]
    return chain[::-1]


def children_of(parents: Parents) -> dict[int, list[int]]:
    children: dict[int, list[int]] = defaultdict(list)
    for job, parent in parents.items():
        if parent is not None:
            children[parent].append(job)
    return children


def subtree(parents: Parents, job: int) -> set[int]:
    """`job` and everything below it."""
    return {j for j in parents if j == job or job in ancestors(parents, j)}


def cyclic(parents: Parents, deps: Deps) -> list[int]:
    """Jobs that would wait for themselves. A job needs its dependencies; a job that is
    needed needs its children (a group is done when its subtree is), its own dependencies
    and those of its ancestors (it runs only once they are done). A job's dependencies form
    a cycle when what they need reaches the job or something below it."""
    children = children_of(parents)
    found = []
    for job in sorted(parents):
        if not deps.get(job):
            continue
        need: set[int] = set()
        todo = list(deps[job])
        while todo:
            n = todo.pop()
            if n in need:
                continue
            need.add(n)
            todo.extend(children[n])
            for holder in [n, *ancestors(parents, n)]:
                todo.extend(deps.get(holder, ()))
        if any(n == job or job in ancestors(parents, n) for n in need):
            found.append(job)
    return found


# -- the state machine ----------------------------------------------------------------------


class CountersMachine(RuleBasedStateMachine):
    """Bound to a server and a database by the test function (class attributes)."""

    client: httpx.Client
    db: LiveSql

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[int, dict[str, Any]] = {}
        self.deps: dict[int, set[int]] = {}

    # -- reading the state ------------------------------------------------------------

    def refresh(self) -> None:
        rows = self.db.fetch("SELECT * FROM jobs ORDER BY id")
        self.rows = {r["id"]: dict(r) for r in rows}
        self.deps = {j: set() for j in self.rows}
        for r in self.db.fetch("SELECT job_id, depends_on FROM dependencies"):
            self.deps[r["job_id"]].add(r["depends_on"])

    @property
    def parents(self) -> dict[int, int | None]:
        return {j: r["parent_id"] for j, r in self.rows.items()}

    def ids(self) -> list[int]:
        return sorted(self.rows)

    def groups(self) -> list[int]:
        return [j for j, r in self.rows.items() if r["command"] == ""]

    def leaves(self, *states: str, paused: bool | None = None) -> list[int]:
        return [
            j
            for j, r in self.rows.items()
            if r["command"] != ""
            and (not states or r["state"] in states)
            and (paused is None or r["paused"] == paused)
        ]

    def childless_groups(self) -> list[int]:
        has_children = {r["parent_id"] for r in self.rows.values()}
        return [j for j in self.groups() if j not in has_children]

    def depth(self, job: int) -> int:
        """1 for a root."""
        return len(ancestors(self.parents, job)) + 1

    # -- requests ---------------------------------------------------------------------

    def send(
        self, method: str, url: str, body: object, *, refused: bool, why: str = ""
    ) -> httpx.Response:
        """Send a request and check it was accepted (200) or, when `refused`, refused
        with a 400 that changed nothing."""
        before = self.db.snapshot()
        response = self.client.request(method, url, json=body)
        note(f"{method} {url} {body} -> {response.status_code} {response.text}")
        if refused:
            assert response.status_code == 400, (
                f"{method} {url} {body} should be refused ({why}), got "
                f"{response.status_code} {response.text}"
            )
            assert self.db.snapshot() == before, f"the refused {method} {url} {body} changed rows"
        else:
            assert response.status_code == 200, (
                f"{method} {url} {body} should succeed, got {response.status_code} {response.text}"
            )
        self.refresh()
        return response

    # -- rules ------------------------------------------------------------------------

    @initialize(seed=st.lists(st.tuples(st.integers(0, 7), st.booleans()), max_size=8))
    def clean_and_seed(self, seed: list[tuple[int, bool]]) -> None:
        """Empty tables, then a random tree to start from: each (parent, leaf) submits a
        leaf or a group under the parent-th group so far (modulo, 0 for the root)."""
        # DELETE, not TRUNCATE: its exclusive locks can deadlock with the server's passes
        for table in ("jobs", "events", "workers"):
            self.db.execute(f"DELETE FROM {table}")
        for table in ("jobs", "events"):
            self.db.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 1, false)")
        self.refresh()
        for choice, leaf in seed:
            parents = [0, *self.groups()]
            body = {
                "parent": parents[choice % len(parents)],
                "title": "seed",
                "command": "echo x" if leaf else "",
            }
            self.send("PUT", "/api/jobs", body, refused=False)

    @rule(data=st.data(), priority=PRIORITIES)
    def submit_group(self, data: st.DataObject, priority: int) -> None:
        parent = data.draw(st.sampled_from([0, *self.groups()]), "parent")
        too_deep = bool(parent) and self.depth(parent) + 1 > MAX_DEPTH
        body = {"parent": parent, "title": "group", "command": "", "priority": priority}
        self.send("PUT", "/api/jobs", body, refused=too_deep, why="depth limit")

    @rule(data=st.data(), priority=PRIORITIES)
    def submit_leaf(self, data: st.DataObject, priority: int) -> None:
        parent = data.draw(st.sampled_from([0, *self.groups()]), "parent")
        deps: list[int] = []
        if self.rows and bool(data.draw(st.booleans(), "with dependencies")):
            deps = data.draw(
                st.lists(st.sampled_from(self.ids()), min_size=1, max_size=3, unique=True),
                "dependencies",
            )
        parents = {**self.parents, NEW: parent or None}
        cycle = cyclic(parents, {**self.deps, NEW: set(deps)})
        too_deep = bool(parent) and self.depth(parent) + 1 > MAX_DEPTH
        body = {
            "parent": parent,
            "title": "leaf",
            "command": "echo x",
            "priority": priority,
            "dependencies": deps,
        }
        self.send("PUT", "/api/jobs", body, refused=bool(cycle) or too_deep, why="cycle/depth")

    @precondition(lambda self: self.rows)
    @rule(data=st.data())
    def set_dependencies(self, data: st.DataObject) -> None:
        job = data.draw(st.sampled_from(self.ids()), "job")
        deps = data.draw(
            st.lists(st.sampled_from(self.ids()), max_size=3, unique=True), "dependencies"
        )
        refused = job in deps or bool(cyclic(self.parents, {**self.deps, job: set(deps)}))
        self.send("POST", f"/api/jobs/{job}/dependencies", deps, refused=refused, why="cycle")

    @precondition(lambda self: self.leaves("WAITING", paused=False))
    @rule(data=st.data())
    def start_run(self, data: st.DataObject) -> None:
        job = data.draw(st.sampled_from(self.leaves("WAITING", paused=False)), "leaf")
        note(f"start a run of {job}")
        farm.start(self.db, job)
        self.refresh()

    @precondition(lambda self: self.leaves("WORKING"))
    @rule(data=st.data(), exit_code=st.sampled_from([0, 1]))
    def finish_run(self, data: st.DataObject, exit_code: int) -> None:
        job = data.draw(st.sampled_from(self.leaves("WORKING")), "leaf")
        event = self.db.fetchval("SELECT current_event FROM jobs WHERE id = $1", job)
        note(f"finish the run of {job} (event {event}) with exit code {exit_code}")
        farm.finish(self.db, event, exit_code)
        self.refresh()

    @precondition(lambda self: self.rows)
    @rule(data=st.data(), route=st.sampled_from(SUBTREE_ROUTES))
    def subtree_operation(self, data: st.DataObject, route: str) -> None:
        ids = data.draw(
            st.lists(st.sampled_from(self.ids()), min_size=1, max_size=2, unique=True), "jobs"
        )
        if route == "delete":
            self.send("DELETE", "/api/jobs", ids, refused=False)
        else:
            self.send("POST", f"/api/{route}", ids, refused=False)

    @precondition(lambda self: self.rows)
    @rule(data=st.data())
    def move(self, data: st.DataObject) -> None:
        job = data.draw(st.sampled_from(self.ids()), "job")
        parent = data.draw(st.sampled_from([0, *self.ids()]), "new parent")
        parents = self.parents
        if parent == (parents[job] or 0):
            refused, why = False, "no move"
        elif parent == 0:
            refused = bool(cyclic({**parents, job: None}, self.deps))
            why = "cycle"
        else:
            height = max(self.depth(j) for j in subtree(parents, job)) - self.depth(job)
            refused = (
                parent in subtree(parents, job)
                or self.rows[parent]["command"] != ""
                or self.depth(parent) + 1 + height > MAX_DEPTH
                or bool(cyclic({**parents, job: parent}, self.deps))
            )
            why = "below itself / under a leaf / depth / cycle"
        self.send("POST", "/api/jobs", {str(job): {"parent": parent}}, refused=refused, why=why)

    @precondition(lambda self: self.leaves())
    @rule(data=st.data())
    def make_group(self, data: st.DataObject) -> None:
        job = data.draw(st.sampled_from(self.leaves()), "leaf")
        running = self.rows[job]["state"] == "WORKING"
        body = {str(job): {"command": ""}}
        self.send("POST", "/api/jobs", body, refused=running, why="running")

    @precondition(lambda self: self.childless_groups())
    @rule(data=st.data())
    def make_leaf(self, data: st.DataObject) -> None:
        job = data.draw(st.sampled_from(self.childless_groups()), "childless group")
        self.send("POST", "/api/jobs", {str(job): {"command": "echo y"}}, refused=False)

    @precondition(lambda self: self.rows)
    @rule(data=st.data(), priority=PRIORITIES)
    def set_priority(self, data: st.DataObject, priority: int) -> None:
        job = data.draw(st.sampled_from(self.ids()), "job")
        self.send("POST", "/api/jobs", {str(job): {"priority": priority}}, refused=False)

    # -- the invariants -----------------------------------------------------------------

    @invariant()
    def stored_values_equal_a_recount(self) -> None:
        self.refresh()
        rows, deps, parents = self.rows, self.deps, self.parents
        problems: list[str] = []

        def expect(job: int, what: str, stored: object, wanted: object) -> None:
            if stored != wanted:
                problems.append(f"job {job} {what}: stored {stored!r}, recount {wanted!r}")

        # dependencies: unmet = those not FINISHED
        unmet = {j: sum(rows[d]["state"] != "FINISHED" for d in deps[j]) for j in rows}
        for j, row in rows.items():
            expect(j, "deps_unmet", row["deps_unmet"], unmet[j])

        for j, row in rows.items():
            above = ancestors(parents, j)
            # paths: ancestors' ids root first; priorities from the root down
            expect(j, "path", list(row["path"]), above)
            prio = [rows[a]["priority"] for a in above] + [row["priority"]]
            expect(j, "prio_path", list(row["prio_path"]), prio)
            if row["parent_id"] is not None:
                expect(j, "parent's command", rows[row["parent_id"]]["command"], "")
            if row["command"] != "" and row["state"] in ("WAITING", "PENDING"):
                blocked = any(unmet[a] > 0 for a in [j, *above])
                expect(j, "leaf state", row["state"], "PENDING" if blocked else "WAITING")

        leaves = [j for j, r in rows.items() if r["command"] != ""]
        below: dict[int, list[int]] = {g: [] for g in self.groups()}
        for leaf in leaves:
            for a in ancestors(parents, leaf):
                below[a].append(leaf)
        recounts: dict[int, dict[str, int]] = {}
        for g, under in below.items():
            states = [rows[leaf]["state"] for leaf in under]
            direct = [rows[leaf]["state"] for leaf in under if parents[leaf] == g]
            counts = {
                "total": len(states),
                "total_finished": states.count("FINISHED"),
                "total_errors": states.count("ERROR"),
                "total_working": states.count("WORKING"),
                "total_pending": states.count("PENDING"),
                "finished": direct.count("FINISHED"),
                "errors": direct.count("ERROR"),
                "working": direct.count("WORKING"),
            }
            recounts[g] = counts
            for name in COUNTERS:
                expect(g, name, rows[g][name], counts[name])
            expect(g, "group state", rows[g]["state"], group_state(counts, unmet[g]))
            starts = [rows[leaf]["start_time"] for leaf in under if rows[leaf]["start_time"] > 0]
            expect(g, "start_time", rows[g]["start_time"], min(starts, default=0))
            # a group's duration: finished leaves' durations + elapsed of running ones
            done = sum(
                rows[leaf]["duration"] for leaf in under if rows[leaf]["state"] == "FINISHED"
            )
            if rows[g]["duration_done"] != pytest.approx(done, rel=1e-12, abs=1e-9):
                expect(g, "duration_done", rows[g]["duration_done"], done)
            running = [
                rows[leaf]["start_time"] for leaf in under if rows[leaf]["state"] == "WORKING"
            ]
            if rows[g]["working_start_sum"] != pytest.approx(sum(running), abs=1e-3):
                expect(g, "working_start_sum", rows[g]["working_start_sum"], sum(running))

        cycle = cyclic(parents, deps)
        if cycle:
            problems.append(f"a dependency cycle was accepted: jobs {cycle} wait for themselves")
        problems += self.api_problems(recounts)
        assert not problems, "\n".join(problems)

    def api_problems(self, recounts: dict[int, dict[str, int]]) -> list[str]:
        """What GET /api/jobs/{id} shows of each group."""
        problems = []
        for g, counts in recounts.items():
            response = self.client.get(f"/api/jobs/{g}")
            assert response.status_code == 200, response.text
            shown = response.json()
            for name in API_COUNTERS:
                if shown[name] != counts[name]:
                    problems.append(f"GET /api/jobs/{g} {name}: {shown[name]}, not {counts[name]}")
            progress = counts["total_finished"] / counts["total"] if counts["total"] else 0.0
            if shown["progress"] != pytest.approx(progress, abs=1e-6):
                problems.append(f"GET /api/jobs/{g} progress: {shown['progress']}, not {progress}")
            state = "PAUSED" if self.rows[g]["paused"] else self.rows[g]["state"]
            if shown["state"] != state:
                problems.append(f"GET /api/jobs/{g} state: {shown['state']}, not {state}")
        return problems


def group_state(counts: Mapping[str, int], deps_unmet: int) -> str:
    total, done = counts["total"], counts["total_finished"]
    if counts["total_errors"] > 0:
        return "ERROR"
    if total > 0 and done == total:
        return "FINISHED"
    if counts["total_working"] > 0:
        return "WORKING"
    pending = counts["total_pending"]
    if deps_unmet > 0 or (pending > 0 and pending == total - done):
        return "PENDING"
    return "WAITING"


@pytest.fixture
def bound_machine(config: Config, database_url: str) -> Iterator[type[CountersMachine]]:
    # no run is lost behind the machine's back while it holds a WORKING leaf
    calm = msgspec.structs.replace(
        config, dispatch=msgspec.structs.replace(config.dispatch, worker_timeout=3600.0)
    )
    db = LiveSql(database_url)
    try:
        with ServerThread(calm, database_url) as base, httpx.Client(base_url=base) as client:

            class Bound(CountersMachine):
                pass

            Bound.client = client
            Bound.db = db
            yield Bound
    finally:
        db.close()


def test_counters_states_and_blocking_equal_a_recount(
    bound_machine: type[CountersMachine],
) -> None:
    run_state_machine_as_test(bound_machine, settings=SETTINGS)
