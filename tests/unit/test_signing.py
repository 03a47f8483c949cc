"""Request signing: the public test vector, the SDK's flattening rules, and the SDK itself."""

import json
import os
import random
import subprocess
from pathlib import Path

import pytest

from rayfarm.protocol import signing
from rayfarm.protocol.signing import CanonicalError, sign, string_to_sign, verify

ROOT = Path(__file__).resolve().parents[2]
RAYVISION_VENV = Path(os.environ.get("RAYFARM_RAYVISION_VENV", ROOT / ".venv-rayvision"))
RAYVISION_PYTHON = RAYVISION_VENV / "bin" / "python"

VECTOR_KEY = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
VECTOR_STRING = ("[POST]task.renderbus.com:/api/render/common/queryPlatforms&UTCTimestamp=1535957371"
                 "&accessId=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE&channel=7&nonce=11886&platform=1"
                 "&version=1.0.0&zone=2")
VECTOR_SIGNATURE = "6tvuz8bgDCz5vtS3amuMWVbOqzhaeWaOhNcWMqx9zcg="

HEADERS = {
    "accessId": "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
    "channel": "4",
    "platform": "2",
    "UTCTimestamp": "1700000000",
    "nonce": "123456",
    "version": "2.0.0",
}
HOST = "127.0.0.1:8765"
PATH = "/api/render/handle/queryTaskInfo/v2"
PREFIX = f"[POST]{HOST}:{PATH}&"
HEADER_PART = "UTCTimestamp=1700000000&accessId=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE&channel=4&nonce=123456&platform=2"


def joined(body: dict, headers: dict = HEADERS) -> str:
    """Only the ``k=v&...`` part of the string to sign."""
    text = string_to_sign(HOST, PATH, headers, body)
    assert text.startswith(PREFIX)
    return text[len(PREFIX):]


# ---------------------------------------------------------------- the public vector

def test_public_vector_signature():
    assert sign(VECTOR_KEY, VECTOR_STRING) == VECTOR_SIGNATURE


def test_public_vector_string_is_built_from_headers_and_body():
    headers = {"accessId": "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "channel": "7", "platform": "1",
               "UTCTimestamp": "1535957371", "nonce": "11886", "version": "1.0.0"}
    message = string_to_sign("task.renderbus.com", "/api/render/common/queryPlatforms", headers, {"zone": 2})
    assert message == VECTOR_STRING
    assert verify(VECTOR_KEY, message, VECTOR_SIGNATURE) is True


# ---------------------------------------------------------------- string_to_sign

def test_headers_only_sorted_by_ascii():
    # ASCII order puts upper case first: UTCTimestamp before accessId.
    assert joined({}) == HEADER_PART + "&version=2.0.0"


def test_unsigned_headers_are_left_out():
    headers = {**HEADERS, "signature": "abc", "Content-Type": "application/json", "languageFlag": "1",
               "Host": "x"}
    assert joined({}, headers) == joined({})


def test_missing_headers_are_simply_absent():
    assert string_to_sign("h:1", "/p", {"accessId": "A"}, {"zone": 1}) == "[POST]h:1:/p&accessId=A&zone=1"


def test_list_indexes_appended_directly():
    assert joined({"taskIds": [101, 102]}).endswith("&taskIds0=101&taskIds1=102&version=2.0.0")


def test_nested_dicts_and_lists():
    body = {"renderEnvs": [{"envId": 1, "pluginIds": [2, 3]}, {"envId": 3, "pluginIds": [7]}]}
    assert joined(body) == (
        HEADER_PART
        + "&renderEnvs0.envId=1&renderEnvs0.pluginIds0=2&renderEnvs0.pluginIds1=3"
        + "&renderEnvs1.envId=3&renderEnvs1.pluginIds0=7&version=2.0.0"
    )


def test_values_printed_like_python_str():
    body = {"a": True, "b": False, "c": None, "d": 1800.0, "e": 0.1, "f": "x y&z=1", "g": -3}
    assert joined({**body}) == (
        HEADER_PART[: HEADER_PART.index("&accessId")]
        + "&a=True&accessId=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE&b=False&c=None&channel=4&d=1800.0"
        + "&e=0.1&f=x y&z=1&g=-3&nonce=123456&platform=2&version=2.0.0"
    )


def test_empty_containers_contribute_nothing():
    assert joined({"labels": [], "extra": {}}) == joined({})


def test_nested_dict_key_join():
    assert "&outer.inner.leaf=1&" in joined({"outer": {"inner": {"leaf": 1}}})


