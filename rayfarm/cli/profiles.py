"""Named connection profiles in ``$XDG_CONFIG_HOME/rayfarm/config.toml`` (default ``~/.config/rayfarm/config.toml``).

The file (owner-only, 0600)::

    default = "local"

    [profiles.local]
    server = "http://127.0.0.1:8765"
    access_id = "AK..."
    access_key = "..."
    ca_cert = "/etc/rayfarm/ca.pem"     # optional: a studio CA to trust over https

It is read with :mod:`tomllib` and written with ``tomli_w`` (a tiny, well-kept writer by the author of
tomli, so values are always escaped correctly); other keys and profiles in the file are kept as they are.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomli_w

FIELDS = ("server", "access_id", "access_key", "ca_cert")


class ProfileError(Exception):
    """The config file or a profile in it cannot be used (a usage error: the user must fix it)."""


@dataclass
class Profile:
    name: str
    server: str | None = None
    access_id: str | None = None
    access_key: str | None = None
    ca_cert: str | None = None  # a CA certificate file to trust over https, besides the system's


def config_path() -> Path:
    """``$XDG_CONFIG_HOME/rayfarm/config.toml``; ``~/.config`` when the variable is unset, empty or relative."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "rayfarm" / "config.toml"


def load(path: Path | None = None) -> dict:
    """The whole config file as a dict ({} when there is none)."""
    path = path or config_path()
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"Cannot read the config file {path} ({exc}); fix its permissions or delete it.") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"The config file {path} is not valid TOML ({exc}); fix it, or delete it and run "
                           f"`rayfarm login` again.") from None
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict) or not all(isinstance(p, dict) for p in profiles.values()):
        raise ProfileError(f"In {path}, profiles must be tables like [profiles.NAME]; fix the file.")
    if "default" in data and not isinstance(data["default"], str):
        raise ProfileError(f"In {path}, `default` must be the name of a profile in quotes; fix the file.")
    return data


def default_name(data: dict) -> str | None:
    """The profile used when none is named: the file's ``default``, else one called "default"."""
    if data.get("default"):
        return data["default"]
    return "default" if "default" in data.get("profiles", {}) else None


def find(name: str | None, path: Path | None = None) -> Profile | None:
    """The profile ``name`` (or the default one when ``name`` is None).

    A profile asked for by name (--profile or $RAYFARM_PROFILE) must exist; without a name, having
    no config file or no default profile is fine (None).
    """
    path = path or config_path()
    data = load(path)
    chosen = name or default_name(data)
    if not chosen:
        return None
    entry = data.get("profiles", {}).get(chosen)
    if entry is None:
        if name is None:
            raise ProfileError(f"The default profile {chosen!r} named in {path} does not exist; "
                               f"run `rayfarm login --profile {chosen}` or change `default`.")
        known = ", ".join(sorted(data.get("profiles", {}))) or "none yet"
        raise ProfileError(f"There is no profile {chosen!r} in {path} (profiles: {known}); "
                           f"create it with `rayfarm login --profile {chosen}`.")
    values = {}
    for key in FIELDS:
        value = entry.get(key)
        if value is not None and not isinstance(value, str):
            raise ProfileError(f"In {path}, profiles.{chosen}.{key} must be a string in quotes; fix the file.")
        values[key] = value or None
    return Profile(chosen, **values)


def save(profile: Profile, *, make_default: bool | None = None, path: Path | None = None) -> Path:
    """Add or replace a profile (0600 file, 0700 folder); ``make_default`` None: only when there is no default yet."""
    path = path or config_path()
    data = load(path)
    profiles = data.setdefault("profiles", {})
    profiles[profile.name] = {key: getattr(profile, key) for key in FIELDS if getattr(profile, key)}
    if make_default or (make_default is None and not default_name(data)):
        data["default"] = profile.name
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = tomli_w.dumps(data)
    fd, temporary = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=path.parent)  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
