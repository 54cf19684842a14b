"""The AWE face's client groups and authentication (docs/awe.md, "Client groups and
tokens"; docs/security.md): the /cgroup routes, AWE's registration rules, the `OAuth` and
`CG_TOKEN` schemes, the access levels of the AWE routes once API tokens exist, and the
real awe-worker with and without its group's token.

Servers cache "tokens are required" and token lookups for a few seconds, so every token a
test needs is created before its server answers a request."""

import hashlib
import json
import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.config import AweConfig, Config, ServerConfig
from core.tokens import Role
from tests.awe import awe_worker, awe_worker_binary, wait_for
from tests.conftest import ServerThread, Sql
from tests.farm import role_tokens, with_tokens

__all__ = ["awe_worker_binary"]

CLIENT = "5b8a6c1e-9d1f-4c2a-8e3b-0a1b2c3d4e5f"
OTHER_CLIENT = "0c2f9d1e-3a4b-4c5d-8e6f-7a8b9c0d1e2f"
UNKNOWN_ID = "6f1c9a53-0f1e-4d3a-9c1e-2f7b1f1f1f1f"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
V4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
PREFIX = "Error in registering new client:"
MISMATCH = PREFIX + "Clientgroup name in token does not match that in the client."
NO_TOKEN = (
    PREFIX + "Clientgroup with the group specified by your client exists, but you cannot "
    "register with it, without clientgroup token."
)
EXISTING = (
    "Clientgroup has existing token.  This must be deleted before a new token can be generated."
)
ONE_TASK: dict[str, Any] = {
    "info": {"name": "one", "user": "ana", "clientgroups": "render"},
    "tasks": [{"taskid": "0", "cmd": {"name": "bash", "args": "-c 'echo from the group'"}}],
}
# a file from one task to the next through the node store, which needs a token of the job
TWO_TASKS: dict[str, Any] = {
    "info": {"name": "two", "user": "ana", "clientgroups": "render"},
    "tasks": [
        {"taskid": "0",
         # the worker reads a command's stdout while it runs and closes it at its exit:
         # the line goes out a while before the end
         "cmd": {"name": "bash", "args": "-c 'echo from the group; echo hi > a.txt; sleep 1'"},
         "outputs": [{"filename": "a.txt"}]},
        {"taskid": "1", "cmd": {"name": "bash", "args": "-c 'cat a.txt a.txt > b.txt'"},
         "inputs": [{"filename": "a.txt", "origin": "0"}], "outputs": [{"filename": "b.txt"}]},
    ],
}  # fmt: skip
# the API tokens of the servers that need them: name -> role (a worker token's name is the
# client it registers)
TOKENS: dict[str, Role] = {"root": "admin", "ana": "user", CLIENT: "worker"}


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(server=ServerConfig(data_dir=str(tmp_path)), awe=AweConfig(checkout_wait=0.3))


# -- helpers --------------------------------------------------------------------------------


