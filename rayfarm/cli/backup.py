"""`rayfarm backup DIR` and `rayfarm restore DIR`: a farm's database, files and secret, out and back in.

A backup folder holds ``backup.json`` (what is in it), the database (``database.sqlite`` or
``database.pgdump``), ``storage/`` (every user's uploads, outputs and thumbnails), ``logs/`` (render logs)
and, unless ``--without-secret``, ``secret.key``. The secret matters: access keys and the worker token are
stored encrypted with it, so a database without its secret cannot check a single signature. A backup with
the secret is as sensitive as the farm itself (the folder is owner-only); one without it must be restored
where the same secret is (``<data dir>/secret.key`` or ``$RAYFARM_SECRET``): restore checks that before it
changes anything, against a fingerprint of the secret kept in ``backup.json``.

The backup is taken while the farm runs: the database first (one consistent snapshot), then the files (a
file written after the snapshot may be in the backup without its record: harmless). Restore into a stopped
farm, into an empty data dir and database (``--force`` replaces what is there).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import os
import shutil
from pathlib import Path
from typing import Annotated

import typer

import rayfarm
from rayfarm.cli import admin
from rayfarm.cli.session import Exit, emit, fail, out
from rayfarm.files.hashing import hash_file

FORMAT = 1
MANIFEST = "backup.json"
SECRET_FILE = "secret.key"
PRIVATE = (SECRET_FILE, "credentials.json")  # travel with the secret only
TREES = ("storage", "logs")
CHECK = b"rayfarm backup: secret fingerprint"

Folder = Annotated[Path, typer.Argument(help="The backup folder.")]
Json = Annotated[bool, typer.Option("--json", help="Print what was done as JSON.")]


def fingerprint(secret: bytes) -> str:
    """Tells whether two secrets are the same without revealing either."""
    return hmac.new(secret, CHECK, hashlib.sha256).hexdigest()


def _say(data: dict, json_out: bool, lines: list[str]) -> None:
    if json_out:
        emit(data)
        return
    for line in lines:
        out.print(line, markup=False, highlight=False, soft_wrap=True)


def backup(folder: Folder, data_dir: admin.DataDir = None, database_url: admin.DatabaseUrl = None,
           without_secret: Annotated[bool, typer.Option("--without-secret", help="Leave secret.key (and the "
                                                        "credentials of `rayfarm up`) out; keep them elsewhere.")]
           = False, json_out: Json = False) -> None:
    """Back up a farm while it runs: database, storage, render logs and (unless --without-secret) its secret."""
    settings = admin.settings(data_dir, database_url)
    from rayfarm.config import farm_secret
    from rayfarm.files.trees import copy_tree
    from rayfarm.store import backup as db_backup

    folder = folder.expanduser().resolve()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        fail(f"{folder} is not an empty folder; give a new folder for each backup.", Exit.USAGE)
    if folder == settings.data_dir or settings.data_dir in folder.parents:
        fail(f"{folder} is inside the farm's data dir; put backups somewhere else (another disk).", Exit.USAGE)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    secret = farm_secret(settings.data_dir)
    in_env = bool(os.environ.get("RAYFARM_SECRET"))
    try:
        database, counted = db_backup.dump(settings.database_url, folder)
    except db_backup.BackupError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        fail(str(exc), Exit.ERROR)
    files = {name: vars(copy_tree(settings.data_dir / name, folder / name)) for name in TREES}
    secret_state = "environment" if in_env else "left out" if without_secret else "included"
    if secret_state == "included":
        for name in PRIVATE:
            if (settings.data_dir / name).is_file():
                shutil.copy2(settings.data_dir / name, folder / name)
                os.chmod(folder / name, 0o600)
    manifest = {"format": FORMAT, "rayfarm": rayfarm.__version__,
                "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "database": db_backup.kind_of(settings.database_url), "databaseFile": database,
                "databaseSha256": hash_file(folder / database),
                "counts": counted, "files": files, "secret": secret_state, "secretFingerprint": fingerprint(secret),
                "dataDir": str(settings.data_dir)}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    where = {"included": f"the secret is in {folder / SECRET_FILE}: keep this backup as safe as the farm",
             "left out": "the secret is NOT in it: keep a copy of secret.key; a restore needs it",
             "environment": "the secret comes from $RAYFARM_SECRET: keep that value; a restore needs it"}[secret_state]
    _say(manifest, json_out, [f"Backed up {counted['tasks']} task(s) of {counted['users']} user(s) and "
                              f"{files['storage']['files']} stored file(s) into {folder}; {where}."])


def _secret_for(folder: Path, manifest: dict, data_dir: Path, force: bool) -> bytes | None:
    """The secret the restored farm will use, checked against the backup's fingerprint; None when it is the
    one already in place (environment or data dir). Exits with a sentence when there is no right one."""
    wanted = manifest.get("secretFingerprint")
    env = os.environ.get("RAYFARM_SECRET")
    here = data_dir / SECRET_FILE
    present = env.encode() if env else (here.read_bytes().strip() if here.is_file() else None)
    if (folder / SECRET_FILE).is_file():
        carried = (folder / SECRET_FILE).read_bytes().strip()
        if fingerprint(carried) != wanted:
            fail(f"{folder / SECRET_FILE} is not the secret this backup was made with; the backup is damaged.",
                 Exit.ERROR)
        if env and present != carried:
            fail("$RAYFARM_SECRET is set to another secret than this backup's: unset it (the backup's secret.key is "
                 "restored into the data dir) or set it to the backup's secret.", Exit.USAGE)
        if here.is_file() and present != carried and not env and not force:
            fail(f"{here} holds another farm's secret; restore into an empty data dir, or add --force to replace it.",
                 Exit.USAGE)
        return carried
    if present is None:
        fail(f"This backup was made without its secret key: put the farm's secret.key into {data_dir} (owner-only, "
             f"chmod 600) or set $RAYFARM_SECRET to it, then run restore again. Access keys and the worker token "
             f"are encrypted with it.", Exit.USAGE)
    if fingerprint(present) != wanted:
        source = "$RAYFARM_SECRET" if env else str(here)
        fail(f"The secret in {source} is not the one this backup was made with, so the restored farm could not read "
             f"its access keys: put the farm's own secret.key into {data_dir} (or set $RAYFARM_SECRET), then run "
             f"restore again.", Exit.USAGE)
    return None


def restore(folder: Folder, data_dir: admin.DataDir = None, database_url: admin.DatabaseUrl = None,
            force: Annotated[bool, typer.Option("--force", help="Replace the database, files and secret already "
                                                "in the data dir and database.")] = False,
            json_out: Json = False) -> None:
    """Restore a backup into a stopped farm: an empty data dir and database (or --force)."""
    settings = admin.settings(data_dir, database_url)
    from rayfarm.files.trees import copy_tree, holds_files
    from rayfarm.store import backup as db_backup
    from rayfarm.store.db import Database

    folder = folder.expanduser().resolve()
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        fail(f"{folder} is not a rayfarm backup ({MANIFEST}: {exc}).", Exit.USAGE)
    if manifest.get("format") != FORMAT:
        fail(f"{folder} was written by a rayfarm this version cannot read (format {manifest.get('format')}).",
             Exit.USAGE)
    dump = folder / manifest["databaseFile"]
    if not dump.is_file() or hash_file(dump) != manifest.get("databaseSha256"):
        fail(f"The database copy {dump} is missing or damaged (its sha256 differs from {MANIFEST}).", Exit.ERROR)
    occupied = [str(settings.data_dir / name) for name in TREES if holds_files(settings.data_dir / name)]
    if not db_backup.is_empty(settings.database_url):
        occupied.append("its database")
    if occupied and not force:
        fail(f"The farm here is not empty ({', '.join(occupied)}): restore into a new data dir and database, or add "
             f"--force to replace them (stop the server first).", Exit.USAGE)
    secret = _secret_for(folder, manifest, settings.data_dir, force)
    try:
        db_backup.load(settings.database_url, dump, replace=force)
    except db_backup.BackupError as exc:
        fail(str(exc), Exit.ERROR)
    files = {}
    for name in TREES:
        if force:
            shutil.rmtree(settings.data_dir / name, ignore_errors=True)
        files[name] = vars(copy_tree(folder / name, settings.data_dir / name))
    if secret is not None:
        for name in PRIVATE:
            if (folder / name).is_file():
                shutil.copy2(folder / name, settings.data_dir / name)
                os.chmod(settings.data_dir / name, 0o600)
    Database(settings.database_url).migrate()  # a backup of an older rayfarm gets this version's schema
    counted = db_backup.counts(settings.database_url)
    if counted != manifest.get("counts"):
        fail(f"The restored database holds {counted}, the backup says {manifest.get('counts')}.", Exit.ERROR)
    _say({"restored": counted, "files": files, "dataDir": str(settings.data_dir)}, json_out,
         [f"Restored {counted['tasks']} task(s) of {counted['users']} user(s) and {files['storage']['files']} "
          f"stored file(s) into {settings.data_dir}. Start the server there; nodes rejoin with the same token."])
