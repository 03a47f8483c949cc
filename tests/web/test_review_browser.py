"""Reviewing results in the dashboard, in Debian's headless Chromium (Playwright) against a real farm (#12).

A real server and node render a Blender scene whose own output path is ``//renders/frame_`` (its frames keep
that name), a command task with a timed-out, a failed and a done chunk, and a slow command task. Through the
browser only: the slow task's time left in the task list and its page; the "Failed" filter shows the failed
and the timed-out chunk, as the counts say; a done cell keeps its colour under the pointer; the Blender task's
details (labels, project, chunk time-out, dates as the CLI prints them); its gallery, the full-size viewer
stepped with the keyboard and closed with Escape, the contact sheet, the preview movie (made by the farm when
the task ended) playing in a <video>, the zip of every output and one file downloaded; and the pages at phone
width. Screenshots go to tests/artifacts/ (not committed).
"""

import io
import re
import subprocess
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from rayfarm.sdk import RayfarmAPI
from tests.support import taskjson
from tests.support.blender import make_scene
from tests.support.processes import wait_for

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
SCENE = "D:/proj/review/shot.blend"
ISO = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
DONE_GREEN = "rgb(22, 163, 74)"  # --done in style.css


def named_scene(path: Path) -> Path:
    """The test scene (frames 1-6, 96x54), saved with the artist's own output path."""
    make_scene(path, frames=6, width=96, height=54, samples=4)
    script = ("import bpy; bpy.context.scene.render.filepath = '//renders/frame_'; "
              f"bpy.ops.wm.save_as_mainfile(filepath={str(path)!r})")
    done = subprocess.run(["blender", "-b", "--factory-startup", str(path), "--python-expr", script],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return path


def command(frames: str, script: str, **task_info: str) -> dict:
    """A command task running ``python3 -c script FRAME`` per chunk."""
    return {"software_config": {"cg_name": "command", "cg_version": "", "plugins": {}},
            "task_info": {"frames_per_task": "1", "pre_frames": "000", "stop_after_test": "2", **task_info},
            "scene_info": {"common": {"frames": frames}},
            "additional_info": {"command": ["python3", "-c", script, "{frame}"]}}


def submit(api: RayfarmAPI, task_json: dict, level: int, labels: list[str] | None = None) -> int:
    task_id = api.task.create_task(task_user_level=level, labels=labels)["taskIdList"][0]
    api.task.upload_task_json(task_id, task_json)
    api.task.submit_task(task_id)
    return task_id


@pytest.fixture
def browser():
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed (bash scripts/setup.sh installs it)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        expect.set_options(timeout=30_000)
        yield browser
        browser.close()


def open_page(browser, farm, user, width: int, height: int) -> tuple[Page, list[str]]:
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    context.set_default_timeout(30_000)  # liveness only: a busy machine may be slow
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto(farm.url + "/")
    page.get_by_label("Access id").fill(user.access_id)
    page.get_by_label("Access key").fill(user.access_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Tasks", exact=True)).to_be_visible()
    return page, errors


def shot(page: Page, name: str, element=None, full_page: bool = True) -> None:
    """tests/artifacts/review-NAME.png: the whole page, what the window shows, or one element."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = str(ARTIFACTS / f"review-{name}.png")
    if element is not None:
        element.screenshot(path=path)
    else:
        page.screenshot(path=path, full_page=full_page)


def fits(page: Page, width: int) -> None:
    """Nothing sticks out sideways: the page does not scroll horizontally."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_review_a_render_in_the_dashboard(tmp_path, farm, browser):
    with ThreadPoolExecutor(3) as pool:  # Blender builds the scene while the user and the node are made
        scene = pool.submit(named_scene, tmp_path / "scene" / "shot.blend")
        made = pool.submit(farm.create_user, "reviewer", "--allow-commands")
        pool.submit(farm.start_worker, "node-1").result()
        user = made.result()
        farm.input_file(user, SCENE, scene.result().read_bytes())
    api = RayfarmAPI(user.access_id, user.access_key, domain=farm.domain)

    blender = taskjson.blender(SCENE, frames="1-6[1]", frames_per_task="2", project_name="dash", job_stop_time="7200")
    blender["software_config"]["cg_version"] = "3.4"
    common = blender["scene_info"]["common"]
    common.update(width="96", height="54")
    del common["Output_path"]  # the scene's own output path names the frames
    shots = submit(api, blender, level=80, labels=["review", "hero"])
    # frame 1 runs past the chunk time-out (timed out), frame 2 fails, frame 3 is done
    trouble = submit(api, command("1-3", "import sys, time; f = int(sys.argv[1]); time.sleep(60 if f == 1 else 0); "
                                         "sys.exit(f == 2)", job_stop_time="3", max_attempts="1"), level=70)
    # frame 1 takes 2 s, the others long enough to be looked at while they render
    slow = submit(api, command("1-3", "import sys, time; time.sleep(2 if sys.argv[1] == '1' else 600)"), level=10)

    page, errors = open_page(browser, farm, user, 1360, 900)
    # the task list: once the slow task has a done chunk, its time left shows under its progress bar
    eta = page.locator(f'tr[data-task-id="{slow}"] .eta')
    wait_for(lambda: "left" in eta.inner_text(), 240, "the slow task's time left", interval=0.5, details=farm.log)
    assert re.fullmatch(r"about \d+ s left", eta.inner_text()), eta.inner_text()
    submitted = page.locator(f'tr[data-task-id="{shots}"] td').nth(6).inner_text()
    assert ISO.match(submitted), submitted  # as the command line prints it, whatever the browser's locale
    shot(page, "tasks-time-left")
    page.locator(f'tr[data-task-id="{slow}"]').get_by_role("link", name=str(slow)).click()
    expect(page.locator("dd").filter(has_text="left")).to_have_text(re.compile(r"about \d+ s left"))
    api.task.abort_task([slow])

    # the failed filter shows the failed and the timed-out chunk, as many as the counts say
    page.goto(f"{farm.url}/#/task/{trouble}")
    assert sorted(f["frameStatus"] for f in api.query.task_frames(trouble)["items"]) == [4, 5, 11]
    failed = page.get_by_role("button", name=re.compile("^Failed"))
    expect(failed).to_contain_text("2")
    failed.click()
    expect(page.locator("ol.frames button.frame")).to_have_count(2)
    assert page.locator("ol.frames button.frame").all_inner_texts() == ["1", "2"]
    counts = page.locator("section[aria-label=Progress] dd")
    assert counts.nth(3).inner_text() == "2"  # Failed, in the progress card
    shot(page, "failed-filter")

    # the Blender task: details, a done cell under the pointer, the gallery
    page.goto(f"{farm.url}/#/task/{shots}")
    expect(page.locator("ol.frames button.frame.fs4")).to_have_count(3)
    details = dict(zip(page.locator("section[aria-label=Details] dt").all_inner_texts(),
                       page.locator("section[aria-label=Details] dd").all_inner_texts(), strict=True))
    assert (details["Labels"], details["Project"], details["Chunk time-out"], details["Chunks"], details["Frames"]) == \
        ("hero, review", "dash", "2 h", "2 frames each", "1-6")
    assert ISO.match(details["Submitted"]) and ISO.match(details["Completed"]), details
    item = api.query.task_info([shots])["items"][0]
    assert page.locator("dt", has_text="Pool").is_visible() == ("pool" in item or "pools" in item)
    cell = page.locator("ol.frames button.frame").first
    cell.hover()
    assert cell.evaluate("b => [getComputedStyle(b).backgroundColor, getComputedStyle(b).color]") == \
        [DONE_GREEN, "rgb(255, 255, 255)"]

    names = [f"frame_000{n}.png" for n in range(1, 7)]
    gallery = page.locator("button.shot")
    expect(gallery).to_have_count(6)
    assert [gallery.nth(i).get_attribute("data-name") for i in range(6)] == names  # the scene's own names
    page.locator("section.outputs").scroll_into_view_if_needed()
    page.wait_for_function("() => [...document.querySelectorAll('button.shot img')].every(i => i.complete && i.naturalWidth)")
    shot(page, "gallery", element=page.locator("section.outputs"))

    # the viewer: full size, ←/→ step through the frames, End goes to the last, Escape closes it
    gallery.first.click()
    viewer, caption = page.locator("dialog.viewer"), page.locator("#viewer-caption")
    expect(viewer).to_be_visible()
    expect(caption).to_have_text(re.compile(r"^Frame 1 · frame_0001\.png · .* · 1 of 6$"))
    page.keyboard.press("ArrowRight")
    expect(caption).to_have_text(re.compile("^Frame 2 · frame_0002.png"))
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowLeft")
    expect(caption).to_have_text(re.compile("^Frame 2 "))
    page.keyboard.press("End")
    # the frame itself (its 96×54 pixels, not a thumbnail), fitted to the window
    expect(caption).to_have_text(re.compile(r"^Frame 6 · frame_0006\.png · 96×54 · .* · 6 of 6$"))
    picture = page.locator("dialog.viewer img.full")
    assert picture.evaluate("i => [i.naturalWidth, i.getBoundingClientRect().width > 96]") == [96, True]
    shot(page, "viewer", full_page=False)
    page.get_by_role("button", name="1:1").click()  # its real size
    assert picture.evaluate("i => i.getBoundingClientRect().width") == 96
    page.keyboard.press("ArrowRight")  # from the last frame, the first
    expect(caption).to_have_text(re.compile("^Frame 1 "))
    page.keyboard.press("ArrowLeft")  # and back to the last
    expect(caption).to_have_text(re.compile("^Frame 6 "))
    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    # the thumbnail of the frame last shown gets the focus (set by the dialog's close event, which the browser fires
    # after putting the focus back on the opener: wait for it)
    expect(page.locator('button.shot[data-name="frame_0006.png"]')).to_be_focused()

    # the previews the farm made when the task ended: the contact sheet, and the movie playing in a <video>
    sheet = page.locator("img.sheet")
    page.wait_for_function("() => { const i = document.querySelector('img.sheet'); return i && i.complete && i.naturalWidth; }")
    assert sheet.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [8 + 6 * (96 + 8), 8 + (54 + 22 + 8)]
    video = page.locator("video.movie")
    page.wait_for_function("() => document.querySelector('video.movie').readyState >= 2")
    assert video.evaluate("v => [v.videoWidth, v.videoHeight, v.error]") == [96, 54, None]
    video.evaluate("v => { v.loop = true; return v.play(); }")
    page.wait_for_function("() => document.querySelector('video.movie').currentTime > 0")
    page.locator("section.previews").scroll_into_view_if_needed()
    shot(page, "previews", element=page.locator("section.previews"))

    # every output as one zip, and one file, downloaded as a person clicks them
    with page.expect_download() as download:
        page.get_by_role("link", name="Download all (.zip)").click()
    assert download.value.suggested_filename == f"{shots}_shot.zip"
    archive = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes()))
    folder = farm.data_dir / "storage" / str(user.user_id) / "output" / f"{shots}_shot"
    assert sorted(archive.namelist()) == [f"{shots}_shot/{name}" for name in names]
    assert all(archive.read(f"{shots}_shot/{name}") == (folder / name).read_bytes() for name in names)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download frame_0003.png").click()
    assert download.value.suggested_filename == "frame_0003.png"
    assert Path(download.value.path()).read_bytes() == (folder / "frame_0003.png").read_bytes()
    assert errors == []

    # a phone: the task list and the task fit the screen, the page-size control included
    phone, phone_errors = open_page(browser, farm, user, 390, 844)
    expect(phone.locator(f'tr[data-task-id="{shots}"]')).to_be_visible()
    fits(phone, 390)
    size = phone.locator("#page-size").bounding_box()
    assert size["x"] >= 0 and size["x"] + size["width"] <= 390, size
    shot(phone, "phone-tasks")
    phone.goto(f"{farm.url}/#/task/{shots}")
    expect(phone.locator("button.shot")).to_have_count(6)
    fits(phone, 390)
    phone.locator("section.outputs").scroll_into_view_if_needed()  # the thumbnails load as they come into view
    phone.wait_for_function("() => [...document.querySelectorAll('button.shot img')].every(i => i.complete && i.naturalWidth)")
    shot(phone, "phone-task")
    assert phone_errors == []
    api.close()
