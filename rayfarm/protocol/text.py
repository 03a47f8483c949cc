"""Text a database can store and a path can hold: no NUL character, no lone surrogate."""


def unstorable(text: str) -> bool:
    """A NUL character, or a lone surrogate (from a "\\ud800" JSON escape): no database stores it."""
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
