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
    """The request cannot be canonicalised: not a JSON object, nested too deep, or ambiguous (two values for one
    signed key, or a body key that would override a signed header with another value)."""


MAX_DEPTH = 32


def flatten(value: Any, prefix: str = "", out: dict | None = None, depth: int = 0) -> dict:
    """Flatten nested JSON: dict keys joined with '.', list indexes appended directly.

    Two values that flatten to one key (``{"a": [1], "a0": 2}``) make the signed string ambiguous: two bodies
    would share one signature. That is refused (CanonicalError); no client sends such a body."""
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
    elif prefix in out:
        raise CanonicalError(f"two values of the body are signed under the one name {prefix!r}")
    else:
        out[prefix] = value
    return out


def signed_pairs(headers: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """The key/value pairs the signature covers: the signed headers and the flattened body.

    The SDK merges the body over the headers, so a body key named like a signed header (``nonce``,
    ``UTCTimestamp``...) would replace the header's value in what is signed while the server checks the
    header. That is refused unless both print the same (the official ``task_record`` sends ``platform``
    in both): the values checked are always exactly the values signed."""
    if not isinstance(body, Mapping):
        raise CanonicalError("the request body must be a JSON object")
    pairs = flatten(body)
    for name in SIGNED_HEADERS:
        if name in pairs:
            if name not in headers or str(pairs[name]) != str(headers[name]):
                raise CanonicalError(f"the body's {name!r} differs from the {name} header; send {name} as a "
                                     f"header only")
        elif name in headers:
            pairs[name] = headers[name]
    return pairs


def string_to_sign(host: str, path: str, headers: Mapping[str, Any], body: Mapping[str, Any]) -> str:
    merged = signed_pairs(headers, body)
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