def envelope(response: httpx.Response, status: int = 200) -> Any:
    """The `data` of an AWE answer with this status (its `error` when it is a refusal)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status
    if status == 200:
        assert body["error"] is None
        return body["data"]
    assert body["data"] is None
    return body["error"]


def refused(response: httpx.Response, status: int) -> str:
    errors = envelope(response, status)
    assert isinstance(errors, list)
    assert len(errors) == 1
    message: str = errors[0]
    return message


def cg_token(token: str) -> dict[str, str]:
    return {"Authorization": f"CG_TOKEN {token}"}


def profile(group: str, client: str = CLIENT) -> dict[str, Any]:
    return {"id": client, "name": "w1", "group": group, "apps": ["bash"]}


def register(
    api: httpx.Client, body: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    return api.post(
        "/awe/client",
        files={"profile": ("p.json", json.dumps(body).encode())},
        headers=headers or {},
    )


def create(api: httpx.Client, name: str, headers: dict[str, str] | None = None) -> Any:
    return envelope(api.post(f"/awe/cgroup/{name}", headers=headers or {}))


def groups_table(sql: Sql) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in sql.fetch("SELECT * FROM client_groups ORDER BY id")]


def state(sql: Sql) -> tuple[object, ...]:
    """Every Corral table, client groups included: a refused request changes none."""
    return (sql.snapshot(), groups_table(sql))


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def tokens_required(url: str) -> bool:
    return with_tokens(url, lambda t: t.required())


class Closed:
    """A server with API tokens, and a client for each caller."""

    def __init__(self, base: str, secrets: dict[str, str]) -> None:
        self.base = base
        self.secrets = secrets
        self._clients: list[httpx.Client] = []

    def __call__(self, authorization: str | None = None) -> httpx.Client:
        headers = {"Authorization": authorization} if authorization else {}
        client = httpx.Client(base_url=self.base, headers=headers, timeout=60)
        self._clients.append(client)
        return client

    def bearer(self, who: str) -> httpx.Client:
        return self(f"Bearer {self.secrets[who]}")

    def close(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture
def closed(config: Config, database_url: str) -> Iterator[Closed]:
    """A server on a database where the API tokens of TOKENS exist."""
    secrets = role_tokens(database_url, TOKENS)
    with ServerThread(config, database_url) as base:
        callers = Closed(base, secrets)
        try:
            yield callers
        finally:
            callers.close()


# -- /cgroup --------------------------------------------------------------------------------


def test_a_new_group_shows_its_token_once_and_the_database_keeps_its_hash(
    api: httpx.Client, sql: Sql
) -> None:
    made = create(api, "render")
    assert list(made) == [
        "id", "ip_cidr", "name", "token", "created_on", "expiration", "last_modified",
        "has_token",
    ]  # fmt: skip
    assert V4.match(made["id"])
    assert made["ip_cidr"] == "0.0.0.0/0"
    assert made["name"] == "render"
    assert made["token"].startswith("corral_cg_")
    assert len(made["token"]) > 40
    assert made["has_token"] is True
    for key in ("created_on", "expiration", "last_modified"):
        assert RFC3339.match(made[key]), made[key]
    # AWE's: ten years
    lifetime = moment(made["expiration"]) - moment(made["created_on"])
    assert timedelta(days=3650) <= lifetime <= timedelta(days=3654)
    shown = envelope(api.get(f"/awe/cgroup/{made['id']}"))
    assert shown == {**made, "token": ""}
    rows = sql.fetch("SELECT * FROM client_groups")
    assert len(rows) == 1
    assert rows[0]["token_hash"] == hashlib.sha256(made["token"].encode()).digest()
    assert made["token"] not in repr([tuple(r) for r in rows])
    assert made["token"] not in api.get("/awe/cgroup").text
    assert create(api, "other")["token"] != made["token"]


def test_the_group_list_is_a_page_in_any_order_filtered_by_name_or_id(
    api: httpx.Client, sql: Sql
) -> None:
    made = {name: create(api, name) for name in ("a", "b", "c")}
    first = api.get("/awe/cgroup", params={"limit": 2})
    body = first.json()
    assert list(body) == ["status", "data", "error", "limit", "offset", "total_count"]
    assert (body["limit"], body["offset"], body["total_count"]) == (2, 0, 3)
    # AWE's default order: the last changed first
    assert [g["name"] for g in body["data"]] == ["c", "b"]
    assert all(g["token"] == "" and g["has_token"] for g in body["data"])
    rest = api.get("/awe/cgroup", params={"limit": 2, "offset": 2}).json()
    assert [g["name"] for g in rest["data"]] == ["a"]
    assert rest["total_count"] == 3

    def names(**params: Any) -> list[str]:
        return [g["name"] for g in envelope(api.get("/awe/cgroup", params=params))]

    assert names(order="name", direction="asc") == ["a", "b", "c"]
    assert names(order="name") == ["c", "b", "a"]
    assert names(order="created_on", direction="asc") == ["a", "b", "c"]
    assert names(order="expiration", direction="asc") == ["a", "b", "c"]
    assert names(name="a,c", order="name", direction="asc") == ["a", "c"]
    assert names(id=made["b"]["id"]) == ["b"]
    assert names(name="nobody") == []
    paged = api.get("/awe/cgroup", params=[("name", "a"), ("name", "b")]).json()
    assert paged["total_count"] == 2
    # at most [limits] max_page groups in one answer
    huge = api.get("/awe/cgroup", params={"limit": "9" * 20}).json()
    assert huge["limit"] == 10_000
    assert len(huge["data"]) == 3


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "abc"}, 'strconv.Atoi: parsing "abc": invalid syntax'),
        ({"offset": "1.5"}, 'strconv.Atoi: parsing "1.5": invalid syntax'),
        ({"limit": "0"}, "limit must be 1 or more, not 0"),
        ({"offset": "-1"}, "offset must be 0 to 2147483647, not -1"),
        ({"offset": "9" * 20}, f"offset must be 0 to 2147483647, not {'9' * 20}"),
        ({"order": "token"}, "clientgroups are ordered by name, created_on, expiration, "
                             "last_modified, not 'token'"),
        ({"direction": "up"}, "direction must be asc or desc, not 'up'"),
        ({"token": "x"}, "unknown clientgroup query parameter 'token': use limit, offset, "
                         "order, direction, name, id"),
        ({"id": "nonsense"}, "clientgroup id must be a UUID, not 'nonsense'"),
    ],
)  # fmt: skip
def test_a_bad_list_query_is_400_saying_what_was_wrong(
    api: httpx.Client, params: dict[str, str], message: str
) -> None:
    create(api, "a")
    assert refused(api.get("/awe/cgroup", params=params), 400) == message


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a b", "Clientgroup name (a b) must contain only alphanumeric characters, "
                "underscore, dash or dot."),
        ("a$b", "Clientgroup name (a$b) must contain only alphanumeric characters, "
                "underscore, dash or dot."),
        ("a,b", "Clientgroup name (a,b) must contain only alphanumeric characters, "
                "underscore, dash or dot."),
        ("x" * 256, "Clientgroup name must be at most 255 characters."),
    ],
)  # fmt: skip
def test_a_bad_group_name_is_400_and_makes_nothing(
    api: httpx.Client, sql: Sql, name: str, message: str
) -> None:
    assert refused(api.post(f"/awe/cgroup/{name}"), 400) == message
    assert groups_table(sql) == []


def test_a_name_is_taken_once(api: httpx.Client, sql: Sql) -> None:
    create(api, "render.farm-1_a")
    before = groups_table(sql)
    taken = api.post("/awe/cgroup/render.farm-1_a")
    assert refused(taken, 400) == "A clientgroup already exists with this name."
    assert groups_table(sql) == before


def test_unknown_and_malformed_group_ids(api: httpx.Client, sql: Sql) -> None:
    create(api, "a")
    before = groups_table(sql)
    for method, path in [
        ("GET", f"/awe/cgroup/{UNKNOWN_ID}"),
        ("DELETE", f"/awe/cgroup/{UNKNOWN_ID}"),
        ("PUT", f"/awe/cgroup/{UNKNOWN_ID}/token"),
        ("DELETE", f"/awe/cgroup/{UNKNOWN_ID}/token"),
    ]:
        # AWE answers an unknown client group with 404, unlike unknown jobs and clients
        answer = api.request(method, path)
        assert refused(answer, 404) == f"clientgroup id not found:{UNKNOWN_ID}", path
        malformed = api.request(method, path.replace(UNKNOWN_ID, "nonsense"))
        assert refused(malformed, 400) == "clientgroup id must be a UUID, not 'nonsense'"
    assert groups_table(sql) == before


def test_a_deleted_group_is_gone_and_its_token_admits_nobody(api: httpx.Client) -> None:
    made = create(api, "render")
    assert envelope(api.delete(f"/awe/cgroup/{made['id']}")) is None
    assert refused(api.get(f"/awe/cgroup/{made['id']}"), 404).startswith("clientgroup id not")
    assert envelope(api.get("/awe/cgroup")) == []
    answer = register(api, profile("render"), cg_token(made["token"]))
    assert refused(answer, 401) == "the client group token is unknown, deleted or expired"
    # the name is free again: without a token a client joins it as any other
    envelope(register(api, profile("render")))


def test_a_new_token_only_after_the_old_one_was_deleted(api: httpx.Client, sql: Sql) -> None:
    made = create(api, "render")
    before = groups_table(sql)
    assert refused(api.put(f"/awe/cgroup/{made['id']}/token"), 400) == EXISTING
    assert groups_table(sql) == before
    gone = envelope(api.delete(f"/awe/cgroup/{made['id']}/token"))
    assert gone["token"] == ""
    assert gone["has_token"] is False
    assert moment(gone["last_modified"]) > moment(made["last_modified"])
    assert {k: v for k, v in gone.items() if k not in ("token", "has_token", "last_modified")} == {
        k: v for k, v in made.items() if k not in ("token", "has_token", "last_modified")
    }
    # deleting it again changes nothing
    assert envelope(api.delete(f"/awe/cgroup/{made['id']}/token")) == gone
    old = register(api, profile("render"), cg_token(made["token"]))
    assert refused(old, 401) == "the client group token is unknown, deleted or expired"
    # without its token the group admits nobody
    assert refused(register(api, profile("render")), 400) == NO_TOKEN
    renewed = envelope(api.put(f"/awe/cgroup/{made['id']}/token"))
    assert renewed["has_token"] is True
    assert renewed["token"].startswith("corral_cg_")
    assert renewed["token"] != made["token"]
    assert envelope(api.get(f"/awe/cgroup/{made['id']}"))["token"] == ""
    envelope(register(api, profile("render"), cg_token(renewed["token"])))


# -- registration rules (open mode) -----------------------------------------------------


def test_a_client_with_its_groups_token_registers_in_it(api: httpx.Client) -> None:
    token = create(api, "render")["token"]
    data = envelope(register(api, profile("render"), cg_token(token)))
    assert data["group"] == "render"
    assert data["server_uuid"] == api.get("/awe/").json()["uuid"]
    assert envelope(api.get(f"/awe/client/{CLIENT}"))["group"] == "render"
    # and works as any client, its token on every call
    assert refused(
        api.get("/awe/work", params={"client": CLIENT}, headers=cg_token(token)), 400
    ) == "No eligible workunit found"  # fmt: skip


def test_a_token_of_another_group_is_400_and_registers_nothing(api: httpx.Client, sql: Sql) -> None:
    token = create(api, "render")["token"]
    create(api, "comp")
    before = state(sql)
    for group in ("comp", "elsewhere", ""):
        answer = register(api, profile(group), cg_token(token))
        assert refused(answer, 400) == MISMATCH, group
    assert state(sql) == before


def test_without_a_token_a_client_cannot_join_a_group_made_through_cgroup(
    api: httpx.Client, sql: Sql
) -> None:
    create(api, "render")
    before = state(sql)
    assert refused(register(api, profile("render")), 400) == NO_TOKEN
    assert state(sql) == before


def test_without_a_token_a_client_joins_a_group_never_made(api: httpx.Client, sql: Sql) -> None:
    create(api, "render")
    assert envelope(register(api, profile("anything")))["group"] == "anything"
    no_group = {"id": OTHER_CLIENT, "name": "w2"}
    assert envelope(register(api, no_group))["id"] == OTHER_CLIENT
    # joining makes no group
    assert [g["name"] for g in envelope(api.get("/awe/cgroup"))] == ["render"]


def test_a_profile_group_that_is_not_text_is_400(api: httpx.Client, sql: Sql) -> None:
    before = state(sql)
    answer = register(api, {**profile("x"), "group": 7})
    assert refused(answer, 400) == PREFIX + "the profile's group must be a string"
    assert state(sql) == before


@pytest.mark.parametrize(
    "header", ["CG_TOKEN corral_cg_unknown", "CG_TOKEN", "cg_token corral_cg_unknown"]
)
def test_an_unknown_or_empty_cg_token_is_401_even_in_open_mode(
    api: httpx.Client, sql: Sql, header: str
) -> None:
    before = state(sql)
    answer = register(api, profile("render"), {"Authorization": header})
    message = refused(answer, 401)
    assert message in (
        "the client group token is unknown, deleted or expired",
        "the Authorization header CG_TOKEN needs the client group's token",
    )
    assert "corral_cg_unknown" not in answer.text
    assert state(sql) == before


def test_creating_a_client_group_keeps_an_open_server_open(
    api: httpx.Client, database_url: str
) -> None:
    create(api, "render")
    assert tokens_required(database_url) is False
    # anonymous callers are still admins, on every face
    assert api.put("/api/jobs", json={"title": "still open"}).status_code == 200
    assert api.get("/api/jobs").status_code == 200
    create(api, "comp")


# -- with API tokens ------------------------------------------------------------------------


def test_oauth_is_taken_as_bearer(closed: Closed) -> None:
    ana = closed(f"OAuth {closed.secrets['ana']}")
    job = ana.put("/api/jobs", json={"title": "via OAuth"})
    assert job.status_code == 200, job.text
    assert ana.get(f"/api/jobs/{job.json()}").json()["user"] == "ana"
    submitted = ana.post("/awe/job", files={"upload": ("wf.json", json.dumps(ONE_TASK).encode())})
    job_id = envelope(submitted)["id"]
    assert envelope(ana.get(f"/awe/job/{job_id}"))["id"] == job_id
    unknown = closed("OAuth corral_" + "x" * 43).get("/awe/job")
    assert refused(unknown, 401) == "the token is unknown or revoked"
    assert unknown.headers["www-authenticate"] == 'Bearer realm="Corral", Basic realm="Corral"'


def test_client_groups_are_for_admins(closed: Closed, sql: Sql, database_url: str) -> None:
    token = create(closed.bearer("root"), "render")["token"]
    before = state(sql)
    anonymous = closed().post("/awe/cgroup/x")
    assert refused(anonymous, 401).startswith("this server needs an API token")
    for caller in (closed.bearer("ana"), closed.bearer(CLIENT), closed(f"CG_TOKEN {token}")):
        for method, path in [("POST", "/awe/cgroup/x"), ("GET", "/awe/cgroup")]:
            assert "admin only" in refused(caller.request(method, path), 403)
    assert state(sql) == before
    assert tokens_required(database_url) is True


def test_the_worker_routes_take_a_group_token_a_worker_token_or_an_admin(
    closed: Closed, sql: Sql
) -> None:
    admin = closed.bearer("root")
    render = create(admin, "render")["token"]
    comp = create(admin, "comp")["token"]
    before = state(sql)
    assert refused(register(closed(), profile("render")), 401).startswith(
        "this server needs an API token"
    )
    user = register(closed.bearer("ana"), profile("x"))
    assert refused(user, 403) == "a user token may not speak the worker protocol"
    assert state(sql) == before
    in_render = closed(f"CG_TOKEN {render}")
    envelope(register(in_render, profile("render")))
    checkout = in_render.get("/awe/work", params={"client": CLIENT})
    assert refused(checkout, 400) == "No eligible workunit found"
    beat = in_render.put(f"/awe/client/{CLIENT}", params={"heartbeat": ""}, json={})
    assert "server-uuid" in envelope(beat)
    # another group's token acts for none of render's clients
    in_comp = closed(f"CG_TOKEN {comp}")
    for answer in (
        in_comp.get("/awe/work", params={"client": CLIENT}),
        in_comp.put(f"/awe/client/{CLIENT}", params={"heartbeat": ""}, json={}),
        register(in_comp, profile("comp")),
    ):
        assert refused(answer, 403) == (
            f"this client group token belongs to 'comp'; client {CLIENT} is registered in 'render'"
        )
    # a group's token is no API token: Corral's own routes and worker protocol refuse it
    assert refused(in_render.get("/awe/job"), 403) == "a client group token may not read the farm"
    native = in_render.post("/api/v2/workers/register", json={"name": "n1", "slots": 1})
    assert native.status_code == 403, native.text
    assert "speaks only AWE's worker protocol" in native.json()["detail"]
    # a worker token registers the client of its own name only
    worker = closed.bearer(CLIENT)
    envelope(register(worker, profile("elsewhere")))
    other = register(worker, profile("elsewhere", OTHER_CLIENT))
    assert refused(other, 403) == (
        f"this worker token belongs to {CLIENT!r}, not {OTHER_CLIENT!r}"
    )  # fmt: skip
    envelope(register(admin, profile("elsewhere", OTHER_CLIENT)))
    # an API token is no group token, an admin's neither
    assert refused(register(admin, profile("render", OTHER_CLIENT)), 400) == NO_TOKEN


def test_a_workunits_secrets_go_to_its_client_alone_and_its_reports_to_readers(
    closed: Closed,
) -> None:
    admin = closed.bearer("root")
    token = create(admin, "render")["token"]
    in_render = closed(f"CG_TOKEN {token}")
    envelope(register(in_render, profile("render")))
    document = {
        "tasks": [
            {
                "taskid": "0",
                "cmd": {"name": "bash", "args": "-c true", "environ": {"private": {"KEY": "s"}}},
            }
        ]
    }
    submitted = closed(f"OAuth {closed.secrets['ana']}").post(
        "/awe/job", files={"upload": ("wf.json", json.dumps(document).encode())}
    )  # fmt: skip
    unit = envelope(submitted)["id"] + "_0_0"
    # before its checkout, not even its client reads them
    early = in_render.get(f"/awe/work/{unit}", params={"privateenv": "", "client": CLIENT})
    assert refused(early, 400) == f"the workunit is not checked out by client {CLIENT}"
    assert envelope(in_render.get("/awe/work", params={"client": CLIENT}))["id"] == unit
    secret = in_render.get(f"/awe/work/{unit}", params={"privateenv": "", "client": CLIENT})
    assert json.loads(secret.headers["Privateenv"]) == {"KEY": "s"}
    ana = closed.bearer("ana")
    asked = ana.get(f"/awe/work/{unit}", params={"privateenv": "", "client": CLIENT})
    assert refused(asked, 403) == "only the client running a workunit reads its secrets"
    assert "Privateenv" not in asked.headers
    assert closed().get(f"/awe/work/{unit}").status_code == 401
    envelope(in_render.put(f"/awe/work/{unit}", params={"status": "done", "client": CLIENT},
                           files={"stdout": ("awe_stdout.txt", b"hello\n")}))  # fmt: skip
    # a user reads the workunit and what its report carried
    assert envelope(ana.get(f"/awe/work/{unit}", params={"report": "stdout"})) == "hello\n"
    # a browser's CORS preflight carries no token
    preflight = closed().options("/awe/job")
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"


def test_the_node_store_takes_any_token_and_refuses_none(closed: Closed, sql: Sql) -> None:
    token = create(closed.bearer("root"), "render")["token"]
    before = state(sql)
    assert refused(closed().post("/awe/node"), 401).startswith("this server needs an API token")
    assert state(sql) == before
    for caller in (
        closed(f"OAuth {closed.secrets['ana']}"),
        closed.bearer(CLIENT),
        closed(f"CG_TOKEN {token}"),
    ):
        node = envelope(caller.post("/awe/node"))
        assert envelope(caller.get(f"/awe/node/{node['id']}"))["id"] == node["id"]


# -- the real awe-worker --------------------------------------------------------------------


def test_the_real_worker_with_its_groups_token_runs_a_job_on_a_server_with_tokens(
    closed: Closed, awe_worker_binary: Path, tmp_path: Path, sql: Sql
) -> None:
    admin = closed.bearer("root")
    token = create(admin, "render")["token"]
    ana = closed(f"OAuth {closed.secrets['ana']}")
    # no Datatoken: the job's data token is ana's own API token
    submitted = ana.post("/awe/job", files={"upload": ("wf.json", json.dumps(TWO_TASKS).encode())})
    job_id = envelope(submitted)["id"]

    def state_of_job() -> str:
        found: str = envelope(admin.get(f"/awe/job/{job_id}"))["state"]
        return found

    with awe_worker(
        awe_worker_binary,
        closed.base,
        tmp_path / "w1",
        group="render",
        extra=(f"--clientgroup_token={token}",),
    ) as worker:
        wait_for(lambda: state_of_job() == "completed", timeout=120)
        assert "Client registered" in worker.output()
    clients = sql.fetch("SELECT name FROM workflow_clients")
    assert len(clients) == 1
    shown = envelope(admin.get(f"/awe/client/{clients[0]['name']}"))
    assert shown["group"] == "render"
    stdout = envelope(admin.get(f"/awe/work/{job_id}_0_0", params={"report": "stdout"}))
    assert stdout.startswith("from the group")
    job = envelope(admin.get(f"/awe/job/{job_id}"))
    assert [(t["task_name"], t["state"]) for t in job["tasks"]] == [
        ("0", "completed"), ("1", "completed")
    ]  # fmt: skip
    [b] = job["tasks"][1]["outputs"]
    assert ana.get(f"/awe/node/{b['node']}", params={"download": ""}).content == b"hi\nhi\n"
    # the node store refuses a caller with no token, and the data token is no one else's
    assert closed().get(f"/awe/node/{b['node']}", params={"download": ""}).status_code == 401


@pytest.mark.parametrize("tokens", [False, True], ids=["open", "with-tokens"])
def test_the_real_worker_without_its_groups_token_is_refused_and_not_registered(
    config: Config,
    database_url: str,
    awe_worker_binary: Path,
    tmp_path: Path,
    sql: Sql,
    tokens: bool,
) -> None:
    secrets = role_tokens(database_url, TOKENS) if tokens else {}
    with ServerThread(config, database_url) as base:
        headers = {"Authorization": f"Bearer {secrets['root']}"} if tokens else {}
        with httpx.Client(base_url=base, headers=headers) as admin:
            create(admin, "render")
            expected = "this server needs an API token" if tokens else NO_TOKEN
            with awe_worker(awe_worker_binary, base, tmp_path / "w1", group="render") as worker:
                # the worker tries again 5 s after a refusal: the second refusal shows that
                # it kept trying and the server kept refusing
                wait_for(lambda: "(2), next retry" in worker.output(), timeout=60)
                output = worker.output()
            assert f"Server returned: {expected}" in output, output
            assert output.count("Server returned:") >= 2
            assert "Client registered" not in output
            client_id = json.loads((tmp_path / "w1" / "data" / "clientprofile.json").read_text())[
                "id"
            ]
            assert uuid.UUID(client_id)
            assert refused(admin.get(f"/awe/client/{client_id}"), 400) == "Client not found"
    assert sql.fetchval("SELECT count(*) FROM workflow_clients") == 0
    assert sql.fetchval("SELECT count(*) FROM workers") == 0
