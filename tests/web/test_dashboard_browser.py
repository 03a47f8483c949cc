"""The dashboard in a real headless Chromium (Debian's `chromium`, driven by Playwright) against a real farm.

A real `rayfarm server` and `rayfarm worker` render a real Blender scene. Through the browser only, the
test signs in, watches the task's progress bar move to 100%, opens the frame grid (from the keyboard), sees
a thumbnail load, reads a frame's log, drains and enables the node, stops and starts a rendering command
task and sets its priority with the buttons (each checked through the API too), sees the "farm does not
answer" banner come and go, and signs out. Screenshots go to tests/artifacts/ (not committed).
"""

import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from rayfarm.sdk import RayfarmAPI
from tests.support import taskjson
from tests.support.blender import make_scene
from tests.support.processes import wait_for
from tests.support.tasks import status as status_of
from tests.support.tasks import submit

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
SCENE = "D:/proj/dash/shot.blend"


# A command task whose one chunk sleeps long enough to be stopped while it renders (Debian's python3: the node
# confines its jobs, and a confined job sees only the system's programs, not this venv's).
SLEEPER = taskjson.command(["python3", "-c", "import time; print('sleeping', flush=True); time.sleep(600)"], "1-1[1]",
                           job_stop_time="3600")


@pytest.fixture
def scene(tmp_path):
    """Blender builds the scene in the background while the server and the browser start (a Future). Its frames
    take about a second each, so that the progress bar has time to show a value between 0 and 100 % (a node renders
    the second frame in the Blender session of the first, without starting Blender again)."""
    with ThreadPoolExecutor(1) as pool:
        yield pool.submit(make_scene, tmp_path / "scene" / "shot.blend", frames=2, width=96, height=54, samples=1500)


@pytest.fixture
def page():
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed (bash scripts/setup.sh installs it)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context(viewport={"width": 1360, "height": 900})
        context.set_default_timeout(30_000)  # liveness only: a busy CI machine may be slow
        expect.set_options(timeout=30_000)
        yield context.new_page()
        browser.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


