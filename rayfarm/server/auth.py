"""Signed-request authentication for the Renderbus routes."""

import time
from collections.abc import Mapping

from rayfarm.protocol import signing
from rayfarm.protocol.codes import ApiError, Code
from rayfarm.server.farm import Farm
from rayfarm.store.users import User


def host_forms(host: str) -> list[str]:
    """The Host header and its other spelling: HTTP clients drop a default port the SDK may have signed."""
    if host.endswith((":80", ":443")):
        return [host, host.rsplit(":", 1)[0]]
    if ":" not in host.rsplit("]", 1)[-1]:
        return [host, f"{host}:80", f"{host}:443"]
    return [host]


def _once(headers: Mapping[str, str]) -> None:
    """Each signed header at most once: the value checked must be the one value signed."""
    getlist = getattr(headers, "getlist", None)
    if getlist is None:
        return
    for name in signing.SIGNED_HEADERS:
        if len(getlist(name.lower())) > 1:
            raise ApiError(Code.ILLEGAL_REQUEST, f"The request has more than one {name} header; send each signed "
                                                 f"header once.")


def authenticate(farm: Farm, headers: Mapping[str, str], host: str, path: str, body: dict,
                 changes_state: bool = True) -> User:
    """Check access id, timestamp, signature and replay, in that order; the caller's user.

    The access id, timestamp and nonce checked are the headers' values, and the signature covers exactly
    those (signing.signed_pairs refuses a body that would override one), so no value can be moved or
    re-timed under a captured signature; the replay guard then refuses the signature's second use."""
    _once(headers)
    access_id = headers.get("accessid")
    if not access_id:
        raise ApiError(Code.LOGIN_REQUIRED, "The request has no accessId header; sign in with your access id and key.")
    found = farm.user_by_access_id(access_id)
    if found is None:
        raise ApiError(Code.LOGIN_REQUIRED, "The accessId is not known to this farm; check the access id you were given.")
    user, key = found
    if user.disabled:
        raise ApiError(Code.FORBIDDEN, "This account is disabled; ask the farm's administrator to enable it.")

    stamp = headers.get("utctimestamp", "")
    now = time.time()
    window = farm.settings.time_window
    try:
        skew = abs(now - int(stamp))
    except ValueError:
        raise ApiError(Code.SIGNATURE_EXPIRED, "The UTCTimestamp header is missing or not a number of seconds; "
                                                "send the current time in epoch seconds.") from None
    if skew > window:
        raise ApiError(Code.SIGNATURE_EXPIRED,
                       f"The request's UTCTimestamp is {int(skew)} s away from the farm's clock (at most {window} s "
                       f"allowed); set your computer's clock right and try again.")

    signature = headers.get("signature")
    nonce = headers.get("nonce")
    if not signature or not nonce:
        raise ApiError(Code.SIGNATURE_INVALID, "The request has no signature or nonce header; sign every request.")
    if len(nonce) > 64:
        raise ApiError(Code.ILLEGAL_REQUEST, "The nonce header is longer than 64 characters; send a short random nonce.")
    signed = {name: headers[name.lower()] for name in signing.SIGNED_HEADERS if name.lower() in headers}
    try:
        messages = [signing.string_to_sign(h, path, signed, body) for h in host_forms(host)]
    except signing.CanonicalError as exc:
        raise ApiError(Code.INVALID_PARAMETER, f"The request cannot be checked: {exc}.") from None
    if not any(signing.verify(key, message, signature) for message in messages):
        raise ApiError(Code.SIGNATURE_INVALID,
                       "The signature does not match; check the access key and that the domain you use is the one "
                       "the request is sent to.")
    if not farm.replay.accept(access_id, signature, now, changes_state):
        raise ApiError(Code.ILLEGAL_REQUEST,
                       "This request was sent already (a replay); sign each request anew, with a new nonce.")
    return user
