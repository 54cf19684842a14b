"""More of Corral's page in headless Chromium against a real `corral serve` and a real
`corral worker`: a running job's last output, the farm's history, sorting, moving jobs,
a worker's rules, submitting a tree with dependencies, and the farm view reading again
at most once a second however fast the farm changes. The page fixtures are those of
tests/test_dashboard.py; this module runs its own server, which samples the farm every
second."""

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Request, expect

from tests.farm import ok, until
from tests.test_dashboard import PARKED, WORKER, Farm, Web, browser, farm_with, web

__all__ = ["browser", "web"]


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    config = "[dashboard]\nsample_interval = 1\n"
    with farm_with(tmp_path_factory.mktemp("dashboard-more"), config) as made:
        yield made


def ids_shown(web: Web) -> list[int]:
    return [int(i) for i in web.page.locator("tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.id)"
    )]  # fmt: skip


def test_a_running_job_shows_its_last_output_and_is_marked_when_quiet(web: Web, farm: Farm) -> None:
    group = farm.submit(title="quiet shot")
    (job,) = farm.bulk(
        group,
        [
            {
                "title": "prints then sleeps",
                "command": "echo rendering; sleep 600",
                "affinity": "LINUX",
            }
        ],
    )
    try:
        until(lambda: farm.api.get(f"/api/v2/jobs/{job}/log").json()["last_output"], what="output")
        # the page's clock runs as it is told from here on: five minutes pass at once
        web.page.clock.install()
        web.open(f"?parent={group}")
        mark = web.row(job).locator("td.output [data-last-output]")
        expect(mark).to_have_attribute("data-quiet", "no")
        expect(mark).to_contain_text("ago")
        web.page.locator(f"tr[data-id='{job}'] td.title a").click()
        shown = web.page.locator(".fields [data-last-output]")
        expect(shown).to_contain_text("last output")
        expect(shown).to_have_attribute("data-quiet", "no")
        expect(web.page.get_by_test_id("log")).to_contain_text("rendering")
        web.page.clock.fast_forward("06:00")
        expect(shown).to_have_attribute("data-quiet", "yes")
        web.page.go_back()
        expect(web.row(job).locator("td.output [data-last-output]")).to_have_attribute(
            "data-quiet", "yes"
        )
    finally:
        ok(farm.api.request("DELETE", "/api/jobs", json=[group]))


def test_the_farm_view_charts_the_sampled_history(web: Web, farm: Farm) -> None:
    history = until(lambda: farm.api.get("/api/v2/farm").json()["history"], what="a sample")
    assert {"at", "queued", "busy", "slots"} <= set(history[0])
    web.open("?view=farm")
    section = web.page.locator("section.farm")
    expect(section).not_to_have_attribute("data-history", "0")
    expect(web.page.locator(".chart canvas")).to_have_count(2)
    expect(web.page.locator(".chart")).to_contain_text(["Runs ended", "Queue depth"])


def test_the_farm_view_reads_again_at_most_once_a_second(web: Web, farm: Farm) -> None:
    reads: list[float] = []

    def seen(request: Request) -> None:
        if request.url.endswith("/api/v2/farm"):
            reads.append(time.monotonic())

    web.page.on("request", seen)
    web.open("?view=farm")
    expect(web.page.locator("section.farm")).to_be_visible()
    group = farm.submit(title="burst", affinity=PARKED)
    began = time.monotonic()
    # each submit is a change, and the feed says so up to four times a second
    for i in range(40):
        farm.submit(title=f"burst {i}", command="true", parent=group)
    lasted = time.monotonic() - began
    # the last change is read too (a trailing read)
    until(
        lambda: (
            web.page.locator("[data-tile='waiting'] .value").inner_text()
            == str(farm.api.get("/api/v2/farm").json()["jobs"]["WAITING"])
        ),
        what="the last change shown",
    )
    during = [t for t in reads if t >= began]
    # at most one a second while the burst lasted, one at its start and the trailing one
    assert len(during) <= int(lasted) + 3, (len(during), lasted)
    ok(farm.api.request("DELETE", "/api/jobs", json=[group]))


def test_sorting_by_a_column_is_in_the_url(web: Web, farm: Farm) -> None:
    group = farm.submit(title="sorting", affinity=PARKED)
    ids = farm.bulk(
        group,
        [{"title": t, "command": "true", "priority": p} for t, p in (("c", 5), ("a", 9), ("b", 1))],
    )
    web.open(f"?parent={group}")
    expect(web.page.locator("tbody tr")).to_have_count(3)
    assert ids_shown(web) == ids
    web.page.locator("th[data-sort='priority'] a").click()
    until(lambda: ids_shown(web) == [ids[2], ids[0], ids[1]], what="ascending priority")
    assert web.query()["sort"] == ["priority"]
    web.page.locator("th[data-sort='priority'] a").click()
    until(lambda: ids_shown(web) == [ids[1], ids[0], ids[2]], what="descending priority")
    assert web.query()["sort"] == ["-priority"]
    expect(web.page.locator("th[data-sort='priority']")).to_have_attribute(
        "aria-sort", "descending"
    )
    # the link opens the same order
    web.open(f"?parent={group}&sort=title")
    until(lambda: ids_shown(web) == [ids[1], ids[2], ids[0]], what="by title")


