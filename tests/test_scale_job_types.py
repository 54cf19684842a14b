"""The Scale face's job types (`/v6/job-types/...`, also under `/api/v6/`) against a real
server: create and edit, the lists with their filters, orders and pages, versions,
details, revisions, validation, Scale's messages and error shape, secrets kept out of
every answer."""

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.config import Config, ServerConfig
from tests.conftest import ServerThread, Sql
from tests.farm import role_tokens

SEEDS = Path(__file__).resolve().parents[1].parent / "shared" / "seeds"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    # the key of the secret settings goes to the test's own folder
    return Config(server=ServerConfig(data_dir=str(tmp_path)))


def manifest(name: str = "my-job", version: str = "1.0.0", **job: Any) -> dict[str, Any]:
    return {
        "seedVersion": "1.0.0",
        "job": {
            "name": name,
            "jobVersion": version,
            "packageVersion": "1.0.0",
            "title": f"{name} {version}",
            "description": "does things",
            "maintainer": {"name": "Ana", "email": "ana@example.com"},
            "timeout": 3600,
            "interface": {
                "command": "echo ${N}",
                "inputs": {"json": [{"name": "N", "type": "integer"}]},
                "settings": [{"name": "db"}, {"name": "password", "secret": True}],
            },
            **job,
        },
    }


def create(api: httpx.Client, status: int = 201, **body: Any) -> httpx.Response:
    response = api.post("/v6/job-types/", json={"docker_image": "img:1", **body})
    assert response.status_code == status, response.text
    return response


def refused(response: httpx.Response, status: int, detail: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"detail": detail}


def document_example() -> dict[str, Any]:
    line = next(
        line
        for line in (SEEDS / "004_f271b097f9c97fd3.txt").read_text().splitlines()
        if line.startswith('{ "icon_code"')
    )
    body: dict[str, Any] = json.loads(line)
    return body


def test_the_document_s_create_example_is_refused_until_its_errors_have_names(
    api: httpx.Client, sql: Sql
) -> None:
    body = document_example()
    response = api.post("/v6/job-types/", json=body)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(
        "Seed Manifest invalid: Error validating against schema:"
    )
    for number, error in enumerate(body["manifest"]["job"]["errors"]):
        error["name"] = f"error-{number}"
    created = api.post("/v6/job-types/", json=body)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"{api.base_url}/v6/job-types/test/1.0.0/"
    details = created.json()
    assert (details["name"], details["version"], details["revision_num"]) == ("test", "1.0.0", 1)
    assert (details["icon_code"], details["max_scheduled"], details["max_tries"]) == ("f1c5", 1, 3)
    assert details["title"] == "Job to demonstrate job type APIs"
    assert details["recipe_types"] == []
    assert details["unmet_resources"] is None
    # Seed's defaults filled in, resource names in lower case
    job = details["manifest"]["job"]
    assert [s["name"] for s in job["resources"]["scalar"]] == ["cpus", "mem", "sharedmem", "disk"]
    assert job["errors"][0]["name"] == "error-0"
    assert job["interface"]["inputs"]["json"][0]["required"] is True
    # the secret setting's value is in no answer, and not in the database as text
    assert details["configuration"]["settings"] == {"DB_HOST": "som.host.name"}
    for path in (
        "/v6/job-types/",
        "/v6/job-types/test/1.0.0/",
        "/v6/job-types/test/1.0.0/revisions/1/",
    ):
        assert "secret_password" not in api.get(path).text
    stored = sql.fetchval("SELECT row_to_json(t)::text FROM job_types t")
    assert "secret_password" not in stored


def test_urls_follow_the_prefix_and_the_host_the_request_came_in_on(api: httpx.Client) -> None:
    response = api.post(
        "/api/v6/job-types/",
        json={"docker_image": "", "manifest": manifest()},
        headers={"X-Forwarded-Host": "farm.studio:8088, proxy", "X-Forwarded-Proto": "https"},
    )
    assert response.status_code == 201, response.text
    assert response.headers["location"] == "https://farm.studio:8088/api/v6/job-types/my-job/1.0.0/"
    assert api.get("/api/v6/job-types/my-job/1.0.0/").json()["name"] == "my-job"


