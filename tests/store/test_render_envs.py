"""Render environments in the store and what submit does with them (rayfarm/store/render_envs.py)."""

import json

import pytest
from sqlalchemy import select

from rayfarm.protocol.codes import ApiError
from rayfarm.store import render_envs
from rayfarm.store import tasks as task_store
from rayfarm.store.schema import tasks
from tests.support.farms import make_farm, make_user, register


def env(name: str, version: str = "3.4", software: str = "blender") -> render_envs.Env:
    return render_envs.Env(name=name, cg_id=2007 if software == "blender" else 0, software=software,
                           cg_version=version, render_system=0)


def write(farm, change):
    with farm.db.write() as conn:
        return change(conn)


def submitted_version(farm, user, version: str) -> str:
    """Submit a Blender task whose task.json asks for ``version``; the version stored for its nodes."""
    content = {"software_config": {"cg_name": "Blender", "cg_version": version},
               "task_info": {"input_cg_file": "D:/proj/a.blend"}, "scene_info_render": {"common": {"frames": "1"}}}

    def run(conn):
        (task_id, _), = task_store.create(conn, user, count=1, priority=50, platform="2", out_user_id=None,
                                          task_labels=[], clone_id=None, artist=None)
        task_store.put_file(conn, user, task_id, "task.json", json.dumps(content))
        task_store.submit(conn, user, task_id, None, lambda *args: {"scene_root": None})
        return conn.scalar(select(tasks.c.render).where(tasks.c.id == task_id))["cg_version"]

    return write(farm, run)


@pytest.fixture
def farm(tmp_path):
    return make_farm(tmp_path)


def test_one_default_per_user_and_names_are_each_users_own(farm):
    alice, bob = make_user(farm), make_user(farm, "bob")
    for name in ("a", "b"):
        write(farm, lambda conn, name=name: render_envs.add(conn, alice, env(name)))
    write(farm, lambda conn: render_envs.add(conn, bob, env("a", "4.2")))  # bob's own "a"
    with pytest.raises(ApiError) as twice:
        write(farm, lambda conn: render_envs.add(conn, alice, env("a")))
    assert twice.value.code == 600
    write(farm, lambda conn: render_envs.set_default(conn, alice, "a"))
    write(farm, lambda conn: render_envs.set_default(conn, alice, "b"))
    write(farm, lambda conn: render_envs.set_default(conn, bob, "a"))
    with farm.db.read() as conn:
        assert [(r.name, bool(r.is_default)) for r in render_envs.listed(conn, alice)] == [("a", False), ("b", True)]
        assert [(r.name, r.cg_version, bool(r.is_default)) for r in render_envs.listed(conn, bob)] == [("a", "4.2", True)]
    with pytest.raises(ApiError) as gone:
        write(farm, lambda conn: render_envs.remove(conn, bob, "b"))  # alice's name: not bob's
    assert gone.value.code == 404


def test_submit_takes_the_default_version_only_for_its_software(farm):
    alice = make_user(farm)
    assert submitted_version(farm, alice, "") == ""  # no default: any version
    write(farm, lambda conn: render_envs.add(conn, alice, env("cmd", "1", software="command")))
    write(farm, lambda conn: render_envs.set_default(conn, alice, "cmd"))
    assert submitted_version(farm, alice, "") == ""  # the default is for another software
    write(farm, lambda conn: render_envs.add(conn, alice, env("shots", "3.4")))
    write(farm, lambda conn: render_envs.set_default(conn, alice, "shots"))
    assert submitted_version(farm, alice, "") == "3.4"
    assert submitted_version(farm, alice, "4.2") == "4.2"  # a version task.json names wins


def test_submit_refuses_a_version_no_node_offers_once_nodes_say_theirs(farm):
    alice = make_user(farm)
    assert submitted_version(farm, alice, "2.81") == "2.81"  # no node offers Blender yet
    register(farm, "unknown-version", software=("blender",))  # offers Blender of an unknown version ("")
    assert submitted_version(farm, alice, "2.81") == "2.81"
    with farm.db.write() as conn:
        conn.execute(render_envs.workers.update().values(software={"blender": "3.4.1"}))
    register(farm, "new", software=())
    with farm.db.write() as conn:
        conn.execute(render_envs.workers.update().where(render_envs.workers.c.name == "new")
                     .values(software={"blender": "4.2.0", "command": ""}))
    with pytest.raises(ApiError) as caught:
        submitted_version(farm, alice, "2.81")
    assert caught.value.code == 600 and "3.4.1, 4.2.0" in caught.value.message
    assert submitted_version(farm, alice, "4.2") == "4.2"
    with farm.db.read() as conn:  # the refused submit left nothing: no task submitted
        assert conn.scalar(select(tasks.c.id).where(tasks.c.submitted_at.is_(None))) is None
