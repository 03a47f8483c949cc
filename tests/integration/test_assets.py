"""A scene whose texture is a separate file: uploaded with upload.json, fetched by the node next to the scene."""

import json

from PIL import Image

from rayfarm.sdk import RayfarmAPI
from tests.support import taskjson
from tests.support.blender import make_textured_scene
from tests.support.fake_node import Node
from tests.support.processes import rayfarm
from tests.support.tasks import FINISHED, wait_task


def test_texture_listed_in_upload_json_reaches_the_node(farm, tmp_path):
    user = farm.create_user("assets")
    scene, texture = make_textured_scene(tmp_path / "proj" / "shot.blend")
    api = RayfarmAPI(user.access_id, user.access_key, domain=farm.domain)
    upload_json = {"asset": [{"local": "D:/proj/shot.blend", "server": "/D/proj/shot.blend"},
                             {"local": "D:/proj/tex/flat.png", "server": "/D/proj/tex/flat.png"}]}
    api.files.upload(scene, "D:/proj/shot.blend")
    task_id = api.task.task_id
    task_json = taskjson.blender("D:/proj/shot.blend", "1", common={"width": "64", "height": "64"})
    api.task.upload_task_json(task_id, task_json)
    api.task.upload_task_json(task_id, json.dumps(upload_json), file_name="upload.json")
    try:  # the texture is not on the farm yet: refused, naming it
        api.task.submit_task(task_id)
        raise AssertionError("submit must refuse a task whose assets are missing")
    except Exception as exc:  # noqa: BLE001 - the SDK's API error
        assert getattr(exc, "code", None) == 600 and "/D/proj/tex/flat.png" in str(exc)
    api.files.upload(texture, "D:/proj/tex/flat.png")
    api.task.submit_task(task_id)
    farm.start_worker("texnode")
    assert wait_task(farm, api, task_id, FINISHED)["taskStatus"] == 25
    [entry] = [e for e in api.files.output_files(task_id) if not e["directory"]]
    image = Image.open(api.files.download_file(entry["filePath"], tmp_path / "out.png")).convert("RGB")
    red, green, blue = image.getpixel((32, 32))
    assert green > 120 and red < 60 and blue < 60, (red, green, blue)  # the texture, not Blender's missing pink


def test_official_upload_json_with_posix_paths_and_a_folder_entry(farm, tmp_path):
    """upload.json as append_to_upload writes it on Linux (server without its leading "/", a folder as one
    entry): `rayfarm upload --upload-json` uploads it, and a task listing it gets every file under the folder."""
    user = farm.create_user("posix", "--allow-commands")
    scene = tmp_path / "proj" / "scene.txt"
    (tmp_path / "proj" / "tex" / "sub").mkdir(parents=True)
    scene.write_text("scene")
    (tmp_path / "proj" / "tex" / "a.png").write_bytes(b"a")
    (tmp_path / "proj" / "tex" / "sub" / "b.png").write_bytes(b"b")
    official = {"asset": [{"local": str(path), "server": str(path)[1:]} for path in (scene, tmp_path / "proj" / "tex")]}
    (tmp_path / "upload.json").write_text(json.dumps(official))
    env = {"RAYFARM_SERVER": farm.url, "RAYFARM_ACCESS_ID": user.access_id, "RAYFARM_ACCESS_KEY": user.access_key,
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    done = rayfarm("upload", "--upload-json", str(tmp_path / "upload.json"), env=env, check=False)
    assert done.returncode == 0, done.stderr
    stored = farm.data_dir / "storage" / str(user.user_id) / "input"
    for path in (scene, tmp_path / "proj" / "tex" / "a.png", tmp_path / "proj" / "tex" / "sub" / "b.png"):
        assert (stored / str(path).lstrip("/")).read_bytes() == path.read_bytes()

    api = RayfarmAPI(user.access_id, user.access_key, domain=farm.domain)
    task_id = api.task.task_id
    task_json = {"software_config": {"cg_name": "command"}, "task_info": {"input_cg_file": str(scene)},
                 "scene_info_render": {"common": {"frames": "1"}}, "additional_info": {"command": ["true", "{scene}"]}}
    api.task.upload_task_json(task_id, json.dumps(task_json))
    api.task.upload_task_json(task_id, json.dumps(official), file_name="upload.json")
    api.task.submit_task(task_id)
    node = Node(farm, "posix-node", {"command": ""})
    try:
        (lease,) = node.lease()
    finally:
        node.close()
    assert lease["taskId"] == task_id and lease["render"]["scene"] == str(scene)
    assert [item["path"] for item in lease["inputs"]] == [str(tmp_path / "proj" / "tex" / "a.png"),
                                                          str(tmp_path / "proj" / "tex" / "sub" / "b.png")]
