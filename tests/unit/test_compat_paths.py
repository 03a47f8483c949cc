"""Paths of the rayvision_sync drop-in: the official upload.json form, where rayfarm keeps each entry,
where downloads land; and cutting_upload."""

import json
import os

import pytest

from rayfarm.compat.rayvision_sync import RayvisionError, cutting_upload
from rayfarm.compat.rayvision_sync.paths import convert_path, join_target, local_file, storage_target
from rayfarm.domain.paths import to_storage_path


@pytest.mark.parametrize(("local", "server"), [
    ("D:/proj/a.blend", "/D/proj/a.blend"),
    ("D:\\proj\\a.blend", "/D/proj/a.blend"),
    ("d:/proj/a.blend", "/d/proj/a.blend"),
    ("/home/u/a.blend", "home/u/a.blend"),
    ("\\\\nas\\share\\a.blend", "/nas/share/a.blend"),
    ("rel/a.blend", "el/a.blend"),
])
def test_convert_path_is_the_official_sdks(local, server):
    assert convert_path(local) == server  # spec renderbus-workflow.md section 4


@pytest.mark.parametrize(("local", "expected"), [
    ("D:/proj/a.blend", "/D/proj/a.blend"),
    ("D:\\proj\\a.blend", "/D/proj/a.blend"),
    ("d:/proj/a.blend", "/D/proj/a.blend"),  # where task.json's input_cg_file "d:/proj/a.blend" is looked up
    ("/home/u/a.blend", "/home/u/a.blend"),
    ("\\\\nas\\share\\a.blend", "/nas/share/a.blend"),
])
def test_official_entries_land_where_task_json_names_the_same_local_path(local, expected):
    target = storage_target(local, convert_path(local))
    assert to_storage_path(target) == expected == to_storage_path(local)


def test_entries_without_server_and_hand_written_server_paths():
    assert storage_target("/home/u/a.blend") == "/home/u/a.blend"
    assert storage_target("D:/p/a.blend", None) == "D:/p/a.blend"
    assert storage_target("/home/u/a.blend", "/E/shared/a.blend") == "/E/shared/a.blend"  # honoured as written
    assert storage_target("/home/u/a.blend", "E/shared/a.blend") == "/E/shared/a.blend"  # the missing "/" added
    assert storage_target("/home/u/a.blend", "/home/u/a.blend") == "/home/u/a.blend"


def test_relative_local_paths_are_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert storage_target("rel/a.blend", "el/a.blend") == os.path.join(str(tmp_path), "rel", "a.blend")


def test_folder_entries_join_their_files():
    assert join_target("D:\\tex\\", os.path.join("sub", "b.png")) == "D:/tex/sub/b.png"
    assert join_target("/home/u/tex", "a.png") == "/home/u/tex/a.png"


def test_downloads_stay_inside_the_local_folder(tmp_path):
    assert local_file(str(tmp_path), "/12_shot/a.png") == os.path.join(str(tmp_path), "12_shot", "a.png")
    assert local_file(str(tmp_path), "12_shot\\sub\\./b.png") == os.path.join(str(tmp_path), "12_shot", "sub", "b.png")
    for bad in ("../a.png", "12_shot/../../a.png", "", "/", "./"):
        with pytest.raises(ValueError):
            local_file(str(tmp_path), bad)


def test_cutting_upload_splits_like_the_official_package(tmp_path):
    upload = tmp_path / "upload.json"
    assets = [{"local": f"D:/a/{n}.png", "server": f"/D/a/{n}.png"} for n in range(4)]
    upload.write_text(json.dumps({"asset": assets}))
    assert cutting_upload(str(upload)) == [str(upload)]
    assert cutting_upload(str(upload), 4) == [str(upload)]
    pool = cutting_upload(str(upload), 2, str(tmp_path / "not-there"))
    assert pool == [str(tmp_path / f"upload_{n}.json") for n in (1, 2, 3)]
    chunks = [json.loads(open(path, encoding="utf-8").read())["asset"] for path in pool]
    assert chunks == [assets[:2], assets[2:], []]  # the official range() leaves a last, empty file
    with pytest.raises(RayvisionError) as caught:
        cutting_upload(str(tmp_path / "missing.json"), 2)
    assert caught.value.error_code == 200001
