"""`rayfarm submit SCENE.blend`: read the scene with Blender, upload it and its files, create and submit a task.

With ``--wait`` it follows the render with a progress bar and exits with the task's outcome; with
``--download DIR`` it then downloads the outputs.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.filesize import decimal
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from rayfarm.cli.blendscene import MOVIE_FORMATS, SceneError, SceneInfo, find_blender, read_scene
from rayfarm.cli.session import Exit, Json, Login, calling, emit, err, fail, with_login
from rayfarm.cli.tasks import duration
from rayfarm.cli.watch import follow, report, state_name
from rayfarm.domain import frames as frame_ranges
from rayfarm.protocol.codes import ApiError
from rayfarm.sdk import RayfarmAPI


def _bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=err)


def _check(what: str, parse, value: str) -> None:
    """Validate locally what the farm would refuse anyway, to fail before uploading anything."""
    try:
        parse(value)
    except ApiError as exc:
        fail(f"{what}: {exc.message}", Exit.USAGE)


def task_json(local: str, frames: str, info: SceneInfo | None, *, chunk: int, priority_frames: str | None,
              pause: bool, camera: str | None, width: int | None, height: int | None, file_format: str | None,
              project: str | None, chunk_timeout: int | None, overtime: int | None, attempts: int | None) -> dict:
    """The Renderbus task.json of a Blender scene (values as strings, as the official client writes them)."""
    task_info = {"input_cg_file": local, "cg_id": "2007", "frames_per_task": str(chunk),
                 "pre_frames": priority_frames or "000", "stop_after_test": "1" if pause else "2"}
    if project:
        task_info["project_name"] = project
    if chunk_timeout:
        task_info["job_stop_time"] = str(chunk_timeout)
    if overtime:
        task_info["task_stop_time"] = str(overtime)
    if attempts:
        task_info["max_attempts"] = str(attempts)
    common = {"frames": frames}
    if info:
        common["scene_name"] = info.scene
    for key, value in (("camera_name", camera), ("width", width), ("height", height), ("Render_Format", file_format)):
        if value:
            common[key] = str(value)
    return {"software_config": {"cg_name": "Blender", "cg_version": info.version if info else "", "plugins": {}},
            "task_info": task_info, "scene_info_render": {"common": common}}


def _say(message: str) -> None:
    """A line on stderr where no terminal shows bars or spinners (a log, the Blender add-on reading it)."""
    if not err.is_terminal:
        err.print(message, markup=False, highlight=False, soft_wrap=True)


def _scene_info(scene: Path, blender: str | None, needed: bool, assets: bool,
                copy_dir: Path | None) -> SceneInfo | None:
    program = find_blender(blender)
    if program is None:
        if needed:
            fail(f"Blender ({blender or 'blender'}) is not installed here, and it is needed to read the scene's "
                 f"frame range: install it, point --blender (or $RAYFARM_BLENDER) at it, or give --frames.",
                 Exit.USAGE)
        if assets:
            err.print("Blender is not installed here: the scene's external files are not uploaded "
                      "(pack them into the .blend, or list them with `rayfarm upload --upload-json`).",
                      style="yellow", markup=False)
        return None
    try:
        _say(f"Reading {scene.name} with Blender...")
        with err.status(f"Reading {scene.name} with Blender..."):
            return read_scene(scene, program, copy_dir=copy_dir)
    except SceneError as exc:
        fail(str(exc), Exit.ERROR)


def _check_scene(scene: Path, info: SceneInfo | None, camera: str | None, assets: bool) -> list[Path]:
    """The files to upload besides the scene, once the scene is known to have the camera asked for."""
    if info and camera and camera not in info.cameras:
        fail(f"{scene.name} has no camera {camera!r}; its cameras: {', '.join(info.cameras) or 'none'}.", Exit.USAGE)
    return [Path(p) for p in info.files] if info and assets else []


def _upload(api: RayfarmAPI, files: list[tuple[Path, Path]]) -> None:
    """Upload each file as the path it stands for on this machine (a relative copy as its original)."""
    if err.is_terminal:
        with calling(), _bar() as bar:
            for file, path in files:
                job = bar.add_task(path.name, total=file.stat().st_size)
                api.files.upload(file, str(path), lambda done, total, job=job: bar.update(job, completed=done, total=total))
        return
    with calling():
        for number, (file, path) in enumerate(files, 1):
            api.files.upload(file, str(path), _progress_lines(f"Uploading {path.name} ({number}/{len(files)})"))


def _progress_lines(label: str):
    """A progress callback that says each tenth of the file it reaches, as lines (see ``_say``)."""
    said = -1

    def progress(done: int, total: int) -> None:
        nonlocal said
        tenth = done * 10 // total if total else 10
        if tenth > said:
            said = tenth
            _say(f"{label}: {tenth * 10}% of {decimal(total)}")
    return progress


def _download(api: RayfarmAPI, task_id: int, target: Path) -> list[Path]:
    jobs: dict[str, int] = {}
    with calling(), _bar() as bar:
        def progress(name: str, done: int, total: int) -> None:
            if name not in jobs:
                jobs[name] = bar.add_task(name, total=total)
            bar.update(jobs[name], completed=done, total=total)

        return api.files.download_task(task_id, target, progress)


@with_login
def submit(scene: Annotated[Path, typer.Argument(help="The .blend file to render.")],
           frames: Annotated[str | None, typer.Option(help="Frames like 1-100, 1-100[2] or 1,5,10-20 "
                                                           "(default: the scene's range).")] = None,
           chunk: Annotated[int, typer.Option(help="Frames per chunk (one node renders a chunk at once).",
                                              min=1, max=10000)] = 1,
           priority_frames: Annotated[str | None, typer.Option(
               "--priority-frames", help="Render these first: three 0/1 flags for first, middle, last frame, "
                                         "e.g. 100, optionally with :FRAMES (000:1,50).")] = None,
           pause_after_priority: Annotated[bool, typer.Option(
               "--pause-after-priority", help="Pause after the priority frames until `task full-speed`.")] = False,
           camera: Annotated[str | None, typer.Option(help="Camera object to render through (default: the scene's).")] = None,
           width: Annotated[int | None, typer.Option(help="Output width in pixels (default: the scene's).",
                                                     min=1, max=65536)] = None,
           height: Annotated[int | None, typer.Option(help="Output height in pixels (default: the scene's).",
                                                      min=1, max=65536)] = None,
           file_format: Annotated[str | None, typer.Option("--format", help="Image format: PNG, OPEN_EXR, JPEG... "
                                                                            "(default: the scene's).")] = None,
           project: Annotated[str | None, typer.Option(help="Project name.")] = None,
           label: Annotated[list[str] | None, typer.Option("--label", help="Task label (repeatable).")] = None,
           level: Annotated[int, typer.Option(help="Priority 0-100; higher renders first.", min=0, max=100)] = 50,
           limit: Annotated[int, typer.Option(help="Most nodes rendering it at once (0: no limit).", min=0)] = 0,
           chunk_timeout: Annotated[str | None, typer.Option(
               "--chunk-timeout", help="Fail a chunk attempt that renders longer than this (e.g. 2h).")] = None,
           overtime: Annotated[str | None, typer.Option(
               help="Stop the task when a frame renders longer than this (e.g. 30m).")] = None,
           attempts: Annotated[int | None, typer.Option(help="Attempts per chunk before it fails (default 3).",
                                                        min=1, max=100)] = None,
           assets: Annotated[bool, typer.Option("--assets/--no-assets", help="Upload the files the scene uses "
                                                                            "(textures, caches) too.")] = True,
           blender: Annotated[str | None, typer.Option(help="Blender program used to read the scene.")] = None,
           wait: Annotated[bool, typer.Option("--wait", help="Follow the render until it ends; the exit code "
                                                             "says how it ended.")] = False,
           download: Annotated[Path | None, typer.Option(help="Download the outputs into this folder "
                                                              "(implies --wait).")] = None,
           interval: Annotated[float, typer.Option(help="Seconds between looks while waiting.", min=0.1)] = 1.0,
           json_out: Json = False, *, login: Login) -> None:
    """Render a Blender scene on the farm.

    Reads the frame range (and camera, resolution, format, external files) with Blender unless given,
    uploads the scene, creates and submits the task. Exit code with --wait: 0 done, 5 failed or done with
    failed frames, 6 stopped or paused.
    """
    if not scene.is_file():
        fail(f"{scene} is not a file; give the path of the .blend to render.", Exit.USAGE)
    scene = scene.resolve()
    if frames:
        _check("--frames", frame_ranges.parse_range, frames)
    if priority_frames:
        _check("--priority-frames", frame_ranges.parse_pre_frames, priority_frames)
    if file_format and file_format.upper() in MOVIE_FORMATS:
        fail(f"--format {file_format} is a movie; a farm renders frames separately, so choose an image format "
             f"such as PNG or OPEN_EXR.", Exit.USAGE)
    chunk_seconds = duration(chunk_timeout) if chunk_timeout else None
    overtime_seconds = duration(overtime) if overtime else None
    api = login.connect(retries=3, retry_deadline=120.0)
    with calling():
        api.login()  # wrong credentials or an unreachable farm fail now, before Blender runs

    with tempfile.TemporaryDirectory(prefix="rayfarm-submit-") as work:
        info = _scene_info(scene, blender, needed=not frames, assets=assets,
                           copy_dir=Path(work) if assets else None) if assets or not frames else None
        files = _check_scene(scene, info, camera, assets)
        copies = info.copies if info else {}  # uploaded as the files they stand for
        _upload(api, [(Path(copies.get(str(path), path)), path) for path in [scene, *files]])
    if not file_format and info:
        file_format = info.format
        if file_format in MOVIE_FORMATS:
            err.print(f"The scene renders a movie ({file_format}); the farm renders frames, as PNG.", style="yellow")
            file_format = "PNG"
    content = task_json(str(scene), frames or (info.frames if info else ""), info, chunk=chunk,
                        priority_frames=priority_frames, pause=pause_after_priority, camera=camera,
                        width=width or (info.width if info else None), height=height or (info.height if info else None),
                        file_format=file_format, project=project, chunk_timeout=chunk_seconds,
                        overtime=overtime_seconds, attempts=attempts)
    _say("Creating the task...")
    with calling():
        task_id = api.task.create_task(task_user_level=level, labels=label or None)["taskIdList"][0]
        api.task.upload_task_json(task_id, content)
        if files:
            upload_json = {"asset": [{"local": str(p), "server": str(p)} for p in files]}
            api.task.upload_task_json(task_id, json.dumps(upload_json), file_name="upload.json")
        if limit:
            api.task.update_task_limit(task_id, limit)
        api.task.submit_task(task_id)
    frames_text = content["scene_info_render"]["common"]["frames"]
    err.print(f"Submitted task {task_id}: {scene.name}, frames {frames_text}, {chunk} per chunk.",
              markup=False, highlight=False, soft_wrap=True)

    result: dict = {"taskId": task_id, "frames": frames_text, "files": [str(scene), *map(str, files)],
                    "dashboard": f"{api.connect.protocol}://{api.connect.domain}/#/task/{task_id}"}
    code = Exit.OK
    if wait or download:
        try:
            item, code = follow(api, task_id, interval)
        except KeyboardInterrupt:
            err.print(f"Stopped waiting; the task goes on (`rayfarm task watch {task_id}`).")
            raise typer.Exit(130) from None
        report(item, code)
        result.update(state=state_name(item["taskStatus"]), taskStatus=item["taskStatus"],
                      doneFrames=item["doneFrames"], failedFrames=item["failedFrames"])
        if download:
            written = _download(api, task_id, download) if item["doneFrames"] else []
            result["downloaded"] = [str(p) for p in written]
            err.print(f"{len(written)} file(s) in {download}", markup=False, highlight=False)
    if json_out:
        emit(result)
    else:
        print(task_id)  # the id alone on stdout, for `id=$(rayfarm submit ...)`
    raise typer.Exit(int(code))
