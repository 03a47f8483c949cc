"""Secrets at rest: a copied database alone does not give the access keys or the worker token; the data dir,
the farm secret, the users' storage and credential files are owner-only; no key reaches a log or an answer.

(HMAC request signing needs each user's key on the server, so keys cannot be hashed: they are encrypted
with the farm secret, kept outside the database — docs/design.md, invariant 11. tests/store/test_secrets.py
checks the store functions; this module checks a running farm.)
"""

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from rayfarm.cli.up import _credentials
from rayfarm.config import Settings, data_dir, farm_secret
from rayfarm.files.storage import Storage
from rayfarm.server.farm import Farm
from rayfarm.store.db import sqlite_url
from rayfarm.store.users import KeyBox
from tests.support.databases import on_postgres
from tests.support.farms import make_users
from tests.support.signed import Raw
from tests.support.snapshots import db_snapshot


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def keys(farm):
    users = make_users(farm, "sam", "sue")
    for user in users:  # signed calls, good and bad, and an upload: keys pass through the server
        raw = Raw(farm, user)
        assert raw.call("/api/render/setUp/queryUserProfile", {})["code"] == 200
        assert raw.call("/api/render/setUp/queryUserProfile", {}, key=user.access_key[::-1])["code"] == 611
        content = user.name.encode()
        answer = raw.call("/api/rayfarm/file/uploadInit", {"localPath": "D:/s/a.txt", "size": len(content),
                                                           "sha256": hashlib.sha256(content).hexdigest()})
        assert raw.client.put(farm.url + answer["data"]["url"] + "?offset=0", content=content).json()["done"]
        raw.close()
    return users


def secrets_of(farm, users) -> list[str]:
    return [user.access_key for user in users] + [farm.worker_token()]


def test_a_copied_database_holds_no_key_in_clear(farm, keys):
    keys = secrets_of(farm, keys)
    rows = json.dumps(db_snapshot(farm))
    for key in keys:
        assert key not in rows
    if not on_postgres():
        for name in ("rayfarm.db", "rayfarm.db-wal"):
            path = farm.data_dir / name
            if path.exists():
                content = path.read_bytes()
                assert not any(key.encode() in content for key in keys), name


def test_the_database_without_the_farm_secret_does_not_open(farm, keys):
    stolen = Farm(Settings(data_dir=farm.data_dir, database_url=farm.database_url))
    stolen.keys = KeyBox(Fernet.generate_key())  # the copied database, and any other secret
    try:
        with stolen.db.read() as conn:
            sealed = conn.exec_driver_sql("SELECT access_key FROM users").scalars().all()
        assert sealed
        for value in sealed:
            with pytest.raises(RuntimeError, match="cannot be decrypted"):
                stolen.keys.open(value)
    finally:
        stolen.db.dispose()


def test_no_key_in_the_server_log(farm, keys):
    log = farm.log()
    for key in secrets_of(farm, keys):
        assert key not in log


def test_running_farm_files_are_owner_only(farm, keys):
    assert mode(farm.data_dir / "secret.key") == 0o600
    for user in keys:  # folders the server made for the uploads above
        home = farm.data_dir / "storage" / str(user.user_id)
        folders = [home, home / "input", home / "cas", home / "uploads"]
        assert all(mode(p) == 0o700 for p in folders), {str(p): oct(mode(p)) for p in folders}


def test_a_new_data_dir_secret_storage_and_credentials_are_owner_only(tmp_path, monkeypatch):
    monkeypatch.delenv("RAYFARM_SECRET", raising=False)
    old = os.umask(0o022)  # a usual umask: without care files would be world-readable
    try:
        folder = data_dir(tmp_path / "new" / "rayfarm")
        assert mode(folder) == 0o700
        farm_secret(folder)
        assert mode(folder / "secret.key") == 0o600
        storage = Storage(folder / "storage")
        for kind in ("input", "output", "thumbnails", "cas", "uploads"):
            path = storage.user_dir(7, kind)
            assert mode(path) == mode(path.parent) == mode(path.parent.parent) == 0o700
        settings = Settings(data_dir=folder, database_url=sqlite_url(folder))
        farm = Farm(settings)
        farm.db.migrate()
        credentials = _credentials(farm, settings)  # what `rayfarm up` writes
        farm.db.dispose()
        assert mode(folder / "credentials.json") == 0o600
        assert json.loads((folder / "credentials.json").read_text())["accessKey"] == credentials["accessKey"]
        assert credentials["accessKey"].encode() not in (folder / "rayfarm.db").read_bytes()
    finally:
        os.umask(old)
