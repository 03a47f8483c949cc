"""Blender's side of the add-on: preferences, the scene's settings, the Submit operator and the panel."""

import bpy
from bpy.props import BoolProperty, IntProperty, PointerProperty, StringProperty

from . import command

ADDON = __package__
_job = None  # the running command.Submission: one at a time
_profiles = command.Profiles()


def preferences(context=None):
    return (context or bpy.context).preferences.addons[ADDON].preferences


def _rayfarm(context=None) -> str:
    """The rayfarm program to run (command.SetupError when there is none)."""
    chosen = preferences(context).executable
    return command.find_rayfarm(bpy.path.abspath(chosen) if chosen else "")


def _running() -> bool:
    return _job is not None and not _job.done


def scene_frames(scene) -> str:
    return f"{scene.frame_start}-{scene.frame_end}[{max(scene.frame_step, 1)}]"


def _search_profiles(self, context, edit_text):
    try:
        _profiles.refresh(_rayfarm(context))  # in the background: this search shows what was read before
    except command.SetupError:
        return []
    return [name for name in _profiles.names if edit_text.lower() in name.lower()]


def _search_cameras(self, context, edit_text):
    return sorted(o.name for o in bpy.data.objects if o.type == "CAMERA" and edit_text.lower() in o.name.lower())


class RayfarmPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON

    executable: StringProperty(
        name="rayfarm program", subtype="FILE_PATH",
        description="The rayfarm command line to run (empty: $RAYFARM_EXE, `rayfarm` on the PATH, "
                    "or the one that installed the add-on)")
    server: StringProperty(name="Server", description="Farm URL such as http://farm:8765, used when the scene "
                                                      "names no profile (empty: the default profile)")
    access_id: StringProperty(name="Access id", description="Your access id on that farm")
    access_key: StringProperty(name="Access key", subtype="PASSWORD", description="Your access key on that farm")

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "executable")
        try:
            layout.label(text=f"Runs {_rayfarm(context)}", icon="CHECKMARK")
        except command.SetupError as exc:
            layout.label(text=str(exc), icon="ERROR")
        box = layout.box()
        box.label(text="Farm for scenes without a profile (a profile from `rayfarm login` keeps the key "
                       "out of Blender's preferences file):")
        box.prop(self, "server")
        box.prop(self, "access_id")
        box.prop(self, "access_key")


class RayfarmSettings(bpy.types.PropertyGroup):
    profile: StringProperty(name="Profile", search=_search_profiles,
                            description="Profile of the rayfarm command line (empty: the server and keys in the "
                                        "add-on's preferences, else the default profile)")
    frames: StringProperty(name="Frames", description="Frames like 1-100, 1-100[2] or 1,5,10-20 "
                                                      "(empty: the scene's range)")
    chunk: IntProperty(name="Chunk size", default=1, min=1, max=10000,
                       description="Frames per chunk: a node renders a chunk at once")
    priority: IntProperty(name="Priority", default=50, min=0, max=100, description="0-100; higher renders first")
    priority_frames: StringProperty(name="Priority frames",
                                    description="Render these first: three 0/1 flags for the first, middle and last "
                                                "frame (e.g. 100), optionally with :FRAMES (000:1,50)")
    pause_after_priority: BoolProperty(name="Pause after them",
                                       description="Pause after the priority frames until the task is set to full speed")
    limit: IntProperty(name="Node limit", default=0, min=0, description="Most nodes rendering it at once (0: no limit)")
    camera: StringProperty(name="Camera", search=_search_cameras, description="Camera to render through "
                                                                             "(empty: the scene's)")
    labels: StringProperty(name="Labels", description="Task labels, separated by commas")
    project: StringProperty(name="Project", description="Project name")
    last_task_id: IntProperty(name="Last task", default=0, description="The task the last submission created")
    last_dashboard: StringProperty(name="Dashboard", description="The last task's page on the farm's dashboard")
    status: StringProperty(name="Status", description="What the last submission said last")


def _settings(scene) -> command.Settings:
    s = scene.rayfarm
    return command.Settings(frames=s.frames.strip() or scene_frames(scene), chunk=s.chunk, priority=s.priority,
                            priority_frames=s.priority_frames, pause_after_priority=s.pause_after_priority,
                            limit=s.limit, camera=s.camera, labels=s.labels, project=s.project, profile=s.profile)


def _redraw(context) -> None:
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "PROPERTIES":
                area.tag_redraw()