def test_a_body_key_that_would_override_a_signed_header_is_refused():
    # The SDK does copy_header.update(body): a body key with a header's name would replace, in what is signed, the
    # value the server checks (replay with a fresh nonce, re-timing). Refused unless both print alike.
    for body in ({"nonce": "from-body"}, {"version": 9}, {"UTCTimestamp": 1}, {"accessId": "other"},
                 {"platform": 3}, {"channel": "4 "}):
        with pytest.raises(CanonicalError, match="header only"):
            string_to_sign(HOST, PATH, HEADERS, body)
    with pytest.raises(CanonicalError):
        string_to_sign(HOST, PATH, {"accessId": "A"}, {"nonce": "1"})  # no header to agree with


def test_a_body_key_equal_to_its_signed_header_is_accepted():
    # the official task_record sends "platform": int(platform) in its body as well as the header
    assert joined({"platform": 2, "nonce": "123456"}) == joined({})


def test_two_values_under_one_flattened_name_are_refused():
    for body in ({"a": [1], "a0": 2}, {"a0": 2, "a": [1]}, {"a.b": 1, "a": {"b": 2}}, {"x": [[1], 2], "x00": 3}):
        with pytest.raises(CanonicalError, match="one name"):
            string_to_sign(HOST, PATH, HEADERS, body)


def test_keys_sorted_by_code_point_not_locale():
    text = joined({"b": 1, "B": 2, "_": 3, "a1": 4, "a": [5]})
    keys = [part.split("=", 1)[0] for part in text.split("&")]
    assert keys == sorted(keys)
    assert keys.index("B") < keys.index("UTCTimestamp") < keys.index("_") < keys.index("a0") < keys.index("a1")


def test_body_must_be_an_object():
    for body in ([], [1], "x", 3, None):
        with pytest.raises(CanonicalError):
            string_to_sign(HOST, PATH, HEADERS, body)


def test_too_deep_nesting_is_refused():
    body: object = 1
    for _ in range(signing.MAX_DEPTH + 5):
        body = {"k": body}
    with pytest.raises(CanonicalError):
        string_to_sign(HOST, PATH, HEADERS, body)


def test_reasonable_nesting_is_fine():
    body: object = 1
    for _ in range(10):
        body = [body]
    assert joined({"x": body}).endswith("&version=2.0.0&x0000000000=1")


def test_text_that_cannot_be_utf8_encoded_is_a_canonical_error():
    # json.loads('"\\ud800"') produces a lone surrogate; it must not crash the signer.
    with pytest.raises(CanonicalError):
        string_to_sign(HOST, PATH, HEADERS, {"name": "\ud800"})


# ---------------------------------------------------------------- sign / verify

def test_verify_right_and_wrong():
    message = string_to_sign(HOST, PATH, HEADERS, {"taskIds": [1, 2]})
    good = sign("secret-key", message)
    assert verify("secret-key", message, good) is True
    assert verify("other-key", message, good) is False
    assert verify("secret-key", message, sign("secret-key", message + "x")) is False
    assert verify("secret-key", message, good[:-2] + "A=") is False
    assert verify("secret-key", message, "") is False
    assert verify("secret-key", message, "é" * 44) is False


def test_verify_detects_tampered_body():
    message = string_to_sign(HOST, PATH, HEADERS, {"taskIds": [1, 2]})
    signature = sign("k", message)
    for tampered in ({"taskIds": [1, 3]}, {"taskIds": [1, 2, 3]}, {"taskIds": [1]}, {"taskIds": [1, 2], "x": 1}):
        assert verify("k", string_to_sign(HOST, PATH, HEADERS, tampered), signature) is False
    # A different host or path is a different message too.
    assert verify("k", string_to_sign("evil:80", PATH, HEADERS, {"taskIds": [1, 2]}), signature) is False
    assert verify("k", string_to_sign(HOST, "/api/x", HEADERS, {"taskIds": [1, 2]}), signature) is False


def test_sign_is_base64_of_32_bytes():
    import base64

    assert len(base64.b64decode(sign("k", "m"))) == 32


# ---------------------------------------------------------------- compared with the official SDK

SDK_SCRIPT = r"""
import json, sys
from rayvision_api.signature import generate_headers_body_str, generate_signature
cases = json.load(sys.stdin)
out = []
for case in cases:
    headers = dict(case["headers"])
    text = generate_headers_body_str(case["domain"], case["path"], headers, case["body"])
    out.append([text, generate_signature(case["key"], text).decode("ascii")])
json.dump(out, sys.stdout)
"""