def test_moving_jobs_under_another_group(web: Web, farm: Farm) -> None:
    source = farm.submit(title="move from", affinity=PARKED)
    target = farm.submit(title="move to", affinity=PARKED)
    a, b, c = farm.bulk(source, [{"title": f"mv {i}", "command": "true"} for i in range(3)])
    web.open(f"?parent={source}")
    expect(web.page.locator("tbody tr")).to_have_count(3)
    web.row(a).locator("input[type='checkbox']").check()
    web.row(b).locator("input[type='checkbox']").check()
    web.answer = str(target)
    web.page.locator("[data-action='move']").click()
    # the confirmation comes after the click returned (the page reads the group first):
    # Playwright answers it while the test waits on the page
    expect(web.page.locator("tbody tr")).to_have_count(1)
    until(lambda: farm.job(a)["parent"] == farm.job(b)["parent"] == target, what="a and b moved")
    assert farm.job(c)["parent"] == source
    # the confirmation named the group and the jobs
    assert any(f"under group #{target} move to" in d and f"#{a}" in d for d in web.dialogs)
    # and from a job's own view, to the top
    web.open(f"?view=job&id={c}")
    web.answer = "0"
    web.page.locator("[data-action='move']").click()
    expect(web.page.locator(".crumbs a")).to_have_count(1)
    until(lambda: farm.job(c)["parent"] == 0, what="c moved to the top")
    assert any("under the top level" in d for d in web.dialogs)
    # a job with a command is no group: refused in the page, nothing sent
    web.open(f"?parent={target}")
    web.row(a).locator("input[type='checkbox']").check()
    web.answer = str(c)
    web.page.locator("[data-action='move']").click()
    expect(web.page.locator(".error")).to_contain_text("no group")
    assert farm.job(a)["parent"] == target
    ok(farm.api.request("DELETE", "/api/jobs", json=[source, target, c]))


def worker_rules(farm: Farm) -> str:
    rules: str = next(w for w in farm.api.get("/api/workers").json() if w["name"] == WORKER)[
        "affinity"
    ]
    return rules


def test_editing_a_workers_rules(web: Web, farm: Farm) -> None:
    before = worker_rules(farm)
    web.open("?view=workers")
    row = web.page.locator(f"tr[data-worker='{WORKER}']")
    try:
        row.locator("[data-action='rules']").click()
        row.locator("textarea[name='rules']").fill("LINUX\nGPU,LINUX")
        row.locator("[data-rules='save']").click()
        until(lambda: worker_rules(farm) == "LINUX\nGPU,LINUX", what="the new rules")
        expect(row.locator(".rule")).to_have_text(["LINUX", "GPU,LINUX"])
    finally:
        ok(farm.api.post("/api/workers", json={WORKER: {"affinity": before}}))


def test_a_tree_submitted_from_the_page_ends_with_a_job_waiting_for_every_frame(
    web: Web, farm: Farm
) -> None:
    first = farm.submit(title="before the tree", command="true", affinity="LINUX")
    farm.ended(first, "FINISHED")
    web.open()
    web.page.locator("button", has_text="Submit…").click()
    form = web.page.locator("form.submit")
    form.locator("input[name='title']").fill("tree")
    form.locator("input[name='command']").fill("echo frame {frame}")
    form.locator("input[name='first']").fill("1")
    form.locator("input[name='last']").fill("3")
    form.locator("input[name='affinity']").fill("LINUX")
    form.locator("input[name='after']").fill(str(first))
    form.locator("input[name='final']").fill("echo encode")
    expect(form.locator("button[type='submit']")).to_have_text("Submit 3 frames and a final job")
    form.locator("button[type='submit']").click()
    expect(web.page.locator("tbody tr")).to_have_count(4)
    group = int(web.query()["parent"][0])
    assert farm.job(group)["dependencies"] == [first]
    children = farm.api.get(f"/api/jobs/{group}/children").json()
    frames = [c["id"] for c in children if c["command"].startswith("echo frame")]
    (final,) = [c for c in children if c["command"] == "echo encode"]
    assert len(frames) == 3
    assert farm.job(final["id"])["dependencies"] == frames
    assert final["title"] == "tree final"
    done = farm.ended(final["id"], "FINISHED")
    ends = [farm.job(f)["start_time"] + farm.job(f)["duration"] for f in frames]
    assert done["start_time"] >= max(ends) - 1
    # one job after chosen ones
    web.page.locator("button", has_text="Submit…").click()
    form.locator("input[name='title']").fill("after two")
    form.locator("input[name='command']").fill("true")
    form.locator("input[name='after']").fill(f"{frames[0]}, #{frames[2]}")
    form.locator("button[type='submit']").click()
    expect(web.page.locator("tbody tr")).to_have_count(5)
    (after,) = [
        c for c in farm.api.get(f"/api/jobs/{group}/children").json() if c["title"] == "after two"
    ]
    assert farm.job(after["id"])["dependencies"] == [frames[0], frames[2]]
