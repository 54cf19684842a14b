"""Bad input never loses data and never gives a 500.

Every request here is a client mistake. Each must be answered with the exact 4xx, a JSON
body whose `detail` says what was wrong, and leave every Corral table as it was.

All cases run against one server and one database holding a small farm (groups, leaves,
dependencies, a running job on a worker with rules, named affinities, a tree at the
depth limit), built once for this module: a refused request changes nothing, so the cases
can share it. Should a case change something anyway, it fails, and the farm is rebuilt
with the same ids before the next case.
"""

import asyncio
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
from pgserver.postgres_server import PostgresServer

from api.app import create_app
from core.config import Config, LimitsConfig, ServerConfig
from tests.conftest import TEMPLATE, ServerThread, Sql
from tests.farm import get, ok, start, submit

BODY_LIMIT = 10_000
TABLES = (
    "jobs, dependencies, affinities, workers, worker_rules, events, job_logs, job_types, "
    "job_type_revisions, services, service_groups, service_allocations, logger_defaults, "
    "logger_overrides, documents, genvid_secrets, awe_nodes, awe_node_parts, awe_node_chunks, "
    "workflows, workflow_tasks, workflow_units, workflow_reports, workflow_clients, client_groups"
)


# --- one server and one farm for the module ------------------------------------------


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return Config(
        server=ServerConfig(data_dir=str(tmp_path_factory.mktemp("data"))),
        limits=LimitsConfig(max_body_bytes=BODY_LIMIT),
    )


@pytest.fixture(scope="module")
def database_url(pg_server: PostgresServer) -> Iterator[str]:
    name = f"bad_input_{os.getpid()}"
    admin = Sql(pg_server.get_uri())
    admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    yield pg_server.get_uri(name)
    admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


