"""API tokens and access levels, against the real server and database: an open server
while no token exists, 401 for callers without a valid token, the admin, user and worker
roles, revocation, the `corral token` commands, the refusal to serve beyond loopback
without tokens, and a real worker process with a token.

The server caches "tokens are required" and each token lookup for `core.tokens.FRESH`
seconds, so the tokens a test needs are created before its server answers a request; the
few tests about a running server noticing a change poll with a generous deadline."""

import base64
import hashlib
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec
import pytest

from core.config import AuthConfig, CoalitionConfig, Config, DispatchConfig
from core.tokens import PREFIX, Role
from tests.conftest import ServerThread, Sql
from tests.farm import create_token, ok, submit, with_tokens
from tests.farm import get as job
from tests.farm import run as run_to_end
from tests.processes import CORRAL, Process, Processes, free_port

T = TypeVar("T")
PATIENCE = 30.0
# the tokens every test starts with: name -> role
TOKENS: dict[str, Role] = {
    "root": "admin",
    "ana": "user",
    "bob": "user",
    "node-a": "worker",
    "node-b": "worker",
}
UNKNOWN = PREFIX + "x" * 43
V2 = "/api/v2/workers"


# -- tokens, servers and callers ------------------------------------------------------------


def revoke_token(url: str, token_id: int) -> None:
    with_tokens(url, lambda t: t.revoke(token_id))


@dataclass
class Keys:
    secrets: dict[str, str]
    ids: dict[str, int]


@pytest.fixture
def keys(database_url: str) -> Keys:
    """The tokens of TOKENS, created before any server answers."""
    made = {name: create_token(database_url, name, role) for name, role in TOKENS.items()}
    return Keys(
        secrets={name: secret for name, (_, secret) in made.items()},
        ids={name: token_id for name, (token_id, _) in made.items()},
    )


@pytest.fixture
def config(request: pytest.FixtureRequest) -> Config:
    """Quick dispatch; a test may pass `[auth]` settings through an indirect parameter."""
    auth: dict[str, bool] = getattr(request, "param", {})
    return Config(
        auth=AuthConfig(**auth),
        dispatch=DispatchConfig(interval=0.2, pick_wait=2.0, legacy_pick_wait=0.5),
    )


class Callers:
    """HTTP clients to one server, each sending one token (or none)."""

    def __init__(self, base: str, keys: Keys) -> None:
        self.base = base
        self.keys = keys
        self.clients: list[httpx.Client] = []

    def __call__(self, who: str | None = None, authorization: str | None = None) -> httpx.Client:
        headers: dict[str, str] = {}
        if who is not None:
            headers["Authorization"] = f"Bearer {self.keys.secrets[who]}"
        if authorization is not None:
            headers["Authorization"] = authorization
        client = httpx.Client(base_url=self.base, headers=headers, timeout=60)
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.close()


@contextmanager
def serving(config: Config, database_url: str, keys: Keys) -> Iterator[Callers]:
    with ServerThread(config, database_url) as base:
        callers = Callers(base, keys)
        try:
            yield callers
        finally:
            callers.close()


@pytest.fixture
def client(config: Config, database_url: str, keys: Keys) -> Iterator[Callers]:
    """A server on a database where the tokens of TOKENS exist."""
    with serving(config, database_url, keys) as callers:
        yield callers


# -- looking at answers and jobs --------------------------------------------------------


