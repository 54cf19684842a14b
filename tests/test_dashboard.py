"""Corral's own page (api/dashboard, at `/`) in headless Chromium, against a real `corral
serve` and a real `corral worker`: every change it shows arrives through the change feed
(no test reloads the page to see one), every action it takes is checked in the API, and
any script error or API call it makes that is refused fails the test."""

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Page,
    Response,
    expect,
    sync_playwright,
)

from tests.farm import get, ok, submit, until
from tests.processes import CORRAL, Processes, Served

CHROMIUM = Path("/usr/lib/chromium/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--no-first-run"]
WORKER = "node-dash"
# no worker has this affinity, so jobs that need it stay queued and their state is known
PARKED = "PARKED"
XSS = "<img src=x onerror=alert(1)>"
# how long the page may take to show something; a deadline, not a measure
WAIT_MS = 30_000


class Farm:
    def __init__(self, server: Served, api: httpx.Client) -> None:
        self.server = server
        self.url = server.url
        self.api = api

    def submit(self, **fields: Any) -> int:
        return submit(self.api, **fields)

    def job(self, job_id: int) -> dict[str, Any]:
        return get(self.api, job_id)

    def bulk(self, parent: int, jobs: list[dict[str, Any]]) -> list[int]:
        response = self.api.post("/api/v2/jobs/bulk", json={"parent": parent, "jobs": jobs})
        assert response.status_code == 200, response.text
        ids: list[int] = response.json()["ids"]
        return ids

    def state(self, job_id: int) -> str:
        state: str = self.job(job_id)["state"]
        return state

    def ended(self, job_id: int, state: str) -> dict[str, Any]:
        return until(
            lambda: (j := self.job(job_id))["state"] == state and j,
            what=f"job {job_id} to be {state}",
        )


@contextmanager
def farm_with(tmp: Path, config_text: str) -> Iterator[Farm]:
    """A server configured with `config_text` and one real worker (WORKER, LINUX, two
    slots), registered before the farm is handed over."""
    started = Processes(tmp)
    try:
        config = tmp / "corral.toml"
        config.write_text(config_text)
        server = started.serve(["--data-dir", str(tmp / "data"), "--config", str(config)])
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=30) as api:
            worker = started.worker(server.url, WORKER, affinity="LINUX", slots=2)
            until(
                lambda: any(w["name"] == WORKER for w in api.get("/api/workers").json()),
                what="the worker to register",
            )
            yield Farm(server, api)
            assert worker.stop() == 0, worker.output()
    finally:
        started.close()


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    # a silent worker is lost within seconds, for the workers view to show one
    config = "[dispatch]\nworker_timeout = 4\ndead_worker_interval = 1\n"
    with farm_with(tmp_path_factory.mktemp("dashboard"), config) as made:
        yield made


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.is_file(), f"Chromium is not installed at {CHROMIUM}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Web:
    """The page, with every script error, console error and refused API call it meets,
    and the dialogs it opened (each answered by `answer`)."""

    def __init__(self, page: Page, url: str) -> None:
        self.page = page
        self.url = url
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.dialogs: list[str] = []
        self.answer: str | None = None
        self.refused_ok = False
        page.on("pageerror", lambda error: self.errors.append(f"{error}\n{error.stack}"))
        page.on("console", self._console)
        page.on("response", self._response)
        page.on("dialog", self._dialog)

    def _response(self, response: Response) -> None:
        path = urlsplit(response.url).path
        if response.status >= 400 and not self.refused_ok:
            self.failed.append(f"{response.request.method} {response.url} -> {response.status}")
        if path == "/" and response.status != 200:
            self.failed.append(f"the page itself: {response.status}")

    def _console(self, message: ConsoleMessage) -> None:
        # a refused or failed load is the browser's line about a response, which
        # _response judges (some refusals are what a test expects)
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(f"console: {message.text}")

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        if dialog.type == "alert":
            # the page never alerts: one is a script from a job's text
            self.errors.append(f"an alert: {dialog.message}")
            dialog.dismiss()
        elif self.answer is not None and dialog.type == "prompt":
            dialog.accept(self.answer)
        else:
            dialog.accept()

    def check(self) -> None:
        assert not self.errors, "errors in the page:\n" + "\n".join(self.errors)
        assert not self.failed, "refused calls:\n" + "\n".join(self.failed)

    def open(self, query: str = "") -> None:
        self.page.goto(f"{self.url}/{query}")
        expect(self.page.locator("[data-live]")).to_have_attribute("data-live", "live")

    def row(self, job_id: int) -> Any:
        return self.page.locator(f"tr[data-id='{job_id}']")

    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.page.url).query)


