"""upload.json as the official SDK's append_to_upload writes it (spec renderbus-workflow.md section 4)."""

import json

import pytest

from rayfarm.compat.rayvision_sync.paths import convert_path, storage_target
from rayfarm.domain.paths import to_storage_path
from rayfarm.domain.uploadjson import asset_paths, derived_server, upload_target
from rayfarm.protocol.codes import ApiError


def listed(*entries) -> str:
    return json.dumps({"asset": list(entries)})


def official(local: str) -> dict:
    """The entry append_to_upload writes: ``\\`` turned into ``/`` in local, server from convert_path."""
    local = local.replace("\\", "/")
    return {"local": local, "server": derived_server(local)}


@pytest.mark.parametrize("local, server", [
    ("D:/proj/a.blend", "/D/proj/a.blend"),
    ("D:\\proj\\a.blend", "/D/proj/a.blend"),
    ("d:/proj/a.blend", "/d/proj/a.blend"),
    ("/home/u/a.blend", "home/u/a.blend"),
    ("\\\\nas\\share\\a.blend", "/nas/share/a.blend"),
    ("rel/a.blend", "el/a.blend"),
])
def test_derived_server_is_the_official_sdks(local, server):
    assert derived_server(local) == server == convert_path(local)


@pytest.mark.parametrize("local, task_json_path", [
    ("/home/u/a.blend", "/home/u/a.blend"),  # POSIX: server arrives without its leading "/"
    ("D:/proj/a.blend", "D:/proj/a.blend"),
    ("d:/proj/a.blend", "D:/proj/a.blend"),  # drive letters as typed, task.json in another case
    ("D:/proj/a.blend", "d:\\proj\\a.blend"),
    ("\\\\nas\\share\\a.blend", "//nas/share/a.blend"),
])
def test_official_entries_match_the_path_task_json_names(local, task_json_path):
    assert asset_paths(listed(official(local))) == [to_storage_path(task_json_path)]


def test_the_server_side_and_the_drop_in_uploader_agree_on_every_form():
    cases = [official(p) for p in ("/home/u/a.blend", "D:/p/a.blend", "d:/p/a.blend", "//nas/s/a")]
    cases += [{"local": "D:/p/a.blend", "server": "/d/p/a.blend"}, {"local": "/home/u/a", "server": "/E/shared/a"},
              {"local": "/home/u/a", "server": "E/shared/a"}, {"local": "/home/u/a", "server": None},
              {"local": "/home/u/a", "server": "X:/elsewhere/a"}]
    for entry in cases:
        uploaded = to_storage_path(storage_target(entry["local"], entry["server"]))  # where the drop-in puts it
        assert asset_paths(listed(entry)) == [uploaded], entry


def test_hand_written_server_paths_win_with_or_without_their_slash():
    assert upload_target("/home/u/a", "/E/shared/a") == "/E/shared/a"
    assert upload_target("/home/u/a", "E/shared/a") == "/E/shared/a"
    assert asset_paths(listed({"server": "home/u/a.blend"})) == ["/home/u/a.blend"]  # no local at all
    assert asset_paths(listed({"server": "/D/proj/a.blend"})) == ["/D/proj/a.blend"]
    assert asset_paths(listed({"local": "", "server": "D:\\proj\\a.blend"})) == ["/D/proj/a.blend"]


def test_folders_duplicates_and_empty_lists():
    assert asset_paths(listed()) == []  # cutting_upload may write one
    assert asset_paths("{}") == [] and asset_paths(None) == [] and asset_paths("  ") == []
    folder = official("/home/u/tex")  # append_to_upload("/home/u/tex", ...): one entry for the folder
    assert asset_paths(listed(folder, official("/home/u/tex"), official("/home/u/a.png"))) == ["/home/u/tex", "/home/u/a.png"]


@pytest.mark.parametrize("entry, fragment", [
    (official("rel/a.blend"), "not absolute"),  # the SDK's own bug: "el/a.blend"; the farm says what is wrong
    ({"local": "/home/u/../../etc/passwd", "server": "home/u/../../etc/passwd"}, "'.' or '..'"),
    ({"server": "../../secret.key"}, "'.' or '..'"),
    ({"server": "home/../../x"}, "'.' or '..'"),
    ({"local": "D:/p/a", "server": "/D/../../x"}, "'.' or '..'"),
    ({"local": "/home/u/a", "server": "/home/u/a\x00b"}, "NUL"),
    ({"local": 5, "server": None}, "no \"local\" or \"server\""),
    ({}, "no \"local\" or \"server\""),
    ("D:/a.blend", "no \"local\" or \"server\""),
])
def test_entries_that_would_leave_the_storage_or_name_nothing_are_600(entry, fragment):
    with pytest.raises(ApiError) as info:
        asset_paths(listed(entry))
    assert info.value.code == 600 and fragment in info.value.message and "asset 0" in info.value.message