def refused(response: httpx.Response, status: int) -> str:
    """A JSON error with this status; its detail."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status_code"] == status
    detail: str = body["detail"]
    return detail


def unauthorized(response: httpx.Response) -> str:
    detail = refused(response, 401)
    # Basic too, so that a browser asks for the token (Coalition's web page)
    assert response.headers["www-authenticate"] == 'Bearer realm="Corral", Basic realm="Corral"'
    return detail


def wait_until(check: Callable[[], bool], what: str, patience: float = PATIENCE) -> None:
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"never happened within {patience} s: {what}")


def not_echoed(response: httpx.Response, secret: str) -> None:
    assert secret not in response.text
    for name, value in response.headers.items():
        assert secret not in value, f"the header {name} carries the token"


@dataclass
class Jobs:
    ana_group: int
    ana_leaf: int
    ana_other: int
    bob_group: int
    bob_leaf: int


def jobs_of_ana_and_bob(client: Callers) -> Jobs:
    """A group with leaves for each of ana and bob, submitted with their own tokens."""
    ana, bob = client("ana"), client("bob")
    ana_group = submit(ana, title="ana's shot")
    bob_group = submit(bob, title="bob's shot")
    return Jobs(
        ana_group=ana_group,
        ana_leaf=submit(ana, parent=ana_group, title="a1", command="echo a1"),
        ana_other=submit(ana, parent=ana_group, title="a2", command="echo a2"),
        bob_group=bob_group,
        bob_leaf=submit(bob, parent=bob_group, title="b1", command="echo b1"),
    )


# -- an open server -----------------------------------------------------------------------


def test_with_no_token_ever_created_the_api_is_open(
    config: Config, database_url: str, sql: Sql
) -> None:
    with ServerThread(config, database_url) as base, httpx.Client(base_url=base) as anonymous:
        response = anonymous.put("/api/jobs", json={"title": "open", "command": "echo"})
        assert response.status_code == 200, response.text
        job_id = response.json()
        assert job(anonymous, job_id)["title"] == "open"
        ok(anonymous.post("/api/affinities", json={"1": "LINUX"}))
        ok(anonymous.request("DELETE", "/api/jobs", json=[job_id]))
    assert sql.fetchval("SELECT count(*) FROM jobs") == 0
    assert sql.fetchval("SELECT count(*) FROM tokens") == 0


def test_creating_the_first_token_closes_a_running_open_server(
    config: Config, database_url: str
) -> None:
    with ServerThread(config, database_url) as base, httpx.Client(base_url=base) as anonymous:
        assert anonymous.get("/api/jobs").status_code == 200
        create_token(database_url, "root", "admin")
        # the server trusts "no token exists" for a few seconds at most
        wait_until(
            lambda: anonymous.get("/api/jobs").status_code == 401,
            "anonymous reads are refused once a token exists",
        )
        unauthorized(anonymous.put("/api/jobs", json={"title": "late"}))


# -- how tokens are kept --------------------------------------------------------------------


def test_the_database_keeps_only_a_sha256_of_each_token(database_url: str, sql: Sql) -> None:
    made = {name: create_token(database_url, name, role) for name, role in TOKENS.items()}
    rows = sql.fetch("SELECT id, name, role, hash FROM tokens ORDER BY id")
    assert [(r["id"], r["name"], r["role"]) for r in rows] == [
        (token_id, name, TOKENS[name]) for name, (token_id, _) in made.items()
    ]
    for row in rows:
        secret = made[row["name"]][1]
        assert secret.startswith(PREFIX)
        assert bytes(row["hash"]) == hashlib.sha256(secret.encode()).digest()
    # the token's text is in no column, in any form
    table = " ".join(r[0] for r in sql.fetch("SELECT t::text FROM tokens t"))
    for _, secret in made.values():
        assert secret not in table
        assert secret.removeprefix(PREFIX) not in table
        assert secret.encode().hex() not in table


def test_every_token_is_different(database_url: str) -> None:
    secrets = {create_token(database_url, "ana", "user")[1] for _ in range(20)}
    assert len(secrets) == 20


# -- callers without a valid token --------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/jobs", None),
        ("GET", "/api/workers", None),
        ("PUT", "/api/jobs", {"title": "anonymous"}),
        ("POST", "/api/pausejobs", [1]),
        ("POST", "/api/affinities", {"1": "LINUX"}),
        ("POST", "/api/v2/jobs/bulk", {"jobs": [{"title": "anonymous"}]}),
        ("POST", f"{V2}/register", {"name": "node-a"}),
        ("POST", f"{V2}/node-a/pick", {"slots": 1, "wait": 0}),
    ],
)
def test_anonymous_requests_get_401_with_a_json_body_and_www_authenticate(
    client: Callers, sql: Sql, method: str, path: str, body: Any
) -> None:
    before = sql.snapshot()
    detail = unauthorized(client().request(method, path, json=body))
    assert "corral token create" in detail
    assert sql.snapshot() == before


def test_anonymous_legacy_routes_get_401(client: Callers, sql: Sql) -> None:
    anonymous = client()
    before = sql.snapshot()
    unauthorized(anonymous.post("/xmlrpc/addjob", data={"title": "x", "cmd": "echo"}))
    unauthorized(anonymous.get("/xmlrpc/addjob", params={"title": "x", "cmd": "echo"}))
    unauthorized(anonymous.post("/workers/pickjob", data={"hostname": "node-a"}))
    assert sql.snapshot() == before


@pytest.mark.parametrize(
    "shape",
    ["Digest {secret}", "Basic {secret}", "{secret}", "Bearer", "Bearer:{secret}", "Token"],
)
def test_a_malformed_authorization_header_gets_401_without_the_token(
    client: Callers, sql: Sql, shape: str
) -> None:
    secret = client.keys.secrets["root"]
    before = sql.snapshot()
    response = client(authorization=shape.format(secret=secret)).put(
        "/api/jobs", json={"title": "x"}
    )
    unauthorized(response)
    not_echoed(response, secret)
    assert sql.snapshot() == before


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_token_as_scale_clients_send_it_acts_as_the_token(client: Callers) -> None:
    ana = client(authorization=f"Token {client.keys.secrets['ana']}")
    assert job(ana, submit(ana, title="from a Scale client"))["user"] == "ana"


def test_basic_auth_with_the_token_as_password_acts_as_the_token(client: Callers, sql: Sql) -> None:
    # what a browser sends once its user typed the token into the password prompt
    ana = client(authorization=basic("whoever", client.keys.secrets["ana"]))
    job_id = submit(ana, title="from a browser")
    assert job(ana, job_id)["user"] == "ana"
    before = sql.snapshot()
    secret = client.keys.secrets["ana"]
    # the token as the user name, no password, not base64
    for wrong in (basic("ana", UNKNOWN), basic(secret, ""), "Basic %%%"):
        response = client(authorization=wrong).put("/api/jobs", json={"title": "x"})
        unauthorized(response)
        not_echoed(response, secret)
    assert sql.snapshot() == before


def test_coalition_s_page_has_a_browser_ask_for_the_token(
    config: Config, database_url: str, keys: Keys, tmp_path: Path
) -> None:
    (tmp_path / "index.html").write_text("<title>Coalition Server</title>")
    page = msgspec.structs.replace(config, coalition=CoalitionConfig(web_frontend=str(tmp_path)))
    with serving(page, database_url, keys) as client:
        unauthorized(client().get("/coalition/index.html"))
        browser = client(authorization=basic("ana", keys.secrets["ana"]))
        assert browser.get("/coalition/index.html").text == "<title>Coalition Server</title>"
        # the page's own calls, with the credentials the browser then sends along
        assert browser.get("/api/jobs/where/", params={"where_clause": "parent=0"}).json() == []


def test_the_schema_viewer_has_a_browser_ask_for_the_token_and_its_files_need_none(
    client: Callers,
) -> None:
    browser = client(authorization=basic("ana", client.keys.secrets["ana"]))
    for path in ("/schema", "/schema/swagger", "/schema/openapi.json"):
        unauthorized(client().get(path))
        assert browser.get(path).status_code == 200, path
    # the viewer's scripts are the page's vendored files, public as the page's are
    for name in ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"):
        assert client().get(f"/dashboard/vendor/{name}").status_code == 200, name


@pytest.mark.parametrize(
    "secret",
    [UNKNOWN, "corral_" + "A" * 100, "not-even-a-corral-token"],
)
def test_an_unknown_token_gets_401_without_the_token(
    client: Callers, sql: Sql, secret: str
) -> None:
    before = sql.snapshot()
    for response in (
        client(authorization=f"Bearer {secret}").get("/api/jobs"),
        client(authorization=f"bearer {secret}").put("/api/jobs", json={"title": "x"}),
    ):
        detail = unauthorized(response)
        assert "unknown or revoked" in detail
        not_echoed(response, secret)
    assert sql.snapshot() == before


@pytest.mark.parametrize("config", [{"public_reads": True}], indirect=True)
def test_public_reads_allow_anonymous_gets_but_not_writes(client: Callers, sql: Sql) -> None:
    job_id = submit(client("ana"), title="shot")
    anonymous = client()
    assert [j["id"] for j in anonymous.get("/api/jobs").json()] == [job_id]
    assert job(anonymous, job_id)["user"] == "ana"
    assert anonymous.get("/api/workers").status_code == 200
    before = sql.snapshot()
    unauthorized(anonymous.put("/api/jobs", json={"title": "anonymous"}))
    unauthorized(anonymous.post("/api/pausejobs", json=[job_id]))
    unauthorized(anonymous.request("DELETE", "/api/jobs", json=[job_id]))
    assert sql.snapshot() == before


def test_without_public_reads_a_user_token_reads_and_anonymous_does_not(
    client: Callers,
) -> None:
    job_id = submit(client("ana"), title="shot")
    assert [j["id"] for j in client("bob").get("/api/jobs").json()] == [job_id]
    unauthorized(client().get(f"/api/jobs/{job_id}"))


# -- the admin --------------------------------------------------------------------------------


def test_an_admin_token_may_do_everything(client: Callers, sql: Sql) -> None:
    admin = client("root")
    jobs = jobs_of_ana_and_bob(client)
    mine = submit(admin, title="for carl", command="echo", user="carl")
    assert job(admin, mine)["user"] == "carl"
    # other users' jobs
    ok(admin.post("/api/jobs", json={str(jobs.ana_leaf): {"title": "renamed"}}))
    assert job(admin, jobs.ana_leaf)["title"] == "renamed"
    ok(admin.post("/api/pausejobs", json=[jobs.ana_group]))
    assert job(admin, jobs.ana_leaf)["state"] == "PAUSED"
    ok(admin.post(f"/api/jobs/{jobs.bob_leaf}/dependencies", json=[jobs.ana_leaf]))
    assert job(admin, jobs.bob_leaf)["dependencies"] == [jobs.ana_leaf]
    ok(admin.request("DELETE", "/api/jobs", json=[jobs.bob_group]))
    assert admin.get(f"/api/jobs/{jobs.bob_leaf}").status_code == 404
    # the worker protocol as any worker, and the workers themselves
    register = admin.post(f"{V2}/register", json={"name": "node-z", "affinity": "LINUX"})
    assert register.status_code == 200, register.text
    ok(admin.post("/api/workers", json={"node-z": {"affinity": "GPU"}}))
    ok(admin.post("/api/stopworkers", json=["node-z"]))
    assert sql.fetchval("SELECT active FROM workers WHERE name = 'node-z'") is False
    ok(admin.post("/api/startworkers", json=["node-z"]))
    ok(admin.post("/api/affinities", json={"1": "RENDER"}))
    assert admin.get("/api/affinities").json()["1"] == "RENDER"
    ok(admin.request("DELETE", "/api/workers", json=["node-z"]))
    assert sql.fetchval("SELECT count(*) FROM workers WHERE name = 'node-z'") == 0
    bulk = admin.post("/api/v2/jobs/bulk", json={"jobs": [{"title": "b", "user": "dan"}]})
    assert bulk.status_code == 200, bulk.text
    assert job(admin, bulk.json()["ids"][0])["user"] == "dan"


# -- user tokens ------------------------------------------------------------------------------


def test_a_user_token_submits_as_its_own_name_when_user_is_empty(client: Callers) -> None:
    ana = client("ana")
    blank = submit(ana, title="no user given", command="echo")
    named = submit(ana, title="own name given", command="echo", user="ana")
    assert job(ana, blank)["user"] == "ana"
    assert job(ana, named)["user"] == "ana"


def test_a_user_token_submitting_as_another_user_is_403_and_creates_nothing(
    client: Callers, sql: Sql
) -> None:
    before = sql.snapshot()
    detail = refused(client("ana").put("/api/jobs", json={"title": "x", "user": "bob"}), 403)
    assert "ana" in detail
    assert sql.snapshot() == before


def test_a_user_token_cannot_submit_under_another_users_group(client: Callers, sql: Sql) -> None:
    jobs = jobs_of_ana_and_bob(client)
    before = sql.snapshot()
    detail = refused(
        client("ana").put("/api/jobs", json={"parent": jobs.bob_group, "title": "intruder"}), 403
    )
    assert str(jobs.bob_group) in detail
    assert sql.snapshot() == before
    # under its own group it may
    child = submit(client("ana"), parent=jobs.ana_group, title="mine", command="echo")
    assert job(client("ana"), child)["parent"] == jobs.ana_group


@dataclass(frozen=True)
class Op:
    """A change to a job `j` (`o`: another job of the same owner, for dependencies)."""

    method: str
    path: str
    body: Callable[[int, int], Any]
    # as the admin, before the change: puts the job where the change shows
    prepare: Callable[[httpx.Client, Sql, int], None]
    # as the admin, after the change went through
    check: Callable[[httpx.Client, int, int], None]


def _nothing(admin: httpx.Client, sql: Sql, j: int) -> None:
    return None


def _paused(admin: httpx.Client, sql: Sql, j: int) -> None:
    ok(admin.post("/api/pausejobs", json=[j]))


def _in_error(admin: httpx.Client, sql: Sql, j: int) -> None:
    run_to_end(sql, j, exit_code=1)
    assert job(admin, j)["state"] == "ERROR"


def _state_is(state: str) -> Callable[[httpx.Client, int, int], None]:
    def check(admin: httpx.Client, j: int, o: int) -> None:
        assert job(admin, j)["state"] == state

    return check


def _gone(admin: httpx.Client, j: int, o: int) -> None:
    assert admin.get(f"/api/jobs/{j}").status_code == 404


def _renamed(admin: httpx.Client, j: int, o: int) -> None:
    assert job(admin, j)["title"] == "changed"


def _depends(admin: httpx.Client, j: int, o: int) -> None:
    shown = job(admin, j)
    assert shown["dependencies"] == [o]
    assert shown["state"] == "PENDING"


OPS: dict[str, Op] = {
    "delete": Op("DELETE", "/api/jobs", lambda j, o: [j], _nothing, _gone),
    "pause": Op("POST", "/api/pausejobs", lambda j, o: [j], _nothing, _state_is("PAUSED")),
    "start": Op("POST", "/api/startjobs", lambda j, o: [j], _paused, _state_is("WAITING")),
    "reset": Op("POST", "/api/resetjobs", lambda j, o: [j], _paused, _state_is("WAITING")),
    "reset errors": Op(
        "POST", "/api/reseterrorjobs", lambda j, o: [j], _in_error, _state_is("WAITING")
    ),
    "edit": Op(
        "POST", "/api/jobs", lambda j, o: {str(j): {"title": "changed"}}, _nothing, _renamed
    ),
    "pause by edit": Op(
        "POST",
        "/api/jobs",
        lambda j, o: {str(j): {"state": "PAUSED"}},
        _nothing,
        _state_is("PAUSED"),
    ),
    "dependencies": Op("POST", "/api/jobs/{j}/dependencies", lambda j, o: [o], _nothing, _depends),
    "delete on the web page's prefix": Op(
        "DELETE", "/api/webfrontend/jobs", lambda j, o: [j], _nothing, _gone
    ),
    "edit on the web page's prefix": Op(
        "POST",
        "/api/webfrontend/jobs",
        lambda j, o: {str(j): {"title": "changed"}},
        _nothing,
        _renamed,
    ),
}


def apply(caller: httpx.Client, op: Op, j: int, o: int) -> httpx.Response:
    return caller.request(op.method, op.path.format(j=j), json=op.body(j, o))


@pytest.mark.parametrize("name", list(OPS))
def test_a_user_token_cannot_change_another_users_job(client: Callers, sql: Sql, name: str) -> None:
    op = OPS[name]
    jobs = jobs_of_ana_and_bob(client)
    op.prepare(client("root"), sql, jobs.ana_leaf)
    before = sql.snapshot()
    detail = refused(apply(client("bob"), op, jobs.ana_leaf, jobs.ana_other), 403)
    assert str(jobs.ana_leaf) in detail
    assert sql.snapshot() == before


@pytest.mark.parametrize("name", list(OPS))
def test_a_user_token_changes_its_own_job(client: Callers, sql: Sql, name: str) -> None:
    op = OPS[name]
    jobs = jobs_of_ana_and_bob(client)
    op.prepare(client("root"), sql, jobs.ana_leaf)
    ok(apply(client("ana"), op, jobs.ana_leaf, jobs.ana_other))
    op.check(client("root"), jobs.ana_leaf, jobs.ana_other)


@pytest.mark.parametrize("config", [{"users_change_any": True}], indirect=True)
@pytest.mark.parametrize("name", list(OPS))
def test_with_users_change_any_a_user_token_changes_another_users_job(
    client: Callers, sql: Sql, name: str
) -> None:
    op = OPS[name]
    jobs = jobs_of_ana_and_bob(client)
    op.prepare(client("root"), sql, jobs.ana_leaf)
    ok(apply(client("bob"), op, jobs.ana_leaf, jobs.ana_other))
    op.check(client("root"), jobs.ana_leaf, jobs.ana_other)


def test_a_user_token_changing_several_jobs_with_one_foreign_changes_none(
    client: Callers, sql: Sql
) -> None:
    jobs = jobs_of_ana_and_bob(client)
    before = sql.snapshot()
    refused(client("ana").post("/api/pausejobs", json=[jobs.ana_leaf, jobs.bob_leaf]), 403)
    assert sql.snapshot() == before


def test_a_user_token_cannot_give_its_job_to_another_user(client: Callers, sql: Sql) -> None:
    jobs = jobs_of_ana_and_bob(client)
    before = sql.snapshot()
    response = client("ana").post("/api/jobs", json={str(jobs.ana_leaf): {"user": "bob"}})
    refused(response, 403)
    assert sql.snapshot() == before


def test_a_user_token_clearing_its_jobs_user_keeps_it_as_the_owner(
    client: Callers, sql: Sql
) -> None:
    jobs = jobs_of_ana_and_bob(client)
    ok = client("ana").post("/api/jobs", json={str(jobs.ana_leaf): {"user": ""}})
    assert ok.status_code == 200, ok.text
    assert sql.fetchval("SELECT user_name FROM jobs WHERE id = $1", jobs.ana_leaf) == "ana"


def test_a_user_token_cannot_move_its_job_under_another_users_group(
    client: Callers, sql: Sql
) -> None:
    jobs = jobs_of_ana_and_bob(client)
    before = sql.snapshot()
    response = client("ana").post(
        "/api/jobs", json={str(jobs.ana_leaf): {"parent": jobs.bob_group}}
    )
    refused(response, 403)
    assert sql.snapshot() == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/workers", {"node-z": {"affinity": "GPU"}}),
        ("POST", "/api/stopworkers", ["node-z"]),
        ("POST", "/api/startworkers", ["node-z"]),
        ("DELETE", "/api/workers", ["node-z"]),
        ("POST", "/api/affinities", {"1": "LINUX"}),
        ("POST", "/api/webfrontend/affinities", {"1": "LINUX"}),
    ],
)
@pytest.mark.parametrize("who", ["ana", "node-z"])
def test_users_and_workers_cannot_administer_workers_or_affinities(
    config: Config,
    database_url: str,
    keys: Keys,
    sql: Sql,
    who: str,
    method: str,
    path: str,
    body: Any,
) -> None:
    # node-z's own token: a worker may not edit even itself
    keys.secrets["node-z"] = create_token(database_url, "node-z", "worker")[1]
    with serving(config, database_url, keys) as client:
        registered = client("root").post(f"{V2}/register", json={"name": "node-z"})
        assert registered.status_code == 200, registered.text
        ok(client("root").post("/api/stopworkers", json=["node-z"]))
        before = sql.snapshot()
        detail = refused(client(who).request(method, path, json=body), 403)
        assert "admin" in detail
        assert sql.snapshot() == before


def test_a_user_token_cannot_speak_the_worker_protocol(client: Callers, sql: Sql) -> None:
    ana = client("ana")
    before = sql.snapshot()
    refused(ana.post(f"{V2}/register", json={"name": "ana"}), 403)
    refused(ana.post(f"{V2}/ana/pick", json={"slots": 1, "wait": 0}), 403)
    refused(ana.post("/workers/pickjob", data={"hostname": "ana"}), 403)
    assert sql.snapshot() == before


def test_bulk_submission_follows_the_same_rules(client: Callers, sql: Sql) -> None:
    jobs = jobs_of_ana_and_bob(client)
    ana = client("ana")
    response = ana.post(
        "/api/v2/jobs/bulk",
        json={"parent": jobs.ana_group, "jobs": [{"title": "f1"}, {"title": "f2", "user": "ana"}]},
    )
    assert response.status_code == 200, response.text
    ids = response.json()["ids"]
    assert [job(ana, i)["user"] for i in ids] == ["ana", "ana"]
    before = sql.snapshot()
    as_bob = {"jobs": [{"title": "f3"}, {"title": "f4", "user": "bob"}]}
    refused(ana.post("/api/v2/jobs/bulk", json=as_bob), 403)
    under_bob = {"parent": jobs.bob_group, "jobs": [{"title": "f5"}]}
    refused(ana.post("/api/v2/jobs/bulk", json=under_bob), 403)
    refused(client("node-a").post("/api/v2/jobs/bulk", json={"jobs": [{"title": "f6"}]}), 403)
    assert sql.snapshot() == before


def test_xmlrpc_addjob_follows_the_same_rules(client: Callers, sql: Sql) -> None:
    jobs = jobs_of_ana_and_bob(client)
    ana = client("ana")
    added = ana.post("/xmlrpc/addjob", data={"title": "legacy", "cmd": "echo"})
    assert added.status_code == 200, added.text
    assert job(ana, int(added.text))["user"] == "ana"
    before = sql.snapshot()
    for fields, reason in (
        ({"title": "as bob", "cmd": "echo", "user": "bob"}, "'bob'"),
        ({"title": "under bob", "cmd": "echo", "parent": str(jobs.bob_group)}, "other users"),
    ):
        # the legacy tools read a number: -1, with the reason in a header
        response = ana.post("/xmlrpc/addjob", data=fields)
        assert 400 <= response.status_code < 500
        assert response.text == "-1"
        assert reason in response.headers["x-corral-error"]
    refused(client("node-a").post("/xmlrpc/addjob", data={"title": "w", "cmd": "echo"}), 403)
    assert sql.snapshot() == before


# -- worker tokens -----------------------------------------------------------------------------


def test_a_worker_token_cannot_submit(client: Callers, sql: Sql) -> None:
    node = client("node-a")
    before = sql.snapshot()
    response = node.put("/api/jobs", json={"title": "x", "command": "echo"})
    assert "worker" in refused(response, 403)
    not_echoed(response, client.keys.secrets["node-a"])
    refused(node.get("/xmlrpc/addjob", params={"title": "x", "cmd": "echo"}), 403)
    assert sql.snapshot() == before


def test_a_worker_token_cannot_read_jobs_without_public_reads(client: Callers) -> None:
    job_id = submit(client("ana"), title="shot")
    node = client("node-a")
    refused(node.get("/api/jobs"), 403)
    refused(node.get(f"/api/jobs/{job_id}"), 403)


@pytest.mark.parametrize("config", [{"public_reads": True}], indirect=True)
def test_a_worker_token_reads_jobs_with_public_reads(client: Callers) -> None:
    job_id = submit(client("ana"), title="shot")
    assert client().get("/api/jobs").status_code == 200
    response = client("node-a").get("/api/jobs")
    assert response.status_code == 200, response.text
    assert [j["id"] for j in response.json()] == [job_id]


def pick_run(api: httpx.Client, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        response = api.post(f"{V2}/{name}/pick", json={"slots": 1, "wait": 1.0})
        assert response.status_code == 200, response.text
        runs: list[dict[str, Any]] = response.json()["runs"]
        if runs:
            return runs[0]
    pytest.fail(f"{name} got no run in {PATIENCE} s")


def test_a_worker_token_works_the_protocol_as_its_own_name(client: Callers) -> None:
    node = client("node-a")
    registered = node.post(f"{V2}/register", json={"name": "node-a", "slots": 1})
    assert registered.status_code == 200, registered.text
    job_id = submit(client("ana"), title="frame", command="render")
    run = pick_run(node, "node-a")
    assert run["job"] == job_id
    beat = node.post(
        f"{V2}/node-a/heartbeat", json={"runs": [{"event": run["event"], "output": "hi\n"}]}
    )
    assert beat.status_code == 200, beat.text
    assert beat.json()["runs"][0]["action"] == "continue"
    finish = node.post(f"{V2}/node-a/finish", json={"event": run["event"], "exit_code": 0})
    assert finish.status_code == 200, finish.text
    assert finish.json()["result"] == "FINISHED"
    admin = client("root")
    shown = job(admin, job_id)
    assert (shown["state"], shown["worker"]) == ("FINISHED", "node-a")
    assert admin.get(f"/api/jobs/{job_id}/log").json() == "hi\n"


def test_a_worker_token_works_the_legacy_protocol_as_its_own_host_name(client: Callers) -> None:
    node = client("node-a")
    job_id = submit(client("ana"), title="frame", command="render")
    deadline = time.monotonic() + PATIENCE
    answer = ""
    while time.monotonic() < deadline:
        response = node.post("/workers/pickjob", data={"hostname": "node-a"})
        assert response.status_code == 200, response.text
        answer = response.text
        if not answer.startswith("(-1,"):
            break
    assert answer.startswith(f"({job_id}, 'render'")
    beat = node.post("/workers/heartbeat", data={"hostname": "node-a", "jobId": str(job_id)})
    assert (beat.status_code, beat.text) == (200, "true")
    end = node.post(
        "/workers/endjob", data={"hostname": "node-a", "jobId": str(job_id), "errorCode": "0"}
    )
    assert (end.status_code, end.text) == (200, "1")
    assert job(client("root"), job_id)["state"] == "FINISHED"


# what node-a's token sends to speak for node-b, given node-b's run (event) and its job
AS_NODE_B: dict[str, Callable[[int, int], tuple[str, dict[str, Any]]]] = {
    "register": lambda e, j: (f"{V2}/register", {"json": {"name": "node-b"}}),
    "pick": lambda e, j: (f"{V2}/node-b/pick", {"json": {"slots": 1, "wait": 0}}),
    "heartbeat": lambda e, j: (
        f"{V2}/node-b/heartbeat",
        {"json": {"runs": [{"event": e, "output": "forged"}]}},
    ),
    "finish": lambda e, j: (f"{V2}/node-b/finish", {"json": {"event": e, "exit_code": 1}}),
    "finish in a pick": lambda e, j: (
        f"{V2}/node-b/pick",
        {"json": {"wait": 0, "finished": [{"event": e, "exit_code": 1}]}},
    ),
    "legacy pickjob": lambda e, j: ("/workers/pickjob", {"data": {"hostname": "node-b"}}),
    "legacy heartbeat": lambda e, j: (
        "/workers/heartbeat",
        {"data": {"hostname": "node-b", "jobId": str(j), "log": "Zm9yZ2Vk"}},
    ),
    "legacy endjob": lambda e, j: (
        "/workers/endjob",
        {"data": {"hostname": "node-b", "jobId": str(j), "errorCode": "1"}},
    ),
}


@pytest.mark.parametrize("route", list(AS_NODE_B))
def test_a_worker_token_acting_as_another_worker_is_403_and_changes_nothing(
    client: Callers, sql: Sql, route: str
) -> None:
    # node-b runs a job (driven by the admin); node-a's token tries to speak for node-b
    admin = client("root")
    assert admin.post(f"{V2}/register", json={"name": "node-b"}).status_code == 200
    job_id = submit(admin, title="frame", command="render")
    run = pick_run(admin, "node-b")
    assert run["job"] == job_id
    path, request = AS_NODE_B[route](run["event"], job_id)
    before = sql.snapshot()
    detail = refused(client("node-a").post(path, **request), 403)
    assert "node-a" in detail
    assert "node-b" in detail
    assert sql.snapshot() == before
    shown = job(admin, job_id)
    assert (shown["state"], shown["worker"]) == ("WORKING", "node-b")
    assert admin.get(f"/api/jobs/{job_id}/log").json() == ""


# -- revocation ----------------------------------------------------------------------------


def test_a_revoked_token_is_refused_by_a_fresh_server(
    config: Config, database_url: str, keys: Keys, sql: Sql
) -> None:
    revoke_token(database_url, keys.ids["ana"])
    assert sql.fetchval("SELECT revoked FROM tokens WHERE name = 'ana'") is not None
    with serving(config, database_url, keys) as client:
        before = sql.snapshot()
        assert "unknown or revoked" in unauthorized(
            client("ana").put("/api/jobs", json={"title": "x"})
        )
        unauthorized(client("ana").get("/api/jobs"))
        assert sql.snapshot() == before
        # the others still work
        submit(client("bob"), title="bob's")


def test_a_revoked_token_stops_working_on_a_running_server(
    client: Callers, database_url: str
) -> None:
    ana = client("ana")
    assert ana.get("/api/jobs").status_code == 200
    revoke_token(database_url, client.keys.ids["ana"])
    # lookups are trusted for core.tokens.FRESH seconds
    wait_until(lambda: ana.get("/api/jobs").status_code == 401, "the revoked token is refused")
    unauthorized(ana.put("/api/jobs", json={"title": "x"}))
    assert client("bob").get("/api/jobs").status_code == 200


def test_revoking_every_token_does_not_open_the_server_again(
    config: Config, database_url: str, keys: Keys, sql: Sql
) -> None:
    for token_id in keys.ids.values():
        revoke_token(database_url, token_id)
    with serving(config, database_url, keys) as client:
        before = sql.snapshot()
        unauthorized(client().put("/api/jobs", json={"title": "anonymous"}))
        unauthorized(client().get("/api/jobs"))
        for name in TOKENS:
            unauthorized(client(name).get("/api/jobs"))
        assert sql.snapshot() == before


def test_revoking_a_token_twice_changes_nothing(database_url: str, keys: Keys, sql: Sql) -> None:
    revoke_token(database_url, keys.ids["bob"])
    first = sql.fetchval("SELECT revoked FROM tokens WHERE name = 'bob'")
    revoke_token(database_url, keys.ids["bob"])
    assert sql.fetchval("SELECT revoked FROM tokens WHERE name = 'bob'") == first


# -- the `corral token` commands -----------------------------------------------------------------


def corral(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CORRAL, *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_token_create_prints_the_token_on_its_last_line(
    config: Config, database_url: str, sql: Sql
) -> None:
    made = corral(
        "token", "create", "--role", "user", "--name", "x", "--database-url", database_url
    )
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith(PREFIX)
    row = sql.fetch("SELECT name, role, hash FROM tokens")
    assert [(r["name"], r["role"]) for r in row] == [("x", "user")]
    assert bytes(row[0]["hash"]) == hashlib.sha256(secret.encode()).digest()
    # it works as the user x
    with ServerThread(config, database_url) as base:
        headers = {"Authorization": f"Bearer {secret}"}
        with httpx.Client(base_url=base, headers=headers) as x:
            assert job(x, submit(x, title="from x"))["user"] == "x"
        with httpx.Client(base_url=base) as anonymous:
            unauthorized(anonymous.get("/api/jobs"))


def test_token_list_shows_every_token_without_its_secret(database_url: str) -> None:
    made = corral(
        "token", "create", "--role", "user", "--name", "x", "--database-url", database_url
    )
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    worker_id, worker_secret = create_token(database_url, "render-07", "worker")
    revoke_token(database_url, worker_id)
    listed = corral("token", "list", "--database-url", database_url)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.strip().splitlines()
    assert lines[0].split() == ["ID", "NAME", "ROLE", "CREATED", "REVOKED"]
    rows = [line.split() for line in lines[1:]]
    assert [r[:3] for r in rows] == [["1", "x", "user"], [str(worker_id), "render-07", "worker"]]
    # created: a date and a time; revoked: the same, for the revoked one only
    assert len(rows[0]) == 5
    assert len(rows[1]) == 7
    for text in (secret, worker_secret):
        assert text not in listed.stdout
        assert text.removeprefix(PREFIX) not in listed.stdout


def test_token_revoke_revokes_and_says_so(config: Config, database_url: str, sql: Sql) -> None:
    token_id, secret = create_token(database_url, "ana", "user")
    revoked = corral("token", "revoke", str(token_id), "--database-url", database_url)
    assert revoked.returncode == 0, revoked.stderr
    assert f"token {token_id} revoked" in revoked.stdout
    assert sql.fetchval("SELECT revoked FROM tokens WHERE id = $1", token_id) is not None
    with ServerThread(config, database_url) as base:
        headers = {"Authorization": f"Bearer {secret}"}
        with httpx.Client(base_url=base, headers=headers) as ana:
            unauthorized(ana.get("/api/jobs"))


def test_token_revoke_of_an_unknown_id_exits_non_zero_with_a_message(
    database_url: str, sql: Sql
) -> None:
    create_token(database_url, "ana", "user")
    before = sql.fetch("SELECT * FROM tokens")
    result = corral("token", "revoke", "999", "--database-url", database_url)
    assert result.returncode != 0
    assert "no token with id 999" in result.stderr
    assert sql.fetch("SELECT * FROM tokens") == before


# -- `corral serve` beyond loopback --------------------------------------------------------------


def answers(url: str, headers: dict[str, str], server: Process) -> None:
    """Wait until `url` answers 200 with these headers."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if not server.alive():
            raise AssertionError(f"corral serve exited:\n{server.output()}")
        try:
            if httpx.get(url, headers=headers).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"corral serve did not answer:\n{server.output()}")


