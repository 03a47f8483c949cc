"""Secrets at rest: access keys are not in the database in clear; secret and credential files are owner-only."""

import stat

from rayfarm.config import write_private
from rayfarm.store import users as users_store
from tests.support.farms import make_farm


def test_access_key_is_not_stored_in_clear(tmp_path):
    farm = make_farm(tmp_path)
    with farm.db.write() as conn:
        user, key = users_store.create(conn, farm.keys, "alice")
    with farm.db.read() as conn:
        stored = conn.scalar(users_store.users.select().with_only_columns(users_store.users.c.access_key))
        found = users_store.by_access_id(conn, farm.keys, user.access_id)
    assert key not in stored and stored != key
    assert found[1] == key  # the server can still sign-check with it
    if farm.db.is_sqlite:
        assert key.encode() not in (tmp_path / "rayfarm.db").read_bytes()


def test_secret_and_credentials_are_owner_only(tmp_path):
    make_farm(tmp_path)
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600
    write_private(tmp_path / "credentials.json", "{}")
    assert stat.S_IMODE((tmp_path / "credentials.json").stat().st_mode) == 0o600


def test_rotated_key_replaces_the_old_one(tmp_path):
    farm = make_farm(tmp_path)
    with farm.db.write() as conn:
        user, old = users_store.create(conn, farm.keys, "bob")
        _, new = users_store.rotate_key(conn, farm.keys, "bob")
        assert users_store.by_access_id(conn, farm.keys, user.access_id)[1] == new != old
