"""Software versions: does a version a task asks for match the one a node offers (pure)."""


def matches(asked: str, offered: str) -> bool:
    """``"3.4"`` matches a node's ``"3.4.1"`` (and ``"3.4"``); ``"3.4.1"`` matches ``"3.4.1"`` only.

    Case-insensitive, surrounding spaces ignored; an empty version asks for nothing in particular."""
    want, have = asked.strip().lower().split("."), offered.strip().lower().split(".")
    if want == [""]:
        return True
    return have[:len(want)] == want
