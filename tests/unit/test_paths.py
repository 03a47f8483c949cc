"""Mapping users' local paths onto farm storage, and output directory names."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rayfarm.domain.paths import output_name, render_file_name, safe_file_name, scene_name, to_storage_path
from rayfarm.protocol.codes import ApiError


@pytest.mark.parametrize("local, storage", [
    ("D:/proj/a.blend", "/D/proj/a.blend"),
    ("D:\\proj\\a.blend", "/D/proj/a.blend"),
    ("d:/proj/a.blend", "/D/proj/a.blend"),
    ("D:\\proj/sub\\a b.blend", "/D/proj/sub/a b.blend"),
    ("D:/", "/D"),
    ("\\\\server\\share\\a.blend", "/server/share/a.blend"),
    ("//server/share/a.blend", "/server/share/a.blend"),
    ("/mnt/x/a.blend", "/mnt/x/a.blend"),
    ("/mnt//x///a.blend", "/mnt/x/a.blend"),
    ("/mnt/x/", "/mnt/x"),
    ("  D:/proj/a.blend  ", "/D/proj/a.blend"),
    ("D:/proj/..a/b..c/.hidden", "/D/proj/..a/b..c/.hidden"),  # dots inside names are fine
    ("D:/проект/场景.blend", "/D/проект/场景.blend"),
])
def test_to_storage_path(local, storage):
    assert to_storage_path(local) == storage


@pytest.mark.parametrize("local, fragment", [
    ("", "empty"),
    ("   ", "empty"),
    (None, "empty"),
    (12, "empty"),
    ("proj/a.blend", "not absolute"),
    ("a.blend", "not absolute"),
    ("D:proj/a.blend", "not absolute"),  # drive-relative
    ("~/a.blend", "not absolute"),
    ("../a.blend", "not absolute"),
    ("/mnt/../etc/passwd", "'.' or '..'"),
    ("D:/proj/../a.blend", "'.' or '..'"),
    ("D:\\proj\\..\\..\\a.blend", "'.' or '..'"),
    ("/mnt/./a.blend", "'.' or '..'"),
    ("/..", "'.' or '..'"),
    ("\\\\server\\..\\a", "'.' or '..'"),
    ("/mnt/x\x00.blend", "NUL"),
    ("/" + "a" * 5000, "too long"),
])
def test_to_storage_path_refused(local, fragment):
    with pytest.raises(ApiError) as info:
        to_storage_path(local)
    assert info.value.code == 600
    assert fragment in info.value.message


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(alphabet=st.sampled_from(list("ab./\\:D ~\x00")), max_size=30))
def test_to_storage_path_never_escapes(local):
    try:
        mapped = to_storage_path(local)
    except ApiError as exc:
        assert exc.code == 600
        return
    assert mapped.startswith("/")
    parts = mapped.split("/")[1:]
    assert all(part not in ("", ".", "..") for part in parts) or mapped == "/"
    assert "\\" not in mapped and "\x00" not in mapped


@pytest.mark.parametrize("local, name", [
    ("D:/p/shot 1.blend", "shot 1.blend"),
    ("D:\\p\\shot.blend", "shot.blend"),
    ("/mnt/x/", "x"),
    ("a.blend", "a.blend"),
])
def test_scene_name(local, name):
    assert scene_name(local) == name


@pytest.mark.parametrize("task_id, scene, expected", [
    (12, "shot 1.blend", "12_shot_1"),
    (12, "a.blend", "12_a"),
    (5, "archive.tar.gz", "5_archive.tar"),
    (5, "noext", "5_noext"),
    (5, "../../etc.blend", "5_etc"),
    (5, "..", "5_scene"),
    (5, ".blend", "5_scene"),
    (5, "", "5_scene"),
    (5, "a/b\\c:d.blend", "5_a_b_c_d"),
    (5, "场景.blend", "5_scene"),
    (5, "x" * 300 + ".blend", "5_" + "x" * 100),
])
def test_output_name(task_id, scene, expected):
    assert output_name(task_id, scene) == expected


@settings(max_examples=300, deadline=None, database=None)
@given(st.integers(1, 10**9), st.text(max_size=200))
def test_output_name_is_one_safe_directory(task_id, scene):
    name = output_name(task_id, scene)
    assert name.startswith(f"{task_id}_")
    assert re.fullmatch(r"[0-9]+_[A-Za-z0-9._-]{1,100}", name)
    assert name not in (".", "..") and "/" not in name and "\\" not in name
    assert not name.endswith(".")


@pytest.mark.parametrize(("path", "name"), [
    ("//renders/frame_", "frame_"), ("C:\\out\\beauty_###", "beauty_###"), ("####", "####"),
    ("/tmp/", ""), ("//", ""), ("", ""), ("_beauty_", "beauty_"), ("../../x_", "x_"),
    ("//r/plan élevé_", "plan _lev__"), ("//r/.hidden_", "hidden_"),
])
def test_render_file_name(path, name):
    assert render_file_name(path) == name


@given(st.text(max_size=300))
@settings(max_examples=300)
def test_a_render_file_name_makes_files_the_farm_stores(path):
    """Whatever the scene's output path, the frames a renderer names with it are plain file names the farm's
    output upload accepts (frame numbers replace the #s, an extension is added)."""
    name = render_file_name(path)
    if name:
        assert safe_file_name(name.replace("#", "0") + "0001.png") is not None, name
