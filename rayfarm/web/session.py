"""Dashboard sessions: a cookie signed by the server (itsdangerous) naming a session row, the user and an expiry.

The signing key is derived from the farm secret (secret.key or RAYFARM_SECRET), and the session is a row
of the database (store/web_sessions.py), so a session survives restarts and is accepted by every server
process of the farm, and signing out (one session, or every session of the user) ends it everywhere at
once. The access key itself never reaches the browser; the cookie holds a keyed fingerprint of it, so
rotating a user's key ends their sessions. Disabling a user refuses their next request.
"""

import hashlib
import hmac
import time

from itsdangerous import BadSignature, URLSafeSerializer

from rayfarm.protocol.codes import ApiError, Code
from rayfarm.server.farm import Farm
from rayfarm.store import audit, web_sessions
from rayfarm.store.users import User

COOKIE = "rayfarm_session"
LIFETIME = 12 * 3600  # seconds a sign-in lasts
SALT = "rayfarm.web.session"

SIGNED_OUT = "You are not signed in (or your session ended); sign in with your access id and key."


class Sessions:
    def __init__(self, secret: bytes, lifetime: int = LIFETIME):
        self.lifetime = lifetime
        self._serializer = URLSafeSerializer(secret, salt=SALT, signer_kwargs={"digest_method": hashlib.sha256})
        self._fingerprint_key = hmac.new(secret, b"rayfarm.web.key-fingerprint", hashlib.sha256).digest()

    def fingerprint(self, access_key: str) -> str:
        return hmac.new(self._fingerprint_key, access_key.encode(), hashlib.sha256).hexdigest()[:32]

    def issue(self, user: User, access_key: str, session_id: str, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + self.lifetime)
        return self._serializer.dumps({"uid": user.id, "aid": user.access_id, "kf": self.fingerprint(access_key),
                                       "sid": session_id, "exp": expires})

    def read(self, cookie: str, now: float | None = None) -> dict | None:
        """The payload of a cookie this farm signed and that has not expired; None otherwise."""
        try:
            data = self._serializer.loads(cookie)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("exp"), int) or not isinstance(data.get("uid"), int):
            return None
        if not all(isinstance(data.get(name), str) for name in ("aid", "kf", "sid")):
            return None
        if data["exp"] <= (time.time() if now is None else now):
            return None
        return data

    def access_id(self, cookie: str | None) -> str | None:
        """The access id of a valid session cookie, without reading the database (the rate-limit key); else None."""
        data = self.read(cookie) if cookie else None
        return data["aid"][:128] if data else None


def sign_in(farm: Farm, access_id: str, access_key: str) -> tuple[User, str]:
    """The user whose access id and key these are (compared in constant time), and the clear key."""
    found = farm.user_by_access_id(access_id)
    if found is None or not hmac.compare_digest(found[1].encode(), access_key.encode()):
        raise ApiError(Code.LOGIN_REQUIRED, "The access id or access key is wrong; copy both from the output of "
                                            "`rayfarm up` or `rayfarm user create`.")
    user, key = found
    if user.disabled:
        raise ApiError(Code.FORBIDDEN, "This account is disabled; ask the farm's administrator to enable it.")
    return user, key


def start_session(farm: Farm, sessions: Sessions, user: User, access_key: str, address: str) -> str:
    """A new session row for a signed-in user, and its sign-in record (one transaction); the cookie that names it."""
    now = time.time()
    with farm.db.write() as conn:
        session_id = web_sessions.start(conn, user.id, now, sessions.lifetime)
        audit.record_login(conn, at=now, user_id=user.id, access_id=user.access_id, channel="dashboard",
                           address=address, code=Code.OK)
    return sessions.issue(user, access_key, session_id, now)


def record_refused_sign_in(farm: Farm, access_id: str, address: str, refusal: ApiError) -> None:
    """The record of a refused sign-in (wrong id or key, disabled account), under the user whose access id it
    names (none for an access id no user has)."""
    found = farm.user_by_access_id(access_id)
    with farm.db.write() as conn:
        audit.record_login(conn, at=time.time(), user_id=found[0].id if found else None, access_id=access_id,
                           channel="dashboard", address=address, code=refusal.code, message=refusal.message)


def current_user(farm: Farm, sessions: Sessions, cookie: str | None) -> User:
    """The signed-in user of a request's session cookie; 602 when there is none or it is not valid any more."""
    data = sessions.read(cookie) if cookie else None
    if data is None:
        raise ApiError(Code.LOGIN_REQUIRED, SIGNED_OUT)
    found = farm.user_by_access_id(data["aid"])
    if found is None or found[0].id != data["uid"] or not hmac.compare_digest(sessions.fingerprint(found[1]), data["kf"]):
        raise ApiError(Code.LOGIN_REQUIRED, SIGNED_OUT)  # the key was rotated or the user is gone
    with farm.db.read() as conn:
        if not web_sessions.live(conn, data["sid"], data["uid"], time.time()):
            raise ApiError(Code.LOGIN_REQUIRED, SIGNED_OUT)  # signed out (here, or everywhere)
    if found[0].disabled:
        raise ApiError(Code.FORBIDDEN, "This account is disabled; ask the farm's administrator to enable it.")
    return found[0]


def end_session(farm: Farm, sessions: Sessions, cookie: str | None, everywhere: bool = False) -> None:
    """Sign out: the cookie's session ends (``everywhere``: every session of its user, once the cookie is checked)."""
    if everywhere:
        user = current_user(farm, sessions, cookie)
        with farm.db.write() as conn:
            web_sessions.end_all(conn, user.id)
        return
    data = sessions.read(cookie) if cookie else None
    if data is not None:
        with farm.db.write() as conn:
            web_sessions.end(conn, data["sid"])
