"""Schemathesis against the server's own OpenAPI schema: every route, every method, no 500,
every response matching the schema it documents for its status code.

Each operation is fuzzed on its own server and its own database, seeded with a small farm,
so a failure depends on that operation's requests only and its report reproduces. What is
fuzzed is the schema the live server serves at /schema/openapi.json; the list of
operations pytest collects comes from the same app built in-process, and a test checks the
two agree, so an operation can be neither skipped nor invented.

Schemathesis' own pytest loader for a schema that only exists once a fixture has run
(`schemathesis.pytest.from_fixture`) does not work on pytest 9.2 (it writes
`Function._nodeid`, which pytest removed), so each operation's cases come from its
documented Hypothesis strategy (`APIOperation.as_strategy`), valid and invalid ones both.
"""

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.app import create_app
from core.config import Config, DispatchConfig, ServerConfig
from tests.conftest import Sql
from tests.farm import append_log, ok, run, start, submit

CHECKS = [not_a_server_error, response_schema_conformance]
# enough for the suite to stay near a minute; raise it to hunt (CORRAL_FUZZ_EXAMPLES=500)
MAX_EXAMPLES = int(os.environ.get("CORRAL_FUZZ_EXAMPLES", "25"))
# An operation with parameters or a body answering fewer requests than this was not
# fuzzed, whatever the checks said; one with neither has a single possible request.
MIN_REQUESTS = min(10, MAX_EXAMPLES)
# well above any answer of this server, pick's long poll included
REQUEST_TIMEOUT = 30.0
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
WORKER = "node-1"
JOB_TYPE_VERSION = "1.0.0"


def operations(schema: dict[str, object]) -> list[str]:
    paths = schema["paths"]
    assert isinstance(paths, dict)
    return sorted(
        f"{method.upper()} {path}"
        for path, item in paths.items()
        for method in item
        if method in METHODS
    )


# Building the app connects to nothing; the lifespan, which does, never runs here.
OPERATIONS = operations(create_app(Config(), "postgresql://unused").openapi_schema.to_schema())

requests_sent: Counter[str] = Counter()
# operation -> whether it takes parameters or a body, for each operation set up to fuzz
fuzzable: dict[str, bool] = {}


@pytest.fixture
def config(tmp_path: Path) -> Config:
    # A pick for a registered worker long-polls pick_wait when nothing is ready; a secret
    # setting's key goes to the test's folder.
    return Config(
        server=ServerConfig(data_dir=str(tmp_path)),
        dispatch=DispatchConfig(pick_wait=0.05, legacy_pick_wait=0.05),
    )


def seed(api: httpx.Client, sql: Sql) -> list[int]:
    """A group with a running and a waiting frame, a finished job, a failed one and a
    group waiting on both, on a registered worker with rules; the job ids."""
    ok(api.post("/api/affinities", json={"1": "linux", "2": "gpu"}))
    response = api.post(
        "/api/v2/workers/register", json={"name": WORKER, "affinity": "linux", "slots": 4}
    )
    assert response.status_code == 200, response.text
    group = submit(api, title="shot", user="ana", affinity="linux", priority=2000)
    working = submit(api, title="frame 1", command="echo 1", parent=group)
    waiting = submit(api, title="frame 2", command="echo 2", parent=group, dependencies=[working])
    done = submit(api, title="done", command="echo done", environment="A=1")
    failed = submit(api, title="failed", command="false", affinity="gpu")
    comp = submit(api, title="comp", dependencies=[done, failed])
    # a job type named as the worker is, so that the routes naming either hit a row
    job_type = {"docker_image": "", "manifest": seed_manifest(WORKER, JOB_TYPE_VERSION)}
    assert api.post("/v6/job-types/", json=job_type).status_code == 201
    start(sql, working, WORKER)
    append_log(sql, working, b"frame 1 of 10\n")
    run(sql, done, worker=WORKER)
    run(sql, failed, exit_code=1, worker=WORKER)
    return [group, working, waiting, done, failed, comp]


def seed_manifest(name: str, version: str) -> dict[str, object]:
    return {
        "seedVersion": "1.0.0",
        "job": {
            "name": name,
            "jobVersion": version,
            "packageVersion": "1.0.0",
            "title": name,
            "description": "",
            "maintainer": {"name": "Ana", "email": "ana@example.com"},
            "timeout": 60,
        },
    }


def has_input(operation: schemathesis.APIOperation) -> bool:
    return bool(operation.body) or any(True for _ in operation.iter_parameters())


