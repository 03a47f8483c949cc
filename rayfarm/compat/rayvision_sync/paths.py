"""Paths: where an upload.json entry goes on the farm, and where a downloaded output lands (pure string work)."""

import os
import re

_DRIVE = re.compile(r"^[A-Za-z]:(/|$)")


def convert_path(path):
    """The ``server`` value the official SDK writes for a local path (``rayvision_api.utils.convert_path``).

    ``D:\\proj\\a.blend`` → ``/D/proj/a.blend``; any other path loses its first character
    (``/home/u/a.blend`` → ``home/u/a.blend``, ``\\\\nas\\share\\a`` → ``/nas/share/a``).
    """
    text = path.replace("\\", "/")
    if text[1] == ":":
        return "/" + text.replace(":", "")
    return text[1:]


def is_absolute(path):
    """A drive path (``D:/...``), a POSIX path (``/...``) or a network path (``\\\\server\\...``)."""
    text = path.replace("\\", "/")
    return bool(_DRIVE.match(text)) or text.startswith("/")


def storage_target(local, server=None):
    """The path to announce to rayfarm's ``uploadInit`` for one upload.json entry.

    rayfarm maps that path exactly as it maps task.json's ``input_cg_file`` (``D:/p/a.blend`` → ``/D/p/a.blend``).
    So when ``server`` is missing or is just what the official SDK derives from ``local`` (see
    :func:`convert_path`), the local path itself is announced: the file then lands where task.json,
    which names the same local path, looks for it (drive letter case and POSIX paths included, which the
    derived ``server`` loses). A hand-written ``server`` path is honoured, with the leading ``/`` that
    the official form leaves out of POSIX paths. A relative local path is made absolute.
    """
    if server:
        text = server.replace("\\", "/")
        try:
            derived = convert_path(local)
        except IndexError:
            derived = None
        if not _same_as_derived(local, text, derived):
            return text if _DRIVE.match(text) or text.startswith("//") else "/" + text.lstrip("/")
    if is_absolute(local):
        return local
    return os.path.abspath(local)


def _same_as_derived(local, server, derived):
    """``server`` is what the official SDK derives from ``local`` (a drive letter may differ in case: the farm
    reads ``/d/p/a`` for ``D:/p/a`` the same way; rayfarm.domain.uploadjson holds the same rule)."""
    if derived is None:
        return False
    if server == derived:
        return True
    return (bool(_DRIVE.match(local.replace("\\", "/"))) and len(server) >= 2
            and server[:2].lower() == derived[:2].lower() and server[2:] == derived[2:])


def join_target(target, relative):
    """The target of a file found under a directory entry: ``target`` + ``/`` + its relative path."""
    return target.replace("\\", "/").rstrip("/") + "/" + relative.replace(os.sep, "/")


def local_file(root, relative):
    """``relative`` (a farm path with ``/``) placed under the folder ``root``; ValueError if it would leave it."""
    parts = [part for part in relative.replace("\\", "/").split("/") if part not in ("", ".")]
    if not parts or ".." in parts or (os.name == "nt" and any(":" in part for part in parts)):
        raise ValueError(f"{relative!r} is not a plain relative path.")
    return os.path.join(root, *parts)
