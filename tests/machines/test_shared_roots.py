"""A studio with NFS: the server reads scenes under its --shared-root, and a node that mounts the same share at
another path maps it (--map-root SERVER_PATH=LOCAL_PATH) and reads the scene and its neighbours in place there,
confined. Here the node's "mount" is a second folder whose files say which side they are on."""

import json

from rayfarm.sdk import RayfarmAPI
from tests.support.processes import FarmServer, free_port, wait_for

READ = ['sh', '-c', 'cat "$1" "$(dirname "$1")/tex.txt" > "$2/seen.txt"', 'sh', '{scene}', '{output}']


def test_a_node_reads_a_shared_scene_at_its_own_mount_point(tmp_path):
    server_side, node_side = tmp_path / "srv" / "projects", tmp_path / "mnt" / "projects"
    for root, side in ((server_side, "server"), (node_side, "node")):
        (root / "shot").mkdir(parents=True)
        (root / "shot" / "scene.txt").write_text(f"scene as the {side} mounts it\n")
        (root / "shot" / "tex.txt").write_text(f"texture as the {side} mounts it\n")
    farm = FarmServer(tmp_path / "farm", free_port(), extra_args=["--shared-root", str(server_side)])
    farm.data_dir.mkdir()
    farm.start()
    try:
        user = farm.create_user("nfs", "--allow-commands")
        api = RayfarmAPI(user.access_id, user.access_key, domain=farm.domain)
        node = farm.start_worker("nfs-node", "--map-root", f"{server_side}={node_side}")
        task_id = api.task.create_task()["taskIdList"][0]
        api.task.upload_task_json(task_id, {
            "software_config": {"cg_name": "command", "cg_version": "", "plugins": {}},
            "task_info": {"input_cg_file": str(server_side / "shot" / "scene.txt"), "frames_per_task": "1"},
            "scene_info": {"common": {"frames": "1"}}, "additional_info": {"command": READ}})
        api.task.submit_task(task_id)
        wait_for(lambda: api.query.task_info([task_id])["items"][0]["taskStatus"] in (25, 30, 45), 60, "the render",
                 details=lambda: node.log() + farm.log()[-2000:])
        info = api.query.task_info([task_id])["items"][0]
        assert info["taskStatus"] == 25, json.dumps(api.query.task_frames(task_id)["items"])
        [entry] = [e for e in api.files.output_files(task_id) if not e["directory"]]
        seen = api.files.download_file(entry["filePath"], tmp_path / "seen.txt").read_text()
        assert seen == "scene as the node mounts it\ntexture as the node mounts it\n"
        assert "downloaded scene" not in node.log()  # read in place at the node's mount, not through the API
        assert "(confined)" in node.log()
    finally:
        farm.stop()