def naming(
    operation: schemathesis.APIOperation, location: str, name: str, values: list[object]
) -> st.SearchStrategy[schemathesis.Case]:
    """Valid requests whose parameter `name` in `location` is one of `values`."""
    return st.sampled_from(values).flatmap(
        lambda value: operation.as_strategy(**{location: {name: value}})
    )


def cases(
    operation: schemathesis.APIOperation, jobs: list[int]
) -> st.SearchStrategy[schemathesis.Case]:
    """Valid and invalid requests, and valid ones naming a seeded job or the registered
    worker: random ids and names hardly ever hit a row, and would test the 404 path only."""
    modes = [schemathesis.GenerationMode.POSITIVE]
    if has_input(operation):
        # with nothing to make invalid, negative generation can only give up
        modes.append(schemathesis.GenerationMode.NEGATIVE)
    strategies = [operation.as_strategy(mode) for mode in modes]
    known: dict[str, list[object]] = {
        "job_id": [*jobs],
        "job": [*jobs],
        "name": [WORKER],
        "worker": [WORKER],
        "version": [JOB_TYPE_VERSION],
        "number": [1],
    }
    if operation.body:
        strategies.append(nested(operation, known))
    for location, parameters in [
        ("path_parameters", operation.path_parameters),
        ("query", operation.query),
    ]:
        strategies += [
            naming(operation, location, parameter.name, known[parameter.name])
            for parameter in parameters
            if parameter.name in known
        ]
    return st.one_of(strategies)


# openers and closers of JSON nesting
NESTINGS = [("[", "]"), ('{"a":', "}"), ('{"a": [', "]}")]


def nested(
    operation: schemathesis.APIOperation, known: dict[str, list[object]]
) -> st.SearchStrategy[schemathesis.Case]:
    """Bodies nesting arrays and objects far deeper than any route reads, up to what the
    default body limit lets through, to a seeded job or worker: the JSON decoder must
    refuse them, not fail."""
    path = {p.name: known.get(p.name, ["x"])[0] for p in operation.path_parameters}

    def case(depth: int, nesting: tuple[str, str], core: str) -> schemathesis.Case:
        opener, closer = nesting
        body = (opener * depth + core + closer * depth).encode()
        return operation.Case(path_parameters=path, body=body, media_type="application/json")

    return st.builds(
        case, st.integers(500, 400_000), st.sampled_from(NESTINGS), st.sampled_from(["1", ""])
    )


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture
def fuzzed(operation: str, api: httpx.Client, sql: Sql) -> st.SearchStrategy[schemathesis.Case]:
    """The cases of the operation as the live server documents it."""
    jobs = seed(api, sql)
    schema = schemathesis.openapi.from_url(
        str(api.base_url.join("/schema/openapi.json")),
        # the defaults, not whatever schemathesis.toml or environment the run finds
        config=schemathesis.Config(),
    )
    method, path = operation.split(" ", 1)
    live = schema[path][method]
    fuzzable[operation] = has_input(live)
    return cases(live, jobs)


@pytest.mark.parametrize("operation", OPERATIONS)
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    # the server and its database are set up once per operation, on purpose
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_operation(
    operation: str,
    fuzzed: st.SearchStrategy[schemathesis.Case],
    api: httpx.Client,
    http: requests.Session,
    data: st.DataObject,
) -> None:
    case = data.draw(fuzzed, label="case")
    requests_sent[operation] += 1
    case.call_and_validate(
        base_url=str(api.base_url), session=http, checks=CHECKS, timeout=REQUEST_TIMEOUT
    )


def test_the_live_schema_documents_exactly_the_collected_operations(api: httpx.Client) -> None:
    response = api.get("/schema/openapi.json")
    assert response.status_code == 200, response.text
    assert operations(response.json()) == OPERATIONS


def test_requests_fuzzed(capsys: pytest.CaptureFixture[str]) -> None:
    """Runs last: the total, and no operation passed without being fuzzed."""
    if set(fuzzable) != set(OPERATIONS):
        pytest.skip(f"{len(fuzzable)} of {len(OPERATIONS)} operations fuzzed in this run")
    total = sum(requests_sent.values())
    with capsys.disabled():
        print(f"\nrequests fuzzed: {total} over {len(OPERATIONS)} operations")
    starved = {
        operation: requests_sent[operation]
        for operation, varied in fuzzable.items()
        if requests_sent[operation] < (MIN_REQUESTS if varied else 1)
    }
    assert not starved, f"operations that were hardly fuzzed: {starved}"
