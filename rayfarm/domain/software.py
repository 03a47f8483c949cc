"""Software versions: does a version a task asks for match the one a node offers (pure)."""


def _parts(version: str) -> list[str]:
    return [part for part in version.strip().lower().split(".")]


def matches(asked: str, offered: str) -> bool:
    """``"3.4"`` matches a node's ``"3.4.1"`` (and ``"3.4"``); ``"3.4.1"`` matches ``"3.4.1"`` only.

    Case-insensitive, surrounding spaces ignored; an empty version asks for nothing in particular."""
    want, have = _parts(asked), _parts(offered)
    if want == [""]:
        return True
    return have[:len(want)] == want


def offered_forms(version: str) -> list[str]:
    """The versions a node with ``version`` answers to, as task.json writes them: ``"3.4.1"`` → ``["3.4", "3.4.1"]``
    (the major version alone is not a version Renderbus lists); [] for an empty version."""
    parts = [part for part in version.strip().split(".") if part]
    if not parts:
        return []
    if len(parts) == 1:
        return [parts[0]]
    return [".".join(parts[:n]) for n in range(2, len(parts) + 1)]