def test_posting_an_existing_name_and_version_edits_it_with_a_new_revision(
    api: httpx.Client,
) -> None:
    create(api, manifest=manifest())
    again = manifest()
    again["job"]["title"] = "Renamed"
    edited = create(api, 200, docker_image="img:2", manifest=again)
    assert edited.json() == {"is_valid": True, "errors": [], "warnings": []}
    assert "location" not in edited.headers
    details = api.get("/v6/job-types/my-job/1.0.0/").json()
    assert (details["title"], details["docker_image"], details["revision_num"]) == (
        "Renamed",
        "img:2",
        2,
    )
    revisions = api.get("/v6/job-types/my-job/1.0.0/revisions/").json()
    assert [r["revision_num"] for r in revisions["results"]] == [2, 1]
    assert [r["docker_image"] for r in revisions["results"]] == ["img:2", "img:1"]
    first = api.get("/v6/job-types/my-job/1.0.0/revisions/1/").json()
    assert first["manifest"]["job"]["title"] == "my-job 1.0.0"
    assert first["job_type"]["title"] == "Renamed"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"manifest": manifest()}, 'Missing required parameter: "docker_image"'),
        ({"docker_image": "i"}, 'Missing required parameter: "manifest"'),
        (
            {"docker_image": "i", "manifest": "x"},
            'Parameter must be a valid JSON object: "manifest"',
        ),
        (
            {"docker_image": 5, "manifest": manifest()},
            'Parameter must be a valid string: "docker_image"',
        ),
        (
            {"docker_image": "i", "manifest": manifest(), "max_scheduled": "many"},
            'Parameter must be a valid integer: "max_scheduled"',
        ),
        (
            {"docker_image": "i", "manifest": manifest(), "is_active": "maybe"},
            'Parameter must be a valid boolean: "is_active"',
        ),
        (
            {"docker_image": "i", "manifest": manifest(), "max_scheduled": -1},
            "max_scheduled must be 0 or more (0 and null mean no limit)",
        ),
        (
            {"docker_image": "i", "manifest": manifest(), "colour": "red"},
            "colour is not a valid field. Valid fields are: icon_code, is_published, "
            "max_scheduled, docker_image, configuration, manifest, auto_update, is_active, "
            "is_paused",
        ),
        (
            {"docker_image": "i", "manifest": manifest(name="validation")},
            'Unable to create job type named "validation"',
        ),
        (
            {"docker_image": "i", "manifest": manifest(), "configuration": {"priority": 0}},
            "Job type configuration invalid: Invalid configuration: Expected `int` >= 1 - at "
            "`$.priority`",
        ),
    ],
)  # fmt: skip
def test_a_bad_create_is_refused_with_scale_s_words_and_stores_nothing(
    api: httpx.Client, sql: Sql, body: dict[str, Any], detail: str
) -> None:
    refused(api.post("/v6/job-types/", json=body), 400, detail)
    assert sql.fetchval("SELECT count(*) FROM job_types") == 0


def test_booleans_take_scale_s_words(api: httpx.Client) -> None:
    create(api, manifest=manifest(), is_active="F", is_paused="t", is_published="TRUE")
    details = api.get("/v6/job-types/my-job/1.0.0/").json()
    assert (details["is_active"], details["is_paused"], details["is_published"]) == (
        False,
        True,
        True,
    )
    assert details["deprecated"] is not None
    assert details["paused"] is not None