def test_serve_beyond_loopback_without_tokens_exits_2_naming_token_create(
    database_url: str, sql: Sql
) -> None:
    port = free_port()
    result = corral(
        "serve", "--host", "0.0.0.0", "--port", str(port), "--database-url", database_url
    )
    assert result.returncode == 2, result.stderr
    assert "corral token create" in result.stderr
    assert "0.0.0.0" in result.stderr
    assert "Uvicorn running" not in result.stdout + result.stderr
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/api/jobs")
    assert sql.fetchval("SELECT count(*) FROM tokens") == 0


def test_serve_beyond_loopback_with_a_token_starts(
    processes: Processes, database_url: str, keys: Keys
) -> None:
    server = processes.serve(["--host", "0.0.0.0", "--database-url", database_url])
    admin = {"Authorization": f"Bearer {keys.secrets['root']}"}
    answers(f"{server.url}/api/jobs", admin, server)
    assert httpx.get(f"{server.url}/api/jobs").status_code == 401
    assert server.stop() == 0


def test_serve_with_a_local_worker_gives_it_a_token_and_revokes_it_on_the_way_out(
    processes: Processes, database_url: str, keys: Keys, sql: Sql
) -> None:
    server = processes.serve(["--database-url", database_url, "--local-worker"])
    admin = {"Authorization": f"Bearer {keys.secrets['root']}"}
    answers(f"{server.url}/api/jobs", admin, server)
    local = f"{socket.gethostname()}-local"
    response = httpx.put(
        f"{server.url}/api/jobs", json={"title": "t", "command": "echo local"}, headers=admin
    )
    assert response.status_code == 200, response.text
    job_id = response.json()

    def finished() -> bool:
        shown = httpx.get(f"{server.url}/api/jobs/{job_id}", headers=admin).json()
        return bool(shown["state"] == "FINISHED")

    wait_until(finished, "the local worker runs the job", patience=120)
    shown = httpx.get(f"{server.url}/api/jobs/{job_id}", headers=admin).json()
    assert shown["worker"] == local
    rows = sql.fetch("SELECT role, revoked FROM tokens WHERE name = $1", local)
    assert [(r["role"], r["revoked"]) for r in rows] == [("worker", None)]
    assert server.stop() == 0
    rows = sql.fetch("SELECT revoked FROM tokens WHERE name = $1", local)
    assert len(rows) == 1
    assert rows[0]["revoked"] is not None


