"""Shared roots mounted elsewhere on this node: ``--map-root SERVER_PATH=LOCAL_PATH``.

A scene under one of the server's ``--shared-root`` folders is read in place by the nodes that mount that
folder; a lease names it by the server's path (``scene.path``, under ``scene.root``). A node that mounts the
same share at another path (a Linux node with the studio's NFS at /mnt/projects while the server has it at
/srv/projects) maps the server's path onto its own, and then reads the scene there. Without a mapping, or
when the mapped file is not there, the node downloads the scene through the API as usual.
"""

from __future__ import annotations

import copy
import posixpath
from collections.abc import Sequence
from typing import Any


def _clean(path: str) -> str:
    return posixpath.normpath(path.strip()).rstrip("/") or "/"


def parse_map(texts: Sequence[str]) -> list[tuple[str, str]]:
    """``["SERVER=LOCAL", ...]`` as (server root, local root) pairs, longest server root first; ValueError
    with a sentence for a malformed one."""
    pairs = []
    for text in texts:
        server, sep, local = text.partition("=")
        if not sep or not server.strip().startswith("/") or not local.strip().startswith("/"):
            raise ValueError(f"--map-root {text!r} is not SERVER_PATH=LOCAL_PATH with two absolute paths, "
                             f"e.g. /srv/projects=/mnt/projects.")
        pairs.append((_clean(server), _clean(local)))
    return sorted(pairs, key=lambda pair: len(pair[0]), reverse=True)


def map_path(path: str, pairs: Sequence[tuple[str, str]]) -> str | None:
    """The local path of a server path under one of the mapped roots, else None."""
    clean = _clean(path)
    for server, local in pairs:
        if clean == server:
            return local
        if clean.startswith(server.rstrip("/") + "/"):
            return posixpath.join(local, clean[len(server.rstrip("/")) + 1:])
    return None


def map_lease(lease: dict[str, Any], pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The lease as this node sees it: a shared scene's path and root on this node's mount (a copy; the
    lease is returned as it is when nothing maps)."""
    scene = lease.get("scene") or {}
    path = scene.get("path")
    if not pairs or not path:
        return lease
    local = map_path(str(path), pairs)
    if local is None:
        return lease
    mapped = copy.deepcopy(lease)
    mapped["scene"]["path"] = local
    root = scene.get("root")
    mapped["scene"]["root"] = map_path(str(root), pairs) if root else None
    return mapped
