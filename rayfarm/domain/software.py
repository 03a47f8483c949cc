"""Software versions: which version a node offers matches which version a task (or a render environment) asks for.

Pure rules, shared by submit (a version no node has is refused) and the software lists the API answers.
"""

import re
from collections.abc import Iterable

from rayfarm.protocol.codes import ApiError, Code


def _parts(version: str) -> list[str]:
    return [part for part in re.split(r"[.\s]+", version.strip().lower()) if part]


def matches(asked: str, offered: str) -> bool:
    """Whether a node offering ``offered`` renders what ``asked`` names: the numbers of ``asked`` are the first
    numbers of ``offered``, so "3.4" matches "3.4" and "3.4.1" but not "3.41", "3.5" or "3"; "3" matches every
    3.x. An empty ``asked`` matches any version. Case and surrounding spaces do not count."""
    wanted = _parts(asked)
    return _parts(offered)[:len(wanted)] == wanted


def known_to_no_node(asked: str, offered: Iterable[str]) -> bool:
    """Whether ``asked`` is a version that none of the registered nodes' versions (``offered``, one per node that
    offers the software) matches. Never true when no node offers the software at all (nodes may register after
    the task is submitted), when a node offers it with an unknown version (""), or when nothing is asked."""
    versions = list(offered)
    if not _parts(asked) or not versions or any(not _parts(v) for v in versions):
        return False
    return not any(matches(asked, v) for v in versions)


def refuse_unknown_version(name: str, asked: str, offered: Iterable[str]) -> None:
    """600 naming the versions nodes have, when :func:`known_to_no_node`."""
    versions = sorted(set(offered))
    if known_to_no_node(asked, versions):
        have = ", ".join(versions[:10]) + (f" (and {len(versions) - 10} more)" if len(versions) > 10 else "")
        raise ApiError(Code.INVALID_PARAMETER,
                       f"task.json asks for {name} {asked[:40]}, which no render node of this farm has (nodes have "
                       f"{name} {have}); set software_config.cg_version to one of those, or leave it empty to "
                       f"render with any version.")
