"""Request signing exactly as the Renderbus SDK does it.

The string to sign is ``[POST]{host}:{path}&k1=v1&k2=v2...`` over the signed headers and the
flattened body, keys sorted by ASCII, values as Python's ``str()`` prints them. The signature is
base64(HMAC-SHA256(access_key, string)).
"""

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

SIGNED_HEADERS = ("accessId", "channel", "platform", "UTCTimestamp", "nonce", "version")


class CanonicalError(ValueError):
    """The body cannot be canonicalised (not a JSON object, or nested too deep)."""


MAX_DEPTH = 32


def flatten(value: Any, prefix: str = "", out: dict | None = None, depth: int = 0) -> dict:
    """Flatten nested JSON: dict keys joined with '.', list indexes appended directly."""
    if out is None:
        out = {}
    if depth > MAX_DEPTH:
        raise CanonicalError("the request body is nested too deeply")
    if isinstance(value, dict):
        for key, item in value.items():
            flatten(item, f"{prefix}.{key}" if prefix else str(key), out, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            flatten(item, f"{prefix}{index}", out, depth + 1)
    else:
        out[prefix] = value
    return out


def string_to_sign(host: str, path: str, headers: Mapping[str, Any], body: Mapping[str, Any]) -> str:
    if not isinstance(body, Mapping):
        raise CanonicalError("the request body must be a JSON object")
    # Same order of precedence as the SDK: headers first, body keys override them.
    combined: dict[str, Any] = {name: headers[name] for name in SIGNED_HEADERS if name in headers}
    combined.update(body)
    merged = flatten(combined)
    joined = "&".join(f"{key}={merged[key]}" for key in sorted(merged))
    message = f"[POST]{host}:{path}&{joined}"
    try:
        message.encode("utf-8")
    except UnicodeEncodeError:
        # e.g. a lone surrogate from a "\ud800" escape: no client can have signed this text
        raise CanonicalError("the request contains text that is not valid Unicode") from None
    return message


def sign(access_key: str, message: str) -> str:
    digest = hmac.new(access_key.encode("utf-8", "surrogatepass"), message.encode("utf-8", "surrogatepass"),
                      hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(access_key: str, message: str, signature: str) -> bool:
    """Constant-time comparison of the expected and the given signature."""
    expected = sign(access_key, message).encode("ascii")
    return hmac.compare_digest(expected, signature.encode("utf-8", "replace"))