def test_dashboard_signs_in_watches_a_blender_render_and_drives_a_task(scene, farm, page):
    with ThreadPoolExecutor(2) as pool:  # the user is made while the node starts
        made = pool.submit(farm.create_user, "wrangler", "--admin", "--allow-commands")
        node = pool.submit(farm.start_worker, "node-1")
        user, _ = made.result(), node.result()
    shutil.copyfile(scene.result(), farm.input_file(user, SCENE))
    api = RayfarmAPI(user.access_id, user.access_key, domain=farm.domain)

    # sign in: a wrong key is refused with a sentence, the right one opens the task list
    errors: list[str] = []  # script errors and console errors (a CSP refusal, a failed load) fail the test
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto(farm.url + "/")
    page.get_by_label("Access id").fill(user.access_id)
    page.get_by_label("Access key").fill("not the key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("wrong")
    shot(page, "signin")
    page.get_by_label("Access key").fill(user.access_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Tasks", exact=True)).to_be_visible()
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["rayfarm_session"]["httpOnly"] and cookies["rayfarm_session"]["sameSite"] == "Strict"
    assert user.access_key not in str(page.context.cookies()) + page.evaluate("JSON.stringify(localStorage)")

    task_json = taskjson.blender(SCENE, "1-2[1]", cg_version="3.4", common={"width": "96", "height": "54"})
    blender_id = submit(api, task_json, task_user_level=80)
    sleeper_id = submit(api, SLEEPER, task_user_level=10)  # renders after the Blender task

    # the progress bar of the Blender task moves through intermediate values to 100%, without a reload
    row = page.locator(f'tr[data-task-id="{blender_id}"]')
    bar = row.locator("progress")
    seen: set[float] = set()

    def finished() -> bool:
        value = bar.evaluate("p => p.value")
        if 0 < value < 100 and not any(0 < v < 100 for v in seen):
            shot(page, "tasks-rendering")  # the first intermediate value on screen
        seen.add(value)
        return row.locator(".badge").inner_text() == "Done"

    wait_for(finished, 120, "the Blender task to show Done", interval=0.1, details=farm.log)
    seen.add(bar.evaluate("p => p.value"))
    assert any(0 < value < 100 for value in seen), f"no intermediate progress was shown: {sorted(seen)}"
    assert max(seen) == 100 and row.locator(".progress-text").inner_text() == "100%"
    assert status_of(api, blender_id) == 25
    expect(page.locator("#totals")).to_contain_text("Nodes:")

    # one task: the frame grid coloured by state, a thumbnail that really loads, the frame's log
    row.get_by_role("link", name=str(blender_id)).click()
    expect(page.get_by_role("heading", name=re.compile(f"Task {blender_id}"))).to_be_visible()
    done = page.locator("ol.frames button.frame.fs4")
    expect(done).to_have_count(2)
    assert page.locator("ol.frames button.frame").all_inner_texts() == ["1", "2"]
    page.get_by_role("button", name="Frame 1: Done").focus()  # the grid is usable from the keyboard
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Frame 2")).to_be_visible()
    thumb = page.locator("img.thumb")
    expect(thumb).to_have_count(1)
    thumb.scroll_into_view_if_needed()
    page.wait_for_function("() => { const i = document.querySelector('img.thumb'); return i && i.complete && "
                           "i.naturalWidth > 0; }", timeout=30_000)
    assert thumb.evaluate("i => i.naturalWidth") == 96  # the rendered frame's size (smaller than a thumbnail)
    expect(page.locator("pre.log")).to_contain_text("Saved")
    shot(page, "task-frames")

    # render nodes: the node is busy with the command chunk; an admin drains it and enables it again
    wait_for(lambda: status_of(api, sleeper_id) == 5, 60, "the command task to render", details=farm.log)
    page.get_by_role("link", name="Render nodes").click()
    node = page.locator("tr", has=page.get_by_role("rowheader", name=re.compile("node-1")))
    expect(node.locator(".badge")).to_have_text("Busy")
    expect(node).to_contain_text(f"Task {sleeper_id}")
    node.get_by_role("button", name="Drain node node-1").click()
    expect(node.locator(".badge")).to_have_text("Draining (busy)")
    assert [w["draining"] for w in api.query.workers() if w["name"] == "node-1"] == [True]
    shot(page, "workers")
    node.get_by_role("button", name="Enable node node-1").click()
    expect(node.locator(".badge")).to_have_text("Busy")
    assert [w["draining"] for w in api.query.workers() if w["name"] == "node-1"] == [False]

    # stop and start the rendering command task with the buttons; the API agrees
    node.get_by_role("link", name=f"Task {sleeper_id}").click()
    expect(page.locator(".title-row .badge")).to_have_text("Rendering")
    page.get_by_role("button", name="Stop", exact=True).click()
    expect(page.locator(".title-row .badge")).to_have_text("Stopped")
    assert status_of(api, sleeper_id) == 10
    expect(page.get_by_role("button", name="Stop", exact=True)).to_be_disabled()
    page.get_by_role("button", name="Start", exact=True).click()
    expect(page.locator(".title-row .badge")).to_have_text(re.compile("Waiting|Rendering"))
    assert status_of(api, sleeper_id) in (0, 5)
    page.get_by_label("Priority").fill("70")
    page.get_by_label("Priority").press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Priority set: done")
    assert api.query.task_info([sleeper_id])["items"][0]["taskUserLevel"] == 70
    shot(page, "task-controls")
    api.close()

    # when the farm does not answer, a banner says so; it goes once the farm answers again
    page.route("**/web/api/**", lambda route: route.abort())
    expect(page.locator("#offline")).to_be_visible()
    page.unroute("**/web/api/**")
    expect(page.locator("#offline")).to_be_hidden()

    # signing out drops the session: the sign-in form is back and the cookie is gone
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("heading", name="Sign in to rayfarm")).to_be_visible()
    assert "rayfarm_session" not in {c["name"] for c in page.context.cookies()}
    assert [e for e in errors if "ERR_FAILED" not in e] == []  # only the requests aborted on purpose failed