def test_the_lists_filter_order_and_page(api: httpx.Client) -> None:
    for name, version, tags in [
        ("b-render", "1.2.0", ["nuke"]),
        ("b-render", "1.10.0", ["nuke"]),
        ("b-render", "1.10.0-rc.1", ["nuke"]),
        ("A-comp", "2.0.0", ["Comp", "final"]),
        ("c-sim", "0.1.0", []),
    ]:
        create(api, manifest=manifest(name, version, tags=tags))
    api.patch("/v6/job-types/c-sim/0.1.0/", json={"is_active": False})

    def listed(path: str, **params: Any) -> list[tuple[str, str]]:
        response = api.get(path, params=params)
        assert response.status_code == 200, response.text
        return [
            (r["name"], r.get("version", r.get("latest_version")))
            for r in response.json()["results"]
        ]

    assert listed("/v6/job-types/") == [
        ("A-comp", "2.0.0"),
        ("b-render", "1.10.0"),
        ("b-render", "1.10.0-rc.1"),
        ("b-render", "1.2.0"),
        ("c-sim", "0.1.0"),
    ]
    assert listed("/v6/job-types/", keyword=["COMP", "sim"]) == [
        ("A-comp", "2.0.0"),
        ("c-sim", "0.1.0"),
    ]
    assert listed("/v6/job-types/", keyword="nuke", order="version") == [
        ("b-render", "1.2.0"),
        ("b-render", "1.10.0-rc.1"),
        ("b-render", "1.10.0"),
    ]
    assert listed("/v6/job-types/", order=["-name", "version"], is_active="true")[0] == (
        "b-render",
        "1.2.0",
    )
    assert listed("/v6/job-types/", is_active="false") == [("c-sim", "0.1.0")]
    assert listed("/v6/job-types/", is_system="true") == []
    first_id = api.get("/v6/job-types/").json()["results"][0]["id"]
    assert listed("/v6/job-types/", id=[first_id, 999]) == [("A-comp", "2.0.0")]
    assert listed("/v6/job-types/b-render/") == [
        ("b-render", "1.10.0"),
        ("b-render", "1.10.0-rc.1"),
        ("b-render", "1.2.0"),
    ]
    assert listed("/v6/job-types/nothing/") == []
    names = api.get("/v6/job-type-names/").json()["results"]
    assert [(n["name"], n["latest_version"], n["versions"]) for n in names] == [
        ("A-comp", "2.0.0", ["2.0.0"]),
        ("b-render", "1.10.0", ["1.10.0", "1.10.0-rc.1", "1.2.0"]),
        ("c-sim", "0.1.0", ["0.1.0"]),
    ]
    assert listed("/v6/job-type-names/", is_active="false") == [("c-sim", "0.1.0")]

    page = api.get("/v6/job-types/", params={"page_size": 2, "keyword": "-"}).json()
    assert page["count"] == 5
    assert page["previous"] is None
    assert page["next"] == f"{api.base_url}/v6/job-types/?page_size=2&keyword=-&page=2"
    second = api.get(page["next"]).json()
    assert second["previous"] == f"{api.base_url}/v6/job-types/?page_size=2&keyword=-"
    assert second["next"] == f"{api.base_url}/v6/job-types/?page_size=2&keyword=-&page=3"
    assert [r["version"] for r in second["results"]] == ["1.10.0-rc.1", "1.2.0"]
    for bad in ("0", "4", "x"):
        refused(
            api.get("/v6/job-types/", params={"page": bad, "page_size": 2}), 404, "Invalid page."
        )
    # a page size that is not a whole number from 1 is the default
    assert api.get("/v6/job-types/", params={"page_size": "0"}).json()["count"] == 5
    refused(
        api.get("/v6/job-types/", params={"is_active": "maybe"}),
        400,
        'Parameter must be a valid boolean: "is_active"',
    )
    refused(
        api.get("/v6/job-types/", params={"id": "x"}),
        400,
        'Parameter must be a valid integer: "id"',
    )


def test_patch_edits_in_scale_s_order(api: httpx.Client) -> None:
    create(api, manifest=manifest(), max_scheduled=4, icon_code="f013")
    url = "/v6/job-types/my-job/1.0.0/"
    refused(
        api.patch(url, json={"manifest": manifest(name="other")}),
        400,
        "Manifest name other does not match current Job Type name my-job.",
    )
    refused(
        api.patch(url, json={"manifest": manifest(version="1.2.3")}),
        400,
        "Manifest version 1.2.3 does not match current Job Type version 1.0.0.",
    )
    refused(api.patch("/v6/job-types/my-job/9.9.9/", json={"is_paused": True}), 404, "Not found.")
    refused(
        api.patch(url, json={"colour": "red"}),
        400,
        "colour is not a valid field. Valid fields are: icon_code, is_published, is_active, "
        "is_paused, max_scheduled, docker_image, manifest, configuration, auto_update",
    )
    valid = {"is_valid": True, "errors": [], "warnings": []}
    assert api.patch(url, json={"docker_image": "img:2"}).json() == valid
    assert api.get(url).json()["revision_num"] == 1, "an image alone is no new revision"
    patched = api.patch(
        url,
        json={"is_paused": True, "is_active": False, "max_scheduled": None, "icon_code": None},
    )
    assert patched.json() == valid
    details = api.get(url).json()
    assert (details["is_paused"], details["is_active"]) == (True, False)
    assert (details["max_scheduled"], details["icon_code"]) == (None, None)
    assert details["paused"] is not None
    assert details["deprecated"] is not None
    api.patch(url, json={"is_paused": False, "is_active": True})
    details = api.get(url).json()
    assert (details["paused"], details["deprecated"]) == (None, None)
    edited = manifest()
    edited["job"]["description"] = "does more"
    assert api.patch(url, json={"manifest": edited}).json() == valid
    details = api.get(url).json()
    assert (details["revision_num"], details["description"]) == (2, "does more")