@pytest.fixture
def web(browser: Browser, farm: Farm) -> Iterator[Web]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    web = Web(page, farm.url)
    yield web
    try:
        web.check()
    finally:
        context.close()


def test_the_page_loads_live_with_no_errors(web: Web, farm: Farm) -> None:
    response = httpx.get(farm.url + "/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    web.open()
    expect(web.page.locator(".brand")).to_have_text("Corral")
    web.page.locator(".tabs a", has_text="Workers").click()
    assert web.query()["view"] == ["workers"]
    expect(web.page.locator(f"tr[data-worker='{WORKER}']")).to_be_visible()
    web.page.locator(".tabs a", has_text="Farm").click()
    assert web.query()["view"] == ["farm"]
    expect(web.page.locator(".chart canvas")).to_have_count(2)


def test_a_submitted_job_appears_and_its_progress_moves_without_a_reload(
    web: Web, farm: Farm
) -> None:
    web.open()
    group = farm.submit(title="live shot", affinity="LINUX")
    row = web.row(group)
    expect(row).to_be_visible()
    frames = farm.bulk(
        group, [{"title": f"live {i}", "command": "sleep 1", "affinity": "LINUX"} for i in range(4)]
    )
    bar = row.locator(".bar")
    expect(bar).to_have_attribute("data-total", "4")
    # seen moving: some frames done and some not, then all of them
    until(
        lambda: (
            0 < int(bar.get_attribute("data-finished") or 0) < 4
            or int(bar.get_attribute("data-working") or 0) > 0
        ),
        what="the group to be part-way",
    )
    expect(bar).to_have_attribute("data-finished", "4")
    expect(row.locator(".state")).to_have_text("FINISHED")
    assert all(farm.state(f) == "FINISHED" for f in frames)


def test_drilling_down_to_a_frame_and_back(web: Web, farm: Farm) -> None:
    group = farm.submit(title="drill shot", affinity="LINUX")
    (frame,) = farm.bulk(group, [{"title": "drill frame", "command": "exit 3"}])
    farm.ended(frame, "ERROR")
    web.open()
    web.row(group).locator("td.title a").first.click()
    assert web.query()["parent"] == [str(group)]
    expect(web.page.locator(".crumbs .here")).to_have_text("drill shot")
    # the list says how the frame's last run ended, on its state
    expect(web.row(frame).locator(".state")).to_have_attribute("title", "exit 3")
    web.row(frame).locator("td.title a").click()
    assert web.query() == {"view": ["job"], "id": [str(frame)]}
    runs = web.page.locator(".runs tbody tr")
    expect(runs).to_have_count(1)
    expect(runs.first).to_contain_text(WORKER)
    expect(runs.first.locator("td").nth(4)).to_have_text("3")
    last_run = web.page.locator("dt", has_text="last run").locator("xpath=following-sibling::dd[1]")
    expect(last_run).to_have_text("exit 3")
    web.page.locator(".crumbs a", has_text="drill shot").click()
    expect(web.row(frame)).to_be_visible()
    web.page.go_back()
    expect(web.page.locator(".job h2")).to_contain_text("drill frame")


def test_filters_and_quick_filters_are_in_the_url(web: Web, farm: Farm) -> None:
    group = farm.submit(title="filter shot")
    failed, parked = farm.bulk(
        group,
        [
            {"title": "fails", "command": "exit 1", "affinity": "LINUX"},
            {"title": "parked needle", "command": "true", "affinity": PARKED, "user": "bo"},
        ],
    )
    farm.ended(failed, "ERROR")
    # a link written by hand names the quick filter alone
    web.open(f"?parent={group}&quick=failed")
    expect(web.page.locator("tbody tr")).to_have_count(1)
    expect(web.row(failed)).to_be_visible()
    expect(web.page.locator("[data-quick='failed']")).to_have_class("on")
    web.page.locator("[data-quick='failed']").click()
    expect(web.page.locator("tbody tr")).to_have_count(2)
    web.page.locator("input[name='user']").fill("bo")
    web.page.locator("input[name='user']").press("Enter")
    expect(web.page.locator("tbody tr")).to_have_count(1)
    assert web.query()["user"] == ["bo"]
    # `/` goes to the search, and the search goes to the URL
    web.page.locator("input[name='user']").fill("")
    web.page.locator("input[name='user']").press("Enter")
    web.page.keyboard.press("Escape")
    web.page.keyboard.press("/")
    expect(web.page.locator("input[name='title']")).to_be_focused()
    web.page.keyboard.type("NEEDLE")
    web.page.keyboard.press("Enter")
    expect(web.page.locator("tbody tr")).to_have_count(1)
    expect(web.row(parked)).to_be_visible()
    assert web.query()["title"] == ["NEEDLE"]
    # shared as a link: a fresh page shows the same
    web.open(web.page.url.removeprefix(farm.url + "/"))
    expect(web.row(parked)).to_be_visible()


def test_paging_through_a_few_thousand_jobs(web: Web, farm: Farm) -> None:
    group = farm.submit(title="big queue", affinity=PARKED)
    ids = farm.bulk(group, [{"title": f"q {i}", "command": "true"} for i in range(3000)])
    web.open(f"?parent={group}")
    rows = web.page.locator("tbody tr")
    expect(rows).to_have_count(100)
    expect(rows.first).to_have_attribute("data-id", str(ids[0]))
    for page in range(1, 4):
        web.page.locator("[data-page='next']").click()
        expect(rows.first).to_have_attribute("data-id", str(ids[100 * page]))
        expect(rows).to_have_count(100)
    # `n` pages too, and the keyset of the page is in the URL
    web.page.keyboard.press("n")
    expect(rows.first).to_have_attribute("data-id", str(ids[400]))
    assert web.query()["after"] == [str(ids[399])]
    web.page.locator("button", has_text="First").click()
    expect(rows.first).to_have_attribute("data-id", str(ids[0]))
    bar = web.page.locator(".crumbs .here")
    expect(bar).to_have_text("big queue")


def test_each_action_changes_the_jobs_as_the_api_shows(web: Web, farm: Farm) -> None:
    group = farm.submit(title="actions", affinity=PARKED)
    a, b, c = farm.bulk(group, [{"title": f"act {i}", "command": "true"} for i in range(3)])
    web.open(f"?parent={group}")

    def select(*ids: int) -> None:
        for job_id in ids:
            web.row(job_id).locator("input[type='checkbox']").check()

    def action(name: str) -> None:
        web.page.locator(f".actions [data-action='{name}']").click()

    select(a, b)
    action("pause")
    until(lambda: farm.state(a) == farm.state(b) == "PAUSED", what="a and b paused")
    assert "pause 2 job(s)" in web.dialogs[-1]
    assert f"#{a} act 0" in web.dialogs[-1]
    assert farm.state(c) == "WAITING"
    expect(web.row(a).locator(".state")).to_have_text("PAUSED")
    select(a, b)
    action("start")
    until(lambda: farm.state(a) == farm.state(b) == "WAITING", what="a and b started")
    select(c)
    web.answer = "4321"
    action("priority")
    until(lambda: farm.job(c)["priority"] == 4321, what="c's priority")
    expect(web.row(c).locator("td.num").nth(1)).to_have_text("4321")
    # the keys: the highlighted row (c, clicked last), `k` up to b, `p` and `s`
    web.page.keyboard.press("k")
    web.page.keyboard.press("p")
    until(lambda: farm.state(b) == "PAUSED", what="b paused by its key")
    web.page.keyboard.press("s")
    until(lambda: farm.state(b) == "WAITING", what="b started by its key")
    select(c)
    action("delete")
    until(lambda: farm.api.get(f"/api/jobs/{c}").status_code == 404, what="c deleted")
    expect(web.row(c)).to_have_count(0)


def test_reset_and_reset_errors(web: Web, farm: Farm) -> None:
    group = farm.submit(title="resets")
    failing, fine = farm.bulk(
        group,
        [
            {"title": "bad frame", "command": "exit 2", "affinity": "LINUX"},
            {"title": "good frame", "command": "true", "affinity": "LINUX"},
        ],
    )
    farm.ended(failing, "ERROR")
    farm.ended(fine, "FINISHED")
    # parked from now on, so a reset job stays WAITING for the test to see
    ok(farm.api.post("/api/jobs", json={str(failing): {"affinity": PARKED}}))
    ok(farm.api.post("/api/jobs", json={str(fine): {"affinity": PARKED}}))
    web.open()
    web.row(group).locator("input[type='checkbox']").check()
    web.page.locator(".actions [data-action='reseterrors']").click()
    until(lambda: farm.state(failing) == "WAITING", what="the failed frame reset")
    assert farm.state(fine) == "FINISHED"
    assert "everything under the 1 group" in web.dialogs[-1]
    web.open(f"?view=job&id={fine}")
    web.page.locator(".actions [data-action='reset']").click()
    until(lambda: farm.state(fine) == "WAITING", what="the finished frame reset")
    expect(web.page.locator(".job h2 .state")).to_have_text("WAITING")


def test_the_log_follows_a_running_job(web: Web, farm: Farm) -> None:
    job = farm.submit(
        title="chatty",
        command="for i in $(seq 1 40); do echo line $i; sleep 0.25; done",
        affinity="LINUX",
    )
    until(lambda: farm.state(job) == "WORKING", what="the job to run")
    web.open(f"?view=job&id={job}")
    log = web.page.get_by_test_id("log")
    expect(log).to_contain_text("line 2")
    expect(log).to_contain_text("line 40")
    farm.ended(job, "FINISHED")
    expect(web.page.locator(".job h2 .state")).to_have_text("FINISHED")


def test_a_long_log_is_read_by_windows(web: Web, farm: Farm) -> None:
    # ~300 KB: more than one window of 64 KB, less than the page keeps
    job = farm.submit(
        title="long log",
        command="seq -f 'row %06g' 1 30000",
        affinity="LINUX",
    )
    farm.ended(job, "FINISHED")
    size = farm.api.get(f"/api/v2/jobs/{job}/log", params={"limit": 1}).json()["size"]
    assert size == 30000 * 11
    web.open(f"?view=job&id={job}")
    log = web.page.get_by_test_id("log")
    expect(log).to_contain_text("row 030000")
    assert "row 000001" not in log.inner_text()
    earlier = web.page.locator("[data-log='earlier']")
    for _ in range(5):
        earlier.click()
    expect(log).to_contain_text("row 000001")
    expect(earlier).to_be_disabled()


def test_a_title_holding_markup_is_shown_as_text(web: Web, farm: Farm) -> None:
    job = farm.submit(title=XSS, command="echo '<b>bold</b>'", affinity="LINUX")
    farm.ended(job, "FINISHED")
    web.open()
    link = web.row(job).locator("td.title a")
    expect(link).to_have_text(XSS)
    assert web.page.locator("img").count() == 0
    link.click()
    expect(web.page.locator(".job h2")).to_contain_text(XSS)
    expect(web.page.get_by_test_id("log")).to_contain_text("<b>bold</b>")
    assert web.page.locator("b", has_text="bold").count() == 0
    assert web.page.locator("img").count() == 0


def test_a_group_of_frames_submitted_from_the_page_runs(web: Web, farm: Farm) -> None:
    web.open()
    web.page.locator("button", has_text="Submit…").click()
    form = web.page.locator("form.submit")
    form.locator("input[name='title']").fill("from the page")
    form.locator("input[name='command']").fill("echo frame {frame}; echo 40%")
    form.locator("input[name='first']").fill("1")
    form.locator("input[name='last']").fill("3")
    form.locator("input[name='affinity']").fill("LINUX")
    form.locator("input[name='pattern']").fill(r"(\d+)%")
    form.locator("button[type='submit']").click()
    # the page opens the new group
    expect(web.page).to_have_url(re.compile(r"[?&]parent=\d+"))
    group = int(web.query()["parent"][0])
    assert farm.job(group)["title"] == "from the page"
    rows = web.page.locator("tbody tr")
    expect(rows).to_have_count(3)
    expect(web.page.locator("tbody tr .state", has_text="FINISHED")).to_have_count(3)
    children = farm.api.get(f"/api/jobs/{group}/children").json()
    assert [(c["command"], c["progress_pattern"]) for c in children] == [
        (f"echo frame {i}; echo 40%", r"(\d+)%") for i in (1, 2, 3)
    ]


def test_workers_stop_and_start_and_a_lost_one_stands_out(web: Web, farm: Farm) -> None:
    # a worker that registered and then fell silent: the server marks it lost
    response = farm.api.post(
        "/api/v2/workers/register", json={"name": "node-gone", "affinity": "", "slots": 1}
    )
    assert response.status_code == 200, response.text
    web.open("?view=workers")
    gone = web.page.locator("tr[data-worker='node-gone']")
    expect(gone).to_be_visible()
    expect(gone).to_have_class("lost")
    expect(gone.locator(".state")).to_have_text("LOST")
    # lost ones first
    expect(web.page.locator("tbody tr").first).to_have_attribute("data-worker", "node-gone")
    mine = web.page.locator(f"tr[data-worker='{WORKER}']")
    mine.locator("[data-action='stop']").click()
    until(
        lambda: (
            not next(w for w in farm.api.get("/api/workers").json() if w["name"] == WORKER)[
                "active"
            ]
        ),
        what="the worker stopped",
    )
    expect(mine).to_have_class("stopped")
    mine.locator("[data-action='start']").click()
    until(
        lambda: next(w for w in farm.api.get("/api/workers").json() if w["name"] == WORKER)[
            "active"
        ],
        what="the worker started",
    )
    expect(mine.locator("[data-action='stop']")).to_be_visible()


def test_the_farm_at_a_glance(web: Web, farm: Farm) -> None:
    glance = farm.api.get("/api/v2/farm").json()
    assert len(glance["minutes"]) == 60
    assert sum(m["finished"] for m in glance["minutes"]) > 0 or glance["jobs"]["FINISHED"] == 0
    web.open("?view=farm")
    expect(web.page.locator("[data-tile='finished'] .value")).to_have_text(
        str(farm.api.get("/api/v2/farm").json()["jobs"]["FINISHED"])
    )
    expect(web.page.locator(".chart canvas")).to_have_count(2)


def test_keys_help_and_themes(web: Web, farm: Farm) -> None:
    web.open()
    web.page.keyboard.press("?")
    expect(web.page.get_by_role("dialog")).to_contain_text("pause")
    web.page.keyboard.press("Escape")
    expect(web.page.get_by_role("dialog")).to_have_count(0)
    root = web.page.locator("html")
    web.page.keyboard.press("t")
    expect(root).to_have_attribute("data-theme", re.compile("^(light|dark)$"))
    first = root.get_attribute("data-theme")
    web.page.keyboard.press("t")
    expect(root).to_have_attribute("data-theme", "light" if first == "dark" else "dark")


def test_the_page_reconnects_after_a_server_restart(
    browser: Browser, processes: Processes, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = processes.serve(["--data-dir", str(data)])
    server.wait_ready()
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    web = Web(page, server.url)
    try:
        web.open()
        assert server.stop() == 0
        # the page's own reads fail while the server is away: not the page's fault
        web.refused_ok = True
        expect(page.locator("[data-live]")).to_have_attribute("data-live", "lost")
        again = processes.serve(["--data-dir", str(data)], port=server.port)
        again.wait_ready()
        expect(page.locator("[data-live]")).to_have_attribute("data-live", "live")
        web.refused_ok = False
        with httpx.Client(base_url=again.url) as api:
            job = submit(api, title="after the restart")
        expect(web.row(job)).to_be_visible()
        assert not web.errors or all("net::ERR" in e or "Failed" in e for e in web.errors)
    finally:
        context.close()


# --- with tokens ----------------------------------------------------------------------


def create_token(data: Path, name: str, role: str) -> str:
    """`corral token create`, as an admin makes one: its secret is the last line."""
    out = subprocess.run(
        [*CORRAL, "token", "create", "--role", role, "--name", name, "--data-dir", str(data)],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def test_with_tokens_the_page_asks_for_one_and_offers_only_what_the_user_may_do(
    browser: Browser, processes: Processes, tmp_path: Path
) -> None:
    # no asyncio here: Playwright's sync API runs an event loop in this thread
    data = tmp_path / "data"
    admin = create_token(data, "boss", "admin")
    user = create_token(data, "ana", "user")
    server = processes.serve(["--data-dir", str(data)])
    headers = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=server.url, headers=headers) as api:
        until(lambda: _answers(api), what="the server")
        theirs = submit(api, title="bob's", user="bob", affinity=PARKED, command="true")
        hers = submit(api, title="ana's", user="ana", affinity=PARKED, command="true")
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    web = Web(page, server.url)
    try:
        # refused without one: a prompt, and no job shown
        web.refused_ok = True
        page.goto(server.url + "/")
        expect(page.locator("form.token")).to_be_visible()
        assert page.locator("tr[data-id]").count() == 0
        page.locator("input[name='token']").fill("corral_not-a-token")
        page.locator("form.token button").click()
        expect(page.locator("form.token")).to_contain_text("unknown or revoked")
        web.refused_ok = False
        page.locator("input[name='token']").fill(user)
        page.locator("form.token button").click()
        expect(page.locator("[data-live]")).to_have_attribute("data-live", "live")
        expect(page.locator(".who")).to_have_text("ana (user)")
        expect(web.row(theirs)).to_be_visible()
        # bob's job cannot be changed by ana: nothing is offered
        web.row(theirs).click()
        expect(page.locator(".actions [data-action='pause']")).to_be_disabled()
        web.row(hers).click()
        expect(page.locator(".actions [data-action='pause']")).to_be_enabled()
        page.locator(".actions [data-action='pause']").click()
        with httpx.Client(base_url=server.url, headers=headers) as api:
            until(lambda: get(api, hers)["state"] == "PAUSED", what="her job paused")
            assert get(api, theirs)["state"] == "WAITING"
            # the live feed works with the token: a change shows without a reload
            job = submit(api, title="seen live", user="ana")
        expect(web.row(job)).to_be_visible()
        page.goto(server.url + "/?view=workers")
        expect(page.locator("[data-action='stop']")).to_have_count(0)
        web.check()
    finally:
        context.close()


def _answers(api: httpx.Client) -> bool:
    try:
        return api.get("/api/v2/me").status_code == 200
    except httpx.TransportError:
        return False