class RAYFARM_OT_submit(bpy.types.Operator):
    """Save the file if needed, upload it and the files it uses, and submit it to the farm"""

    bl_idname = "rayfarm.submit"
    bl_label = "Submit to rayfarm"

    _timer = None
    _scene = ""

    @classmethod
    def poll(cls, context):
        if _running():
            cls.poll_message_set("A submission is still running.")
            return False
        return context.scene is not None

    def execute(self, context):
        """Scripts and background Blender: block until the task is submitted (progress on the console)."""
        job = self._start(context, echo=lambda line: print(f"rayfarm: {line}", flush=True))
        if job is None:
            return {"CANCELLED"}
        job.wait()
        return self._end(job)

    def invoke(self, context, event):
        if bpy.app.background:
            return self.execute(context)
        if self._start(context) is None:
            return {"CANCELLED"}
        self._timer = context.window_manager.event_timer_add(0.2, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        scene = bpy.data.scenes.get(self._scene)
        if scene is not None and scene.rayfarm.status != _job.status:
            scene.rayfarm.status = _job.status
            _redraw(context)
        if not _job.done:
            return {"PASS_THROUGH"}
        context.window_manager.event_timer_remove(self._timer)
        outcome = self._end(_job)
        _redraw(context)
        return outcome

    def _start(self, context, echo=None):
        global _job
        if not bpy.data.filepath:
            self.report({"ERROR"}, "Save the .blend file first (File > Save As): the farm renders a saved file.")
            return None
        try:
            rayfarm = _rayfarm(context)
        except command.SetupError as exc:
            self.report({"ERROR"}, str(exc))
            return None
        if bpy.data.is_dirty:
            try:
                bpy.ops.wm.save_mainfile()
            except RuntimeError as exc:
                self.report({"ERROR"}, f"Could not save {bpy.data.filepath} before submitting it: {exc}")
                return None
        scene = context.scene
        prefs = preferences(context)
        argv = command.submit_argv(rayfarm, bpy.data.filepath, _settings(scene), blender=bpy.app.binary_path)
        env = command.credentials_env(prefs.server, prefs.access_id, prefs.access_key)
        self._scene = scene.name
        scene.rayfarm.status = "Starting rayfarm..."
        _job = command.Submission(argv, env).start(echo)
        return _job

    def _end(self, job):
        scene = bpy.data.scenes.get(self._scene)
        if job.error:
            if scene is not None:
                scene.rayfarm.status = job.error.splitlines()[0]
            self.report({"ERROR"}, job.error)
            return {"CANCELLED"}
        task_id = int(job.result["taskId"])
        link = str(job.result.get("dashboard") or "")
        if scene is not None:
            scene.rayfarm.last_task_id = task_id
            scene.rayfarm.last_dashboard = link
            scene.rayfarm.status = f"Submitted task {task_id}, frames {job.result.get('frames', '')}"
        self.report({"INFO"}, f"Submitted task {task_id} to the farm: {link}")
        return {"FINISHED"}


class RAYFARM_OT_cancel(bpy.types.Operator):
    """Stop the running submission (a task it already created stays on the farm)"""

    bl_idname = "rayfarm.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return _running()

    def execute(self, context):
        _job.cancel()
        return {"FINISHED"}


class RAYFARM_PT_submit(bpy.types.Panel):
    bl_label = "rayfarm"
    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "output"

    def draw(self, context):
        scene = context.scene
        s = scene.rayfarm
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        layout.prop(s, "profile", icon="WORLD")
        col = layout.column()
        col.prop(s, "frames")
        if not s.frames.strip():
            col.label(text=f"The scene's frames: {scene_frames(scene)}")
        col.prop(s, "chunk")
        col.prop(s, "priority")
        col.prop(s, "priority_frames")
        row = col.row()
        row.active = bool(s.priority_frames.strip())
        row.prop(s, "pause_after_priority")
        col.prop(s, "limit")
        col.prop(s, "camera", icon="CAMERA_DATA")
        col.prop(s, "labels")
        col.prop(s, "project")
        if _running():
            row = layout.row()
            row.label(text=_job.status, icon="SORTTIME")
            row.operator("rayfarm.cancel", icon="CANCEL")
        else:
            row = layout.row()
            row.scale_y = 1.4
            row.operator("rayfarm.submit", icon="EXPORT")
            if s.status:
                layout.label(text=s.status)
        if s.last_task_id:
            row = layout.row()
            row.label(text=f"Last task: {s.last_task_id}")
            if s.last_dashboard:
                row.operator("wm.url_open", text="Dashboard", icon="URL").url = s.last_dashboard


CLASSES = (RayfarmPreferences, RayfarmSettings, RAYFARM_OT_submit, RAYFARM_OT_cancel, RAYFARM_PT_submit)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.rayfarm = PointerProperty(type=RayfarmSettings)


def unregister():
    if _running():
        _job.cancel()
    del bpy.types.Scene.rayfarm
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