class OneConnectionSql(Sql):
    """tests.conftest.Sql, its queries and its snapshot() unchanged, over one connection
    kept open for the module instead of one per query: a snapshot costs a few ms."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._loop = asyncio.new_event_loop()
        self._conn: asyncpg.Connection[Any] = self._loop.run_until_complete(asyncpg.connect(url))

    def _run(self, method: str, sql: str, *args: Any) -> Any:
        return self._loop.run_until_complete(getattr(self._conn, method)(sql, *args))

    def close(self) -> None:
        self._loop.run_until_complete(self._conn.close())
        self._loop.close()


@pytest.fixture(scope="module")
def sql(database_url: str) -> Iterator[Sql]:
    db = OneConnectionSql(database_url)
    yield db
    db.close()


@pytest.fixture(scope="module")
def api(config: Config, database_url: str) -> Iterator[httpx.Client]:
    with ServerThread(config, database_url) as base, httpx.Client(base_url=base) as client:
        yield client


Snapshot = dict[str, list[tuple[Any, ...]]]


@dataclass
class Farm:
    ids: dict[str, int]
    deep: list[int]
    # sql.snapshot() of the farm as built; found unchanged after every test since
    snapshot: Snapshot = field(default_factory=dict)
    # the snapshot the running test took after its request, if it took one
    seen: Snapshot | None = None

    def __getattr__(self, name: str) -> int:
        try:
            return self.__dict__["ids"][name]  # type: ignore[no-any-return]
        except KeyError:
            raise AttributeError(name) from None


def build_farm(api: httpx.Client, sql: Sql) -> Farm:
    """g (group) > a (running on node-1), b (depends on a), sub (group) > c, d;
    roots x -> y -> z (x depends on y, y on z); hold, an empty group depending on z;
    deep: 8 nested groups, the most a tree may have."""
    ok(api.post("/api/affinities", json={"1": "linux", "2": "gpu"}))
    ids: dict[str, int] = {}
    ids["g"] = submit(api, title="g", user="ana", affinity="linux", priority=2000)
    ids["a"] = submit(api, title="a", command="echo a", parent=ids["g"])
    ids["b"] = submit(api, title="b", command="echo b", parent=ids["g"], dependencies=[ids["a"]])
    ids["sub"] = submit(api, title="sub", parent=ids["g"])
    ids["c"] = submit(api, title="c", command="echo c", parent=ids["sub"], environment="A=1")
    ids["d"] = submit(api, title="d", command="echo d", parent=ids["sub"], affinity="gpu")
    ids["z"] = submit(api, title="z", command="echo z")
    ids["y"] = submit(api, title="y", command="echo y", dependencies=[ids["z"]])
    ids["x"] = submit(api, title="x", command="echo x", dependencies=[ids["y"]])
    ids["hold"] = submit(api, title="hold", dependencies=[ids["z"]])
    deep = [submit(api, title="level 1")]
    for level in range(2, 9):
        deep.append(submit(api, title=f"level {level}", parent=deep[-1]))
    start(sql, ids["a"], worker="node-1")
    ok(api.post("/api/workers", json={"node-1": {"affinity": "linux\ngpu"}}))
    farm = Farm(ids, deep)
    farm.snapshot = sql.snapshot()
    return farm


@pytest.fixture(scope="module")
def farm(api: httpx.Client, sql: Sql) -> Farm:
    return build_farm(api, sql)


@pytest.fixture(autouse=True)
def _restore_farm(api: httpx.Client, sql: Sql, farm: Farm) -> Iterator[None]:
    """Each test starts from the farm exactly as `farm.snapshot` shows it."""
    farm.seen = None
    yield
    seen = sql.snapshot() if farm.seen is None else farm.seen
    if seen != farm.snapshot:
        # a case changed something (it has failed): start the next one from the same farm
        sql.execute(f"TRUNCATE {TABLES} RESTART IDENTITY")
        fresh = build_farm(api, sql)
        assert (fresh.ids, fresh.deep) == (farm.ids, farm.deep)
        farm.snapshot = fresh.snapshot


# --- the check ------------------------------------------------------------------------

Call = tuple[str, str, dict[str, Any]]
MakeCall = Callable[[Farm], Call]


def changed_by_request(sql: Sql, farm: Farm) -> list[str]:
    """The tables the request just sent changed. The snapshot before it is `farm.snapshot`,
    a sql.snapshot() that the end of every earlier test found still true."""
    farm.seen = after = sql.snapshot()
    return [t for t in farm.snapshot if farm.snapshot[t] != after.get(t)]


def refused(
    api: httpx.Client, sql: Sql, farm: Farm, call: Call, status: int, fragment: str
) -> dict[str, Any]:
    """Send `call`; it must answer `status` with a JSON `detail` matching `fragment` (a
    case-insensitive regular expression) and change no row. Every problem is reported."""
    method, path, kwargs = call
    response = api.request(method, path, **kwargs)
    changed = changed_by_request(sql, farm)
    problems = []
    if response.status_code != status:
        problems.append(f"status {response.status_code}, expected {status}")
    body: Any = None
    if not response.headers.get("content-type", "").startswith("application/json"):
        problems.append(f"content-type {response.headers.get('content-type')!r}")
    else:
        body = response.json()
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, str):
        problems.append("no string `detail`")
    elif not re.search(fragment, detail, re.IGNORECASE):
        problems.append(f"detail {detail!r} does not say /{fragment}/")
    if changed:
        problems.append(f"changed tables: {changed}")
    summary = f"{method} {path} -> {response.status_code} {response.text[:300]}"
    assert not problems, "\n  ".join([summary, *problems])
    return dict(body)


def js(body: Any) -> dict[str, Any]:
    return {"json": body}


def raw(body: bytes) -> dict[str, Any]:
    return {"content": body}


def param(name: str, make: MakeCall, status: int, fragment: str) -> Any:
    return pytest.param(make, status, fragment, id=name)


# --- malformed JSON -------------------------------------------------------------------

MALFORMED_JSON = "json|malformed|truncated|utf-?8|decod|pars|invalid|body"
EMPTY_BODY = "body|empty|missing|required"

MALFORMED = [
    pytest.param(b"{", MALFORMED_JSON, id="open-brace"),
    pytest.param(b"[1,", MALFORMED_JSON, id="open-list"),
    pytest.param(b"nul", MALFORMED_JSON, id="nul"),
    pytest.param(b"\xff\xfe\x00garbage", MALFORMED_JSON, id="binary"),
    pytest.param(b'{"title": "\xff\xfe\x80"}', MALFORMED_JSON, id="bad-utf8-in-string"),
    pytest.param(b"", EMPTY_BODY, id="empty"),
]
JOB_ROUTES = [
    pytest.param("PUT", "/api/jobs", id="PUT-jobs"),
    pytest.param("POST", "/api/jobs", id="POST-jobs"),
    pytest.param("DELETE", "/api/jobs", id="DELETE-jobs"),
]
OTHER_ROUTES = [
    pytest.param("POST", "/api/jobs/{b}/dependencies", id="POST-dependencies"),
    pytest.param("POST", "/api/pausejobs", id="POST-pausejobs"),
    pytest.param("POST", "/api/workers", id="POST-workers"),
    pytest.param("DELETE", "/api/workers", id="DELETE-workers"),
    pytest.param("POST", "/api/affinities", id="POST-affinities"),
]
SOME_MALFORMED = [p for p in MALFORMED if p.id in ("open-list", "bad-utf8-in-string", "empty")]


@pytest.mark.parametrize(("body", "fragment"), MALFORMED)
@pytest.mark.parametrize(("method", "path"), JOB_ROUTES)
def test_malformed_json_on_job_routes_is_refused(
    api: httpx.Client, sql: Sql, farm: Farm, method: str, path: str, body: bytes, fragment: str
) -> None:
    refused(api, sql, farm, (method, path, raw(body)), 400, fragment)


@pytest.mark.parametrize(("body", "fragment"), SOME_MALFORMED)
@pytest.mark.parametrize(("method", "path"), OTHER_ROUTES)
def test_malformed_json_on_other_routes_is_refused(
    api: httpx.Client, sql: Sql, farm: Farm, method: str, path: str, body: bytes, fragment: str
) -> None:
    refused(api, sql, farm, (method, path.format(**farm.ids), raw(body)), 400, fragment)


# --- wrong types ----------------------------------------------------------------------

WRONG_TYPES = [
    pytest.param("title", 5, id="title-int"),
    pytest.param("priority", "abc", id="priority-word"),
    pytest.param("priority", 1.5, id="priority-fraction"),
    pytest.param("priority", True, id="priority-bool"),
    pytest.param("priority", 2**31, id="priority-over-int32"),
    pytest.param("priority", -(2**31) - 1, id="priority-under-int32"),
    pytest.param("retry", -1, id="retry-negative"),
    pytest.param("timeout", "x", id="timeout-word"),
    pytest.param("parent", "x", id="parent-word"),
    pytest.param("dependencies", "1,x", id="dependencies-text-not-ids"),
    pytest.param("dependencies", {"1": 2}, id="dependencies-object"),
    pytest.param("dependencies", [1.5], id="dependencies-fraction"),
    pytest.param("environment", 5, id="environment-int"),
    pytest.param("environment", ["A=1"], id="environment-list"),
    pytest.param("environment", {"A": 1}, id="environment-int-value"),
    pytest.param("affinity", ["linux"], id="affinity-list"),
    pytest.param("paused", "yes", id="paused-word"),
]


@pytest.mark.parametrize(("name", "value"), WRONG_TYPES)
def test_a_wrong_type_in_a_new_job_is_refused(
    api: httpx.Client, sql: Sql, farm: Farm, name: str, value: Any
) -> None:
    body = {"title": "new", "command": "echo new", name: value}
    refused(api, sql, farm, ("PUT", "/api/jobs", js(body)), 400, name)


@pytest.mark.parametrize(("name", "value"), WRONG_TYPES)
def test_a_wrong_type_in_an_edit_is_refused(
    api: httpx.Client, sql: Sql, farm: Farm, name: str, value: Any
) -> None:
    refused(api, sql, farm, ("POST", "/api/jobs", js({str(farm.c): {name: value}})), 400, name)


OBJECT = "object|dict|mapping"
ARRAY = "array|list"
WRONG_SHAPES = [
    param("PUT-list", lambda f: ("PUT", "/api/jobs", js([{"title": "t"}])), 400, OBJECT),
    param("POST-jobs-list", lambda f: ("POST", "/api/jobs", js([f.c])), 400, OBJECT),
    param("POST-edit-list", lambda f: ("POST", "/api/jobs", js({str(f.c): ["t"]})), 400, OBJECT),
    param("POST-edit-string", lambda f: ("POST", "/api/jobs", js({str(f.c): "t"})), 400, OBJECT),
    param("POST-workers-list", lambda f: ("POST", "/api/workers", js(["node-1"])), 400, OBJECT),
    param("POST-affinities-list", lambda f: ("POST", "/api/affinities", js(["x"])), 400, OBJECT),
    param("DELETE-object", lambda f: ("DELETE", "/api/jobs", js({"id": f.c})), 400, ARRAY),
    param("resetjobs-int", lambda f: ("POST", "/api/resetjobs", js(f.c)), 400, ARRAY),
    param(
        "dependencies-object",
        lambda f: ("POST", f"/api/jobs/{f.b}/dependencies", js({"a": f.a})),
        400,
        ARRAY,
    ),
    param("stopworkers-string", lambda f: ("POST", "/api/stopworkers", js("node-1")), 400, ARRAY),
    param(
        "workers-active-word",
        lambda f: ("POST", "/api/workers", js({"node-1": {"active": "no"}})),
        400,
        "active",
    ),
    param(
        "affinity-slot-int",
        lambda f: ("POST", "/api/affinities", js({"3": 5})),
        400,
        "3|str|text",
    ),
]


@pytest.mark.parametrize(("make", "status", "fragment"), WRONG_SHAPES)
def test_a_body_of_the_wrong_shape_is_refused(
    api: httpx.Client, sql: Sql, farm: Farm, make: MakeCall, status: int, fragment: str
) -> None:
    refused(api, sql, farm, make(farm), status, fragment)


def test_a_numeric_string_or_integral_float_priority_is_accepted(
    api: httpx.Client, sql: Sql, farm: Farm
) -> None:
    for given, kept in (("1000", 1000), (2.0, 2), ("-7", -7), (2**31 - 1, 2**31 - 1)):
        response = api.put("/api/jobs", json={"title": "p", "command": "x", "priority": given})
        assert response.status_code == 200, (given, response.text)
        job = get(api, response.json())
        assert (job["priority"], type(job["priority"])) == (kept, int), given
    for given, kept in (("1500", 1500), (3.0, 3), (-(2**31), -(2**31))):
        ok(api.post("/api/jobs", json={str(farm.c): {"priority": given}}))
        assert get(api, farm.c)["priority"] == kept, given
        prio_path = sql.fetchval("SELECT prio_path FROM jobs WHERE id = $1", farm.c)
        assert list(prio_path) == [2000, 1000, kept], given


UNKNOWN_FIELDS = [
    param(
        "PUT",
        lambda f: ("PUT", "/api/jobs", js({"title": "t", "colour": "red"})),
        400,
        "colour",
    ),
    param(
        "POST-jobs",
        lambda f: ("POST", "/api/jobs", js({str(f.c): {"title": "t", "colour": "red"}})),
        400,
        "colour",
    ),
    param(
        "POST-workers",
        lambda f: ("POST", "/api/workers", js({"node-1": {"active": 0, "colour": "red"}})),
        400,
        "colour",
    ),
]


@pytest.mark.parametrize(("make", "status", "fragment"), UNKNOWN_FIELDS)
def test_an_unknown_field_is_refused_by_name(
    api: httpx.Client, sql: Sql, farm: Farm, make: MakeCall, status: int, fragment: str
) -> None:
    refused(api, sql, farm, make(farm), status, fragment)


@pytest.mark.parametrize("state", ["FINISHED", "WORKING"])
def test_an_edit_cannot_set_a_server_state(
    api: httpx.Client, sql: Sql, farm: Farm, state: str
) -> None:
    call = ("POST", "/api/jobs", js({str(farm.c): {"state": state}}))
    detail = refused(api, sql, farm, call, 400, state)["detail"]
    assert "PAUSED" in detail, detail
    assert "WAITING" in detail, detail


# --- unknown, huge and negative ids ---------------------------------------------------

UNKNOWN_IDS = [
    param("GET-job", lambda f: ("GET", "/api/jobs/999999", {}), 404, "999999"),
    param("children", lambda f: ("GET", "/api/jobs/999999/children", {}), 404, "999999"),
    param("dependencies", lambda f: ("GET", "/api/jobs/999999/dependencies", {}), 404, "999999"),
    param("log", lambda f: ("GET", "/api/jobs/999999/log", {}), 404, "999999"),
    param(
        "childrendependencies",
        lambda f: ("GET", "/api/jobs/999999/childrendependencies", {}),
        404,
        "999999",
    ),
    param(
        "edit",
        lambda f: ("POST", "/api/jobs", js({"999999": {"title": "x"}})),
        404,
        "999999",
    ),
    param(
        "edit-with-a-valid-one",
        lambda f: (
            "POST",
            "/api/jobs",
            js({str(f.c): {"title": "changed", "priority": 1}, "999999": {"title": "x"}}),
        ),
        404,
        "999999",
    ),
    param(
        "edit-group-with-an-unknown",
        lambda f: (
            "POST",
            "/api/jobs",
            js({str(f.g): {"priority": 1, "state": "PAUSED"}, "999999": {"title": "y"}}),
        ),
        404,
        "999999",
    ),
    param("delete", lambda f: ("DELETE", "/api/jobs", js([f.c, 999999])), 404, "999999"),
    param("resetjobs", lambda f: ("POST", "/api/resetjobs", js([f.g, 999999])), 404, "999999"),
    param(
        "reseterrorjobs",
        lambda f: ("POST", "/api/reseterrorjobs", js([f.g, 999999])),
        404,
        "999999",
    ),
    param("startjobs", lambda f: ("POST", "/api/startjobs", js([f.g, 999999])), 404, "999999"),
    param("pausejobs", lambda f: ("POST", "/api/pausejobs", js([f.g, 999999])), 404, "999999"),
    param(
        "set-dependencies-of-unknown",
        lambda f: ("POST", "/api/jobs/999999/dependencies", js([f.a])),
        404,
        "999999",
    ),
    param(
        "dependency-on-unknown",
        lambda f: ("POST", f"/api/jobs/{f.c}/dependencies", js([f.a, 999999])),
        400,
        "999999",
    ),
    param(
        "new-job-dependency-on-unknown",
        lambda f: (
            "PUT",
            "/api/jobs",
            js({"title": "t", "command": "x", "dependencies": [999999]}),
        ),
        400,
        "999999",
    ),
    param(
        "edit-dependency-on-unknown",
        lambda f: ("POST", "/api/jobs", js({str(f.c): {"dependencies": [999999]}})),
        400,
        "999999",
    ),
    param("edit-key-word", lambda f: ("POST", "/api/jobs", js({"abc": {}})), 400, "abc|id|int"),
]


@pytest.mark.parametrize(("make", "status", "fragment"), UNKNOWN_IDS)
def test_an_unknown_job_id_is_refused(
    api: httpx.Client, sql: Sql, farm: Farm, make: MakeCall, status: int, fragment: str
) -> None:
    refused(api, sql, farm, make(farm), status, fragment)


def out_of_range(n: int) -> str:
    return rf"{n}|range|too (large|big)|<= ?9223372036854775807"


H63, H70 = 2**63, 2**70
HUGE_IDS = [
    param("GET-job", lambda f: ("GET", f"/api/jobs/{H63}", {}), 400, out_of_range(H63)),
    param("children", lambda f: ("GET", f"/api/jobs/{H70}/children", {}), 400, out_of_range(H70)),
    param("log", lambda f: ("GET", f"/api/jobs/{H63}/log", {}), 400, out_of_range(H63)),
    param(
        "set-dependencies-of",
        lambda f: ("POST", f"/api/jobs/{H70}/dependencies", js([f.a])),
        400,
        out_of_range(H70),
    ),
    param("delete", lambda f: ("DELETE", "/api/jobs", js([f.c, H63])), 400, out_of_range(H63)),
    param("resetjobs", lambda f: ("POST", "/api/resetjobs", js([H70])), 400, out_of_range(H70)),
    param(
        "dependency-on",
        lambda f: ("POST", f"/api/jobs/{f.c}/dependencies", js([H63])),
        400,
        out_of_range(H63),
    ),
    param(
        "edit-key-63",
        lambda f: ("POST", "/api/jobs", js({str(H63): {"title": "x"}})),
        400,
        out_of_range(H63),
    ),
    param(
        "edit-key-70",
        lambda f: ("POST", "/api/jobs", js({str(H70): {"title": "x"}})),
        400,
        out_of_range(H70),
    ),
    param(
        "new-job-parent",
        lambda f: ("PUT", "/api/jobs", js({"title": "t", "parent": H70})),
        400,
        out_of_range(H70),
    ),
    param(
        "edit-parent",
        lambda f: ("POST", "/api/jobs", js({str(f.c): {"parent": H63}})),
        400,
        out_of_range(H63),
    ),
    param(
        "new-job-dependency",
        lambda f: ("PUT", "/api/jobs", js({"title": "t", "dependencies": [H70]})),
        400,
        out_of_range(H70),
    ),
]
NEGATIVE = r"-1|negative|>= ?[01]|positive"
NEGATIVE_IDS = [
    param("GET-job", lambda f: ("GET", "/api/jobs/-1", {}), 400, NEGATIVE),
    param("children", lambda f: ("GET", "/api/jobs/-1/children", {}), 400, NEGATIVE),
    param("delete", lambda f: ("DELETE", "/api/jobs", js([f.c, -1])), 400, NEGATIVE),
    param("pausejobs", lambda f: ("POST", "/api/pausejobs", js([-1])), 400, NEGATIVE),
    param("edit-key", lambda f: ("POST", "/api/jobs", js({"-1": {"title": "x"}})), 400, NEGATIVE),
    param(
        "dependency",
        lambda f: ("POST", f"/api/jobs/{f.c}/dependencies", js([-1])),
        400,
        NEGATIVE,
    ),
    param("new-job-parent", lambda f: ("PUT", "/api/jobs", js({"parent": -1})), 400, NEGATIVE),
]


@pytest.mark.parametrize(("make", "status", "fragment"), HUGE_IDS)
def test_a_huge_job_id_is_refused(
    api: httpx.Client, sql: Sql, farm: Farm, make: MakeCall, status: int, fragment: str
) -> None:
    refused(api, sql, farm, make(farm), status, fragment)


@pytest.mark.parametrize(("make", "status", "fragment"), NEGATIVE_IDS)
def test_a_negative_job_id_is_refused(
    api: httpx.Client, sql: Sql, farm: Farm, make: MakeCall, status: int, fragment: str
) -> None:
    refused(api, sql, farm, make(farm), status, fragment)


# --- the tree: parents, cycles, depth -------------------------------------------------

BAD_PARENTS = [
    param(
        "new-child-of-a-leaf",
        lambda f: ("PUT", "/api/jobs", js({"title": "t", "command": "x", "parent": f.c})),
        400,
        "command",
    ),
    param(
        "new-child-of-nothing",
        lambda f: ("PUT", "/api/jobs", js({"title": "t", "command": "x", "parent": 999999})),
        400,
        "999999",
    ),
    param(
        "move-under-a-leaf",
        lambda f: ("POST", "/api/jobs", js({str(f.x): {"parent": f.c}})),
        400,
        "command",
    ),
    param(
        "move-under-nothing",
        lambda f: ("POST", "/api/jobs", js({str(f.x): {"parent": 999999}})),
        400,
        "999999",
    ),
    param(
        "command-on-a-group-with-children",
        lambda f: ("POST", "/api/jobs", js({str(f.sub): {"command": "echo"}})),
        400,
        "children",
    ),
]


@pytest.mark.parametrize(("make", "status", "fragment"), BAD_PARENTS)
def test_a_child_needs_an_existing_group(
    api: httpx.Client, sql: Sql, farm: Farm, make: MakeCall, status: int, fragment: str
) -> None:
    refused(api, sql, farm, make(farm), status, fragment)


CYCLE = "cycle|itself"
CYCLES = [
    param(
        "back-edge",  # b depends on a
        lambda f: ("POST", f"/api/jobs/{f.a}/dependencies", js([f.b])),
        400,
        CYCLE,
    ),
    param(
        "back-edge-by-edit",
        lambda f: ("POST", "/api/jobs", js({str(f.a): {"dependencies": [f.b]}})),
        400,
        CYCLE,
    ),
    param("self", lambda f: ("POST", f"/api/jobs/{f.a}/dependencies", js([f.a])), 400, CYCLE),
    param(
        "self-by-edit",
        lambda f: ("POST", "/api/jobs", js({str(f.c): {"dependencies": [f.c]}})),
        400,
        CYCLE,
    ),
    param(
        "on-own-root-group",
        lambda f: ("POST", f"/api/jobs/{f.c}/dependencies", js([f.g])),
        400,
        CYCLE,
    ),
    param(
        "on-own-parent-group",
        lambda f: ("POST", f"/api/jobs/{f.c}/dependencies", js([f.sub])),
        400,
        CYCLE,
    ),
    param(
        "new-job-on-own-group",
        lambda f: (
            "PUT",
            "/api/jobs",
            js({"title": "t", "command": "x", "parent": f.sub, "dependencies": [f.g]}),
        ),
        400,
        CYCLE,
    ),
    param(
        "group-on-descendant-leaf",
        lambda f: ("POST", f"/api/jobs/{f.g}/dependencies", js([f.c])),
        400,
        CYCLE,
    ),
    param(
        "group-on-descendant-group",
        lambda f: ("POST", f"/api/jobs/{f.g}/dependencies", js([f.sub])),
        400,
        CYCLE,
    ),
    param(
        "three-cycle",  # x -> y -> z
        lambda f: ("POST", f"/api/jobs/{f.z}/dependencies", js([f.x])),
        400,
        CYCLE,
    ),
    param(
        "three-cycle-by-edit",
        lambda f: ("POST", "/api/jobs", js({str(f.z): {"dependencies": [f.y, f.x]}})),
        400,
        CYCLE,
    ),
    param(
        "move-under-own-child",
        lambda f: ("POST", "/api/jobs", js({str(f.g): {"parent": f.sub}})),
        400,
        rf"{CYCLE}|below|descendant",
    ),
    param(
        "move-under-itself",
        lambda f: ("POST", "/api/jobs", js({str(f.sub): {"parent": f.sub}})),
        400,
        rf"{CYCLE}|below|descendant",
    ),
    param(
        "move-into-the-group-waiting-for-it",  # hold depends on z
        lambda f: ("POST", "/api/jobs", js({str(f.z): {"parent": f.hold}})),
        400,
        CYCLE,
    ),
]


@pytest.mark.parametrize(("make", "status", "fragment"), CYCLES)
def test_a_dependency_cycle_is_refused(
    api: httpx.Client, sql: Sql, farm: Farm, make: MakeCall, status: int, fragment: str
) -> None:
    refused(api, sql, farm, make(farm), status, fragment)


DEPTH = "level|depth|deep"
TOO_DEEP = [
    param(
        "new-child-of-the-deepest",
        lambda f: ("PUT", "/api/jobs", js({"title": "t", "command": "x", "parent": f.deep[-1]})),
        400,
        DEPTH,
    ),
    param(
        "move-a-leaf-below-the-deepest",
        lambda f: ("POST", "/api/jobs", js({str(f.x): {"parent": f.deep[-1]}})),
        400,
        DEPTH,
    ),
    param(
        "move-a-subtree-too-low",  # sub > c is two levels: level 8 and 9
        lambda f: ("POST", "/api/jobs", js({str(f.sub): {"parent": f.deep[-2]}})),
        400,
        DEPTH,
    ),
]


@pytest.mark.parametrize(("make", "status", "fragment"), TOO_DEEP)
def test_a_tree_deeper_than_the_limit_is_refused(
    api: httpx.Client, sql: Sql, farm: Farm, make: MakeCall, status: int, fragment: str
) -> None:
    assert len(farm.deep) == Config().limits.max_depth
    refused(api, sql, farm, make(farm), status, fragment)


# --- oversized bodies -----------------------------------------------------------------

BIG_TEXT = "t" * (2 * BODY_LIMIT)
TOO_LARGE = "too large|limit|size"
OVERSIZED = [
    param("PUT", lambda f: ("PUT", "/api/jobs", js({"title": BIG_TEXT})), 413, TOO_LARGE),
    param(
        "POST",
        lambda f: ("POST", "/api/jobs", js({str(f.c): {"title": BIG_TEXT}})),
        413,
        TOO_LARGE,
    ),
    param(
        "DELETE",
        lambda f: ("DELETE", "/api/jobs", js([f.c] * (BODY_LIMIT // 2))),
        413,
        TOO_LARGE,
    ),
    param(
        "affinities",
        lambda f: ("POST", "/api/affinities", js({"3": BIG_TEXT})),
        413,
        TOO_LARGE,
    ),
]


@pytest.mark.parametrize(("make", "status", "fragment"), OVERSIZED)
def test_an_oversized_body_is_refused(
    api: httpx.Client, sql: Sql, farm: Farm, make: MakeCall, status: int, fragment: str
) -> None:
    refused(api, sql, farm, make(farm), status, fragment)


# --- hostile bodies on every route ----------------------------------------------------

# Every write route, as the app documents it: a new route is covered at once.
_OPERATIONS = [
    (method.upper(), path, operation)
    for path, item in create_app(Config(), "postgresql://unused")
    .openapi_schema.to_schema()["paths"]
    .items()
    for method, operation in item.items()
    if method in ("put", "post", "delete", "patch")
]
WRITES = sorted((method, path) for method, path, _ in _OPERATIONS)
# the routes that read no body at all (start a job, delete a secret: Genvid's tools send
# one anyway), which must ignore whatever comes
BODYLESS = {(method, path) for method, path, op in _OPERATIONS if "requestBody" not in op}
# the legacy routes answer text, by design: their callers read a number or a tuple
TEXT_ROUTES = ("/xmlrpc/", "/workers/")
TOO_DEEP = "too deeply"
# each well under BODY_LIMIT, so that it reaches the decoder
HOSTILE = [
    pytest.param(b"[" * 4_000 + b"]" * 4_000, 400, TOO_DEEP, id="deep-arrays"),
    pytest.param(b'{"a":' * 1_500 + b"1" + b"}" * 1_500, 400, TOO_DEEP, id="deep-objects"),
    pytest.param(b'{"a": [' * 800 + b"1" + b"]}" * 800, 400, TOO_DEEP, id="deep-mixed"),
    pytest.param('{"title": "x"}'.encode("utf-16"), 400, MALFORMED_JSON, id="utf-16"),
    pytest.param('{"title": "café"}'.encode("latin-1"), 400, MALFORMED_JSON, id="latin-1"),
    pytest.param(b'{"title": "\\ud800"}', 400, MALFORMED_JSON, id="lone-surrogate"),
    pytest.param(b"[" + b"1," * BODY_LIMIT + b"1]", 413, TOO_LARGE, id="too-large"),
]


@pytest.mark.parametrize(("body", "status", "fragment"), HOSTILE)
@pytest.mark.parametrize(("method", "path"), WRITES)
def test_a_hostile_body_is_refused_on_every_route(
    api: httpx.Client,
    sql: Sql,
    farm: Farm,
    method: str,
    path: str,
    body: bytes,
    status: int,
    fragment: str,
) -> None:
    target = path.replace("{job_id}", str(farm.b)).replace("{name}", "node-1")
    call = (method, target, {**raw(body), "headers": {"content-type": "application/json"}})
    if (method, path) in BODYLESS:
        response = api.request(method, target, **call[2])
        assert response.status_code < 500, f"{method} {target}: {response.text}"
        assert changed_by_request(sql, farm) == []
        return
    if not path.startswith(TEXT_ROUTES):
        refused(api, sql, farm, call, status, fragment)
        return
    response = api.request(method, target, **call[2])
    assert 400 <= response.status_code < 500, f"{method} {target}: {response.status_code}"
    assert response.headers["content-type"].startswith("text/plain")
    assert changed_by_request(sql, farm) == []


def test_the_deepest_body_of_a_default_server_is_refused_by_what_it_is(
    database_url: str, sql: Sql, farm: Farm
) -> None:
    # under the default 8 MiB limit a body can nest a hundred thousand levels
    with ServerThread(Config(), database_url) as base, httpx.Client(base_url=base) as client:
        response = client.put("/api/jobs", content=b"[" * 100_000 + b"]" * 100_000)
    assert response.status_code == 400, response.text
    assert TOO_DEEP in response.json()["detail"]
    assert changed_by_request(sql, farm) == []


# --- text the database cannot hold ----------------------------------------------------

NUL = r"NUL|U\+0000|\\x00|\\u0000|null char|invalid char"
NUL_TEXT = [
    param(
        "new-job-title",
        lambda f: ("PUT", "/api/jobs", js({"title": "a\x00b", "command": "x"})),
        400,
        rf"title|{NUL}",
    ),
    param(
        "edit-dir",
        lambda f: ("POST", "/api/jobs", js({str(f.c): {"dir": "/tmp\x00"}})),
        400,
        rf"dir|{NUL}",
    ),
    param(
        "new-job-affinity",
        lambda f: ("PUT", "/api/jobs", js({"title": "t", "affinity": "li\x00nux"})),
        400,
        rf"affinity|{NUL}",
    ),
    param(
        "affinity-slot",
        lambda f: ("POST", "/api/affinities", js({"3": "gp\x00u"})),
        400,
        rf"affinity|{NUL}",
    ),
    param(
        "worker-rule",
        lambda f: ("POST", "/api/workers", js({"node-1": {"affinity": "li\x00nux"}})),
        400,
        rf"affinity|{NUL}",
    ),
]


@pytest.mark.parametrize(("make", "status", "fragment"), NUL_TEXT)
def test_a_nul_character_in_text_is_refused(
    api: httpx.Client, sql: Sql, farm: Farm, make: MakeCall, status: int, fragment: str
) -> None:
    refused(api, sql, farm, make(farm), status, fragment)


# --- workers and affinities -----------------------------------------------------------

UNKNOWN_WORKERS = [
    param("edit", lambda f: ("POST", "/api/workers", js({"ghost": {"active": 0}})), 404, "ghost"),
    param(
        "edit-with-a-known-one",
        lambda f: (
            "POST",
            "/api/workers",
            js({"node-1": {"active": 0, "affinity": ""}, "ghost": {"active": 0}}),
        ),
        404,
        "ghost",
    ),
    param("delete", lambda f: ("DELETE", "/api/workers", js(["node-1", "ghost"])), 404, "ghost"),
    param("stop", lambda f: ("POST", "/api/stopworkers", js(["node-1", "ghost"])), 404, "ghost"),
    param("start", lambda f: ("POST", "/api/startworkers", js(["ghost"])), 404, "ghost"),
]


@pytest.mark.parametrize(("make", "status", "fragment"), UNKNOWN_WORKERS)
def test_an_unknown_worker_is_refused(
    api: httpx.Client, sql: Sql, farm: Farm, make: MakeCall, status: int, fragment: str
) -> None:
    refused(api, sql, farm, make(farm), status, fragment)


BAD_SLOTS = [
    param("word-slot", lambda f: ("POST", "/api/affinities", js({"x": "cuda"})), 400, "'x'|slot"),
    param("fraction-slot", lambda f: ("POST", "/api/affinities", js({"1.5": "cuda"})), 400, "1.5"),
    param("zero-slot", lambda f: ("POST", "/api/affinities", js({"0": "cuda"})), 400, "slot 0"),
    param(
        "semicolon-in-name",
        lambda f: ("POST", "/api/affinities", js({"3": "my gpu;cpu"})),
        400,
        "my gpu;cpu",
    ),
    param(
        "newline-in-name",
        lambda f: ("POST", "/api/affinities", js({"3": "gpu\ncpu"})),
        400,
        "must not contain",
    ),
    param(
        "control-character-in-name",
        lambda f: ("POST", "/api/affinities", js({"3": "gpu\x00"})),
        400,
        "must not contain",
    ),
    param(
        "comma-in-name",
        lambda f: ("POST", "/api/affinities", js({"3": "gpu,cpu"})),
        400,
        "gpu,cpu",
    ),
    param(
        "same-name-twice",
        lambda f: ("POST", "/api/affinities", js({"3": "cuda", "4": "cuda"})),
        400,
        "cuda",
    ),
    param(
        "name-of-another-slot",
        lambda f: ("POST", "/api/affinities", js({"3": "linux"})),
        400,
        "linux",
    ),
    param(
        "semicolon-in-job-affinity",
        lambda f: ("PUT", "/api/jobs", js({"title": "t", "affinity": "my gpu;x"})),
        400,
        "my gpu;x",
    ),
]


@pytest.mark.parametrize(("make", "status", "fragment"), BAD_SLOTS)
def test_a_bad_affinity_slot_or_name_is_refused(
    api: httpx.Client, sql: Sql, farm: Farm, make: MakeCall, status: int, fragment: str
) -> None:
    refused(api, sql, farm, make(farm), status, fragment)


# --- where_clause ---------------------------------------------------------------------

WHERE_CLAUSES = [
    ("bogus = 1", "bogus", "unknown-column"),
    ("user_name = 'ana'", "user_name", "table-column-not-a-job-field"),
    ("1=1; DROP TABLE jobs", "where_clause", "drop-table"),
    ("state='x' OR 1=1 --", "where_clause", "or-true-comment"),
    ("state='x'); DROP TABLE jobs; --", "where_clause", "close-and-drop"),
    ("id IN (SELECT id FROM jobs)", "where_clause", "subquery"),
    ("id = 'abc'", "'id'", "word-for-integer"),
    ("priority > 1.5", "'priority'", "fraction-for-integer"),
    ("title LIKE 5", "LIKE", "number-for-pattern"),
    ("state = NULL", "NULL", "null"),
]
WHERE_ROUTES = [
    pytest.param("/api/jobs/where/", clause, fragment, id=f"where-{case_id}")
    for clause, fragment, case_id in WHERE_CLAUSES
] + [
    pytest.param("/api/jobs/count/where/", clause, fragment, id=f"count-{case_id}")
    for clause, fragment, case_id in WHERE_CLAUSES
    if case_id in ("unknown-column", "drop-table", "or-true-comment", "word-for-integer")
]


@pytest.mark.parametrize(("route", "clause", "fragment"), WHERE_ROUTES)
def test_a_bad_where_clause_is_refused(
    api: httpx.Client, sql: Sql, farm: Farm, route: str, clause: str, fragment: str
) -> None:
    refused(api, sql, farm, ("GET", route, {"params": {"where_clause": clause}}), 400, fragment)
    assert sql.fetchval("SELECT to_regclass('public.jobs')::text") == "jobs"
    assert sql.fetchval("SELECT count(*) FROM jobs") == len(farm.ids) + len(farm.deep)


QUERY_PARAMETERS = [
    pytest.param("/api/events", {"howlong": -1}, "howlong", id="events-howlong-negative"),
    pytest.param("/api/events", {"howlong": "x"}, "howlong", id="events-howlong-word"),
    pytest.param("/api/events", {"job": "abc"}, "job", id="events-job-word"),
    pytest.param("/api/events", {"job": -1}, "job", id="events-job-negative"),
    pytest.param("/api/events", {"job": 2**63}, "job", id="events-job-huge"),
    pytest.param("/api/jobs/where/", {"where_clause": "", "min": -1}, "min", id="where-min"),
    pytest.param("/api/jobs/where/", {"where_clause": "", "max": "x"}, "max", id="where-max"),
    # digits to str.isdigit(), not to int()
    pytest.param("/api/jobs/where/", {"min": "²"}, "min", id="where-min-superscript"),
    pytest.param("/api/jobs/where/", {"max": "①"}, "max", id="where-max-circled"),
]


@pytest.mark.parametrize(("path", "params", "fragment"), QUERY_PARAMETERS)
def test_a_bad_query_parameter_is_refused(
    api: httpx.Client, sql: Sql, farm: Farm, path: str, params: dict[str, Any], fragment: str
) -> None:
    refused(api, sql, farm, ("GET", path, {"params": params}), 400, fragment)


# --- methods --------------------------------------------------------------------------

WRONG_METHODS = [
    pytest.param("PATCH", "/api/jobs", id="PATCH-jobs"),
    pytest.param("GET", "/api/resetjobs", id="GET-resetjobs"),
    pytest.param("PUT", "/api/workers", id="PUT-workers"),
    pytest.param("DELETE", "/api/affinities", id="DELETE-affinities"),
    pytest.param("DELETE", "/xmlrpc/addjob", id="DELETE-addjob"),
]


@pytest.mark.parametrize(("method", "path"), WRONG_METHODS)
def test_a_wrong_method_is_refused(
    api: httpx.Client, sql: Sql, farm: Farm, method: str, path: str
) -> None:
    refused(api, sql, farm, (method, path, js([farm.c])), 405, "method")


# --- /xmlrpc/addjob answers text ------------------------------------------------------

ADDJOB_FAILURES = [
    pytest.param("GET", {"priority": "high"}, "priority", id="GET-priority-word"),
    pytest.param("POST", {"priority": "high"}, "priority", id="POST-priority-word"),
    pytest.param("POST", {"priority": "1.5"}, "priority", id="POST-priority-fraction"),
    pytest.param("POST", {"priority": str(2**31)}, "priority", id="POST-priority-over-int32"),
    pytest.param("GET", {"parent": "999999"}, "999999", id="GET-unknown-parent"),
    pytest.param("POST", {"parent": "999999"}, "999999", id="POST-unknown-parent"),
    pytest.param("POST", {"parent": "{c}"}, "command", id="POST-parent-is-a-leaf"),
    pytest.param("POST", {"dependencies": "{a},x"}, "'x'", id="POST-dependency-word"),
    pytest.param("POST", {"dependencies": "999999"}, "999999", id="POST-unknown-dependency"),
    pytest.param("POST", {"title": "a\x00b"}, rf"title|{NUL}", id="POST-nul-in-title"),
]


@pytest.mark.parametrize(("method", "fields", "fragment"), ADDJOB_FAILURES)
def test_addjob_failure_answers_minus_one_and_says_why(
    api: httpx.Client, sql: Sql, farm: Farm, method: str, fields: dict[str, str], fragment: str
) -> None:
    """This legacy route answers text by design: `-1`, the reason in X-Corral-Error."""
    form = {"title": "t", "cmd": "echo", **{k: v.format(**farm.ids) for k, v in fields.items()}}
    if method == "GET":
        response = api.get("/xmlrpc/addjob", params=form)
    else:
        response = api.post("/xmlrpc/addjob", data=form)
    changed = changed_by_request(sql, farm)
    assert (response.status_code, response.text) == (400, "-1"), response.text
    assert response.headers["content-type"].startswith("text/plain")
    reason = response.headers.get("x-corral-error", "")
    assert re.search(fragment, reason, re.IGNORECASE), reason
    assert changed == []
