"""Users and their access keys.

Access keys are stored encrypted with the farm secret (Fernet): HMAC signing needs the key
itself on the server, so it cannot be hashed, but a copied database alone does not reveal it.
"""

import secrets
import string
import time
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Connection, insert, select, update

from rayfarm.protocol.codes import ApiError, Code
from rayfarm.store.schema import users

_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class User:
    id: int
    name: str
    access_id: str
    allow_commands: bool
    is_admin: bool
    disabled: bool
    email: str


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


class KeyBox:
    def __init__(self, secret: bytes):
        self._fernet = Fernet(secret)

    def seal(self, key: str) -> str:
        return self._fernet.encrypt(key.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise RuntimeError("an access key cannot be decrypted: the farm secret (secret.key or "
                               "RAYFARM_SECRET) is not the one the keys were made with") from None


def _user(row) -> User:
    return User(row.id, row.name, row.access_id, bool(row.allow_commands), bool(row.is_admin),
                bool(row.disabled), row.email or "")


def create(conn: Connection, box: KeyBox, name: str, *, allow_commands: bool = False, is_admin: bool = False,
           email: str = "") -> tuple[User, str]:
    """Create a user; returns the user and the clear access key (shown once)."""
    if not name or len(name) > 64 or not all(c.isalnum() or c in "._-@" for c in name):
        raise ApiError(Code.INVALID_PARAMETER,
                       "A user name is 1 to 64 letters, digits or . _ - @; choose another name.")
    if conn.execute(select(users.c.id).where(users.c.name == name)).first():
        raise ApiError(Code.INVALID_PARAMETER, f"A user named {name!r} exists already; choose another name.")
    access_id, access_key = "AK" + _random(30), _random(40)
    result = conn.execute(insert(users).values(
        name=name, access_id=access_id, access_key=box.seal(access_key), allow_commands=allow_commands,
        is_admin=is_admin, disabled=False, email=email, created_at=time.time()))
    user_id = result.inserted_primary_key[0]
    return User(user_id, name, access_id, allow_commands, is_admin, False, email), access_key


def by_access_id(conn: Connection, box: KeyBox, access_id: str) -> tuple[User, str] | None:
    row = conn.execute(select(users).where(users.c.access_id == access_id)).first()
    if row is None:
        return None
    return _user(row), box.open(row.access_key)


def by_name(conn: Connection, name: str) -> User | None:
    row = conn.execute(select(users).where(users.c.name == name)).first()
    return _user(row) if row else None


def get(conn: Connection, user_id: int) -> User | None:
    row = conn.execute(select(users).where(users.c.id == user_id)).first()
    return _user(row) if row else None


def list_all(conn: Connection) -> list[User]:
    return [_user(row) for row in conn.execute(select(users).order_by(users.c.id))]


def set_disabled(conn: Connection, name: str, disabled: bool) -> User:
    if conn.execute(update(users).where(users.c.name == name).values(disabled=disabled)).rowcount == 0:
        raise ApiError(Code.NOT_FOUND, f"There is no user named {name!r}; list users with `rayfarm user list`.")
    return by_name(conn, name)


def rotate_key(conn: Connection, box: KeyBox, name: str) -> tuple[User, str]:
    access_key = _random(40)
    if conn.execute(update(users).where(users.c.name == name).values(access_key=box.seal(access_key))).rowcount == 0:
        raise ApiError(Code.NOT_FOUND, f"There is no user named {name!r}; list users with `rayfarm user list`.")
    return by_name(conn, name), access_key


DEFAULT_TASK_OVER_TIME = 12 * 3600  # what queryUserSetting answers until the user sets it


def task_over_time(conn: Connection, user_id: int) -> int:
    """The user's task over-time setting (updateUserSetting's taskOverTimeSec), seconds."""
    value = conn.scalar(select(users.c.task_over_time).where(users.c.id == user_id))
    return DEFAULT_TASK_OVER_TIME if value is None else int(value)


def set_task_over_time(conn: Connection, user_id: int, seconds: int) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(task_over_time=seconds))
