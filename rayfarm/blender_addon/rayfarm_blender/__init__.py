"""rayfarm for Blender: a panel in Output properties that submits the open scene to a rayfarm render farm.

The add-on runs the `rayfarm` command line of rayfarm's own venv (`rayfarm submit FILE --json ...`) in a
child process; it never imports rayfarm into Blender's Python. Scripts use it headless:

    blender -b shot.blend --python-expr "import bpy; bpy.context.scene.rayfarm.chunk = 5; bpy.ops.rayfarm.submit()"

(in the background the operator blocks until the task is submitted; the task id is then in
``bpy.context.scene.rayfarm.last_task_id``). Submit saves a file with unsaved changes first, but a script's
own changes in background Blender do not count as unsaved: a script that changes the scene saves it
(``bpy.ops.wm.save_mainfile()``) before submitting. Install it with `rayfarm blender-addon install`.
"""

bl_info = {
    "name": "rayfarm",
    "author": "rayfarm",
    "version": (0, 1, 0),
    "blender": (3, 3, 0),
    "location": "Properties > Output > rayfarm",
    "description": "Submit the scene to a rayfarm render farm",
    "category": "Render",
}


def register():
    from . import ui  # bpy is imported there only, so that command.py can be used and tested outside Blender

    ui.register()


def unregister():
    from . import ui

    ui.unregister()