def test_a_new_configuration_replaces_the_old_and_keeps_secrets_out_of_answers(
    api: httpx.Client, sql: Sql
) -> None:
    configuration = {"settings": {"db": "farmdb", "password": "hunter2"}}
    create(api, manifest=manifest(), configuration=configuration)
    url = "/v6/job-types/my-job/1.0.0/"
    assert api.get(url).json()["configuration"] == {
        "mounts": {},
        "output_workspaces": {"outputs": {}},
        "priority": 100,
        "settings": {"db": "farmdb"},
    }
    api.patch(url, json={"configuration": {"priority": 50, "settings": {"password": "swordfish"}}})
    shown = api.get(url).json()["configuration"]
    assert (shown["priority"], shown["settings"]) == (50, {})
    everything = sql.fetchval("SELECT row_to_json(t)::text FROM job_types t")
    assert "hunter2" not in everything
    assert "swordfish" not in everything
    # a manifest given again keeps the stored secret, however the configuration was shown
    api.patch(url, json={"manifest": manifest()})
    assert sql.fetchval("SELECT secrets IS NOT NULL FROM job_types")


def test_validation_answers_without_storing(api: httpx.Client, sql: Sql) -> None:
    body = {
        "manifest": manifest(resources={"scalar": [{"name": "licences", "value": 1}]}),
        "configuration": {"settings": {"db": "x", "colour": "red"}},
    }
    result = api.post("/v6/job-types/validation/", json=body).json()
    assert result["is_valid"] is True
    assert [w["name"] for w in result["warnings"]] == [
        "UNKNOWN_SETTING",
        "MISSING_SETTING",
        "NONSTANDARD_RESOURCE",
    ]
    broken = copy.deepcopy(body)
    del broken["manifest"]["job"]["timeout"]
    result = api.post("/v6/job-types/validation/", json=broken).json()
    assert result["is_valid"] is False
    assert [e["name"] for e in result["errors"]] == ["JSON_VALIDATION_ERROR"]
    assert "timeout" in result["errors"][0]["description"]
    refused(
        api.post("/v6/job-types/validation/", json={}),
        400,
        'Missing required parameter: "manifest"',
    )
    refused(api.get("/v6/job-types/validation/"), 405, 'Method "GET" not allowed.')
    assert sql.fetchval("SELECT count(*) FROM job_types") == 0


def test_scale_s_conventions_hold_on_every_route(api: httpx.Client) -> None:
    create(api, manifest=manifest())
    moved = api.get("/v6/job-types?keyword=my", follow_redirects=False)
    assert moved.status_code == 301
    assert moved.headers["location"] == "/v6/job-types/?keyword=my"
    refused(api.get("/v6/job-types/my-job/2.0.0/"), 404, "Not found.")
    refused(api.get("/v6/job-types/nope/1.0.0/revisions/"), 404, "Not found.")
    refused(api.get("/v6/job-types/my-job/1.0.0/revisions/7/"), 404, "Not found.")
    refused(api.delete("/v6/job-types/my-job/1.0.0/"), 405, 'Method "DELETE" not allowed.')
    response = api.post("/v6/job-types/", content=b"{not json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error - ")
    assert set(response.json()) == {"detail"}


def test_tokens_as_scale_clients_send_them(database_url: str, config: Config) -> None:
    secrets = role_tokens(database_url, {"admin": "admin", "user": "user"})
    with ServerThread(config, database_url) as base, httpx.Client(base_url=base) as client:
        body = {"docker_image": "i", "manifest": manifest()}
        refused(
            client.get("/v6/job-types/"),
            401,
            "this server needs an API token: send Authorization: Bearer <token> (or OAuth "
            "<token>); an admin creates one with `corral token create`; AWE workers send "
            "CG_TOKEN <their client group's token>",
        )
        as_user = {"Authorization": f"Token {secrets['user']}"}
        refused(
            client.post("/v6/job-types/", json=body, headers=as_user),
            403,
            "a user token may not do this (admin only)",
        )
        checked = client.post("/v6/job-types/validation/", json=body, headers=as_user)
        assert checked.json()["is_valid"] is True
        as_admin = {"Authorization": f"Token {secrets['admin']}"}
        assert client.post("/v6/job-types/", json=body, headers=as_admin).status_code == 201
        assert client.get("/v6/job-types/", headers=as_user).json()["count"] == 1