def _random_value(rng: random.Random, depth: int):
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return rng.randint(-10**6, 10**6)
    if kind == 1:
        return rng.choice([0.0, 1800.0, -2.5, 1e-7, 3.14159, 1e20])
    if kind == 2:
        return rng.choice([True, False, None])
    if kind in (3, 4, 5):
        return "".join(rng.choice("abcXYZ019 _-.=&[]é中") for _ in range(rng.randrange(0, 8)))
    if kind in (6, 7):
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    return {_random_key(rng): _random_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))}


def _random_key(rng: random.Random) -> str:
    return "".join(rng.choice("abAB_1.z") for _ in range(rng.randrange(1, 5)))


def _sdk_cases() -> list[dict]:
    sdk_headers = {**HEADERS, "signature": "", "Content-Type": "application/json"}
    fixed = [
        {},
        {"zone": 2},
        {"taskIds": [101, 102, 103]},
        {"taskId": 7, "producer": None},
        {"taskIds": [5], "overTime": 1800.0},
        {"count": 1, "taskUserLevel": 50, "labels": ["a", "b"], "outUserId": None},
        {"renderEnvs": [{"envId": 1, "pluginIds": [2, 3, 4]}, {"envId": 3, "pluginIds": [7, 8, 10]}]},
        {"pageNum": 1, "pageSize": 50, "statusList": [0, 5], "recycleFlag": 0, "searchKeyword": "shot 1"},
        {"taskId": 3, "selectAll": 1, "ids": [], "status": [4, 5]},
        {"flag": True, "nested": {"deep": {"deeper": [1, {"x": False}]}}},
        {"nonce": "overridden", "channel": 9, "version": None},  # body overrides headers: refused by us
        {"a": [1], "a0": 2},  # two keys that flatten to the same name: ambiguous, refused by us
        {"a0": 2, "a": [1]},
        {"platform": 2, "pageNum": 1},  # task_record: the same value as the header is fine
        {"signature": "in-body", "Content-Type": "x"},  # body keys with the names of popped headers
        {"fileName": "task.json", "content": json.dumps({"task_info": {"frames_per_task": "1"}})},
    ]
    rng = random.Random(20240607)
    randomised = [{_random_key(rng): _random_value(rng, 0) for _ in range(rng.randrange(0, 6))} for _ in range(150)]
    return [{"domain": HOST, "path": PATH, "headers": sdk_headers, "body": body, "key": "k3y-" + str(i)}
            for i, body in enumerate(fixed + randomised)]


def _last_wins(value, prefix: str = "", out: dict | None = None) -> dict:
    """The SDK's flattening: a later value under an already used name replaces the earlier one."""
    out = {} if out is None else out
    if isinstance(value, dict):
        for key, item in value.items():
            _last_wins(item, f"{prefix}.{key}" if prefix else key, out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _last_wins(item, f"{prefix}{index}", out)
    else:
        out[prefix] = value
    return out


def _leaf_count(value) -> int:
    if isinstance(value, dict):
        return sum(_leaf_count(v) for v in value.values())
    if isinstance(value, list):
        return sum(_leaf_count(v) for v in value)
    return 1


@pytest.mark.skipif(not RAYVISION_PYTHON.exists(),
                    reason=f"the official SDK's interpreter {RAYVISION_PYTHON} does not exist")
def test_matches_official_sdk():
    cases = _sdk_cases()
    done = subprocess.run([str(RAYVISION_PYTHON), "-c", SDK_SCRIPT], input=json.dumps(cases),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    expected = json.loads(done.stdout)
    assert len(expected) == len(cases)
    for case, (sdk_text, sdk_signature) in zip(cases, expected, strict=True):
        # The body arrives at the farm as parsed JSON, exactly what the SDK signed before json.dumps.
        body = json.loads(json.dumps(case["body"]))
        try:
            ours = string_to_sign(case["domain"], case["path"], case["headers"], body)
        except CanonicalError:
            # refused only where the SDK's string is ambiguous: the body overrides a signed header with another
            # value, or two values flatten to one name (the SDK's string then holds fewer pairs than the body)
            overrides = [name for name in signing.SIGNED_HEADERS if name in body
                         and str(body[name]) != str(case["headers"][name])]
            assert overrides or len(_last_wins(body)) < _leaf_count(body), case["body"]
            continue
        assert ours == sdk_text, case["body"]
        assert sign(case["key"], ours) == sdk_signature
        assert verify(case["key"], ours, sdk_signature)