# -- a real worker process ----------------------------------------------------------------------


def test_a_real_worker_with_its_token_runs_a_job(
    client: Callers, processes: Processes, tmp_path: Path
) -> None:
    worker = Process(
        [
            "worker",
            "--server",
            client.base,
            "--name",
            "node-a",
            "--token",
            client.keys.secrets["node-a"],
        ],
        tmp_path / "worker.log",
    )
    processes.started.append(worker)
    admin = client("root")
    job_id = submit(client("ana"), title="hello", command="echo hello")
    wait_until(lambda: job(admin, job_id)["state"] == "FINISHED", "the worker runs the job")
    shown = job(admin, job_id)
    assert shown["worker"] == "node-a"
    assert admin.get(f"/api/jobs/{job_id}/log").json() == "hello\n"
    assert worker.alive(), worker.output()


def test_a_real_worker_with_another_workers_token_is_refused_and_exits(
    client: Callers, processes: Processes, tmp_path: Path, sql: Sql
) -> None:
    worker = Process(
        [
            "worker",
            "--server",
            client.base,
            "--name",
            "node-b",
            "--token",
            client.keys.secrets["node-a"],
        ],
        tmp_path / "worker.log",
    )
    processes.started.append(worker)
    wait_until(lambda: not worker.alive(), "the refused worker exits", patience=60)
    assert worker.process.returncode != 0
    assert "403" in worker.output()
    assert sql.fetchval("SELECT count(*) FROM workers") == 0
