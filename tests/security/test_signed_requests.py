"""A captured signed request cannot be made new: no mutation of it passes, only the original, once.

The probe that found issue #15 resent a captured call with a fresh ``nonce`` header and the old nonce in
the body (the SDK's string to sign lets body keys override signed headers, and the replay guard read the
header), and re-timed calls the same way. Here hypothesis draws valid signed ``createTask`` requests and
mutations of them — signed values moved between headers and body, headers twice, duplicate JSON keys,
header-name case, whitespace, re-encoded values and bodies, signature spellings — and sends the original
and its mutations in a drawn order to a real server: at most one of them may pass (the original, if it
goes first), and exactly as many tasks exist as calls passed.

Honest calls are not refused either: calls that draw the same nonce (the official SDK picks one of
900,000) are different requests and pass.
"""

import json
import secrets
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from rayfarm.protocol import signing
from rayfarm.store.schema import tasks
from tests.support.farms import make_users, running_farm
from tests.support.signed import CREATE, PROFILE, check_envelope, sign_headers
from tests.support.snapshots import engine

SIGNED = list(signing.SIGNED_HEADERS)
REFUSED = {600, 602, 603, 610, 611}


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    yield from running_farm(tmp_path_factory, "signed-requests", "--rate-limit", "0")


@pytest.fixture(scope="module")
def user(farm):
    (alice,) = make_users(farm, "mallory-target")
    return alice


@pytest.fixture(scope="module")
def http(farm):
    with httpx.Client(base_url=farm.url, timeout=30) as client:
        yield client


def task_count(farm) -> int:
    with engine(farm).connect() as conn:
        return conn.scalar(select(func.count()).select_from(tasks))


def signed(farm, user, body: dict, *, timestamp: int | None = None, nonce: str | None = None,
           path: str = CREATE) -> dict[str, str]:
    """Signed headers with a nonce drawn as the official SDK draws it (one of 900,000)."""
    return sign_headers(farm.domain, path, body, user.access_id, user.access_key, timestamp=timestamp,
                        nonce=nonce or str(secrets.randbelow(900_000) + 100_000))


def _other_value(name: str, value: str) -> str:
    if name == "UTCTimestamp":
        return str(int(value) + 1)
    if name == "nonce":
        return str(int(value) + 1) if value.isdigit() else value + "1"
    return value + "1"


# A request on the wire: headers (a list: a name may come twice) and the body's bytes.
Wire = tuple[list[tuple[str, str]], bytes]


def _body_variants(body: dict) -> st.SearchStrategy[bytes]:
    """The same body re-encoded: other key order, spacing, escapes, number and boolean spellings, duplicates."""
    level = body["taskUserLevel"]
    return st.sampled_from([
        json.dumps(dict(reversed(list(body.items())))).encode(),
        json.dumps(body, indent=2).encode(),
        json.dumps(body, ensure_ascii=True).replace('"count"', '"\\u0063ount"').encode(),
        json.dumps({**body, "taskUserLevel": str(level)}).encode(),  # prints like the number: same signed string
        json.dumps({**body, "taskUserLevel": float(level)}).encode(),  # 50.0: another signed string
        json.dumps({**body, "count": True}).encode(),
        json.dumps({**body, "count": "True"}).encode(),
        json.dumps({**body, "labels": [*body.get("labels", []), ""]}).encode(),
        json.dumps(body).replace('{"count": 1', '{"count": 2, "count": 1').encode(),  # a key twice: last one "wins"
        json.dumps(body).replace('"count": 1', '"count": 1, "count": 2').encode(),
        (json.dumps(body)[:-1] + ', "taskUserLevel0": 1}').encode(),
    ])


@st.composite
def mutation(draw, original: dict[str, str], body: dict) -> Wire:
    headers = dict(original)
    raw = json.dumps(body).encode()
    kind = draw(st.sampled_from(["move", "move-same", "twice", "case", "space", "body", "signature", "stale"]))
    name = draw(st.sampled_from(SIGNED))
    if kind == "move":  # the header gets a fresh value, the body the signed one (as the SDK would sign it)
        signed_value = headers[name]
        headers[name] = _other_value(name, signed_value)
        as_number = signed_value.isdigit() and draw(st.booleans())
        raw = json.dumps({**body, name: int(signed_value) if as_number else signed_value}).encode()
    elif kind == "move-same":  # header and body both carry the fresh value: not what was signed
        headers[name] = _other_value(name, headers[name])
        raw = json.dumps({**body, name: headers[name]}).encode()
    elif kind == "twice":
        other = _other_value(name, headers[name])
        pairs = list(headers.items())
        extra = (name, other)
        pairs = [extra, *pairs] if draw(st.booleans()) else [*pairs, extra]
        return pairs, raw
    elif kind == "case":
        pairs = [(key.upper() if draw(st.booleans()) else key.lower(), value) for key, value in headers.items()]
        return pairs, raw
    elif kind == "space":
        value = headers[name]  # (leading and trailing spaces never reach the server: HTTP strips them)
        inner = value[:1] + " " + value[1:] if len(value) > 1 else value + " 0"
        headers[name] = draw(st.sampled_from([inner, value + "\t1", "0" + value, value + ".0"]))
    elif kind == "body":
        raw = draw(_body_variants(body))
    elif kind == "signature":
        signature = headers["signature"]
        headers["signature"] = draw(st.sampled_from([
            signature.rstrip("="), signature.replace("+", "-").replace("/", "_"), signature.swapcase(),
            signature + "=", signature[:20] + " " + signature[20:]]))
    else:  # "stale": the original signature over a changed timestamp (re-timing without the body trick)
        headers["UTCTimestamp"] = str(int(headers["UTCTimestamp"]) - draw(st.sampled_from([1, 60, 3600])))
    return list(headers.items()), raw


@st.composite
def attack(draw, farm, user) -> tuple[Wire, list[Wire], list[int]]:
    body = {"count": 1, "taskUserLevel": draw(st.sampled_from([50, 60, 0, 100]))}
    if draw(st.booleans()):
        body["labels"] = draw(st.lists(st.sampled_from(["a", "b", "shot 1"]), max_size=2))
    age = draw(st.sampled_from([0, 0, 0, 200]))  # some captured a while ago, still inside the window
    original = signed(farm, user, body, timestamp=int(time.time()) - age)
    mutations = draw(st.lists(mutation(original, body), min_size=1, max_size=6))
    wires = [(list(original.items()), json.dumps(body).encode()), *mutations]
    order = draw(st.permutations(range(len(wires))))
    return wires[0], wires, list(order)


def send(http: httpx.Client, wire: Wire) -> dict:
    pairs, raw = wire
    response = http.post(CREATE, content=raw, headers=[*pairs, ("Content-Type", "application/json")])
    return check_envelope(response)


def test_mutated_signed_requests_never_pass_only_the_original_once(farm, user, http):
    before = task_count(farm)
    passed_total = 0

    @settings(max_examples=150, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def check(data):
        nonlocal passed_total
        original, wires, order = data.draw(attack(farm, user))
        answers = [(index, send(http, wires[index])) for index in order]
        passed = [index for index, answer in answers if answer["code"] == 200]
        assert len(passed) <= 1, [(wires[i], a) for i, a in answers]
        if order[0] == 0:  # the original went first: it is the one that passed
            assert passed == [0], answers
        for index, answer in answers:
            if answer["code"] != 200:
                assert answer["code"] in REFUSED and answer["data"] is None, (wires[index], answer)
        passed_total += len(passed)
        # and once more, the original: never a second time
        assert send(http, original)["code"] != 200

    check()
    assert task_count(farm) - before == passed_total  # a refused call created nothing


def test_a_nonce_moved_into_the_body_is_refused_with_a_sentence(farm, user, http):
    body = {"count": 1, "taskUserLevel": 50}
    captured = signed(farm, user, body, nonce="111111")
    assert send(http, (list(captured.items()), json.dumps(body).encode()))["code"] == 200
    forged = {**captured, "nonce": "222222"}
    answer = send(http, (list(forged.items()), json.dumps({**body, "nonce": "111111"}).encode()))
    assert answer["code"] == 600 and "nonce" in answer["message"] and "header only" in answer["message"], answer


def test_a_call_signed_an_hour_ago_cannot_be_re_timed_through_the_body(farm, user, http):
    body = {"count": 1, "taskUserLevel": 50}
    old = int(time.time()) - 3600
    captured = signed(farm, user, body, timestamp=old)
    assert send(http, (list(captured.items()), json.dumps(body).encode()))["code"] == 610  # too old, as sent
    retimed = {**captured, "UTCTimestamp": str(int(time.time()))}
    answer = send(http, (list(retimed.items()), json.dumps({**body, "UTCTimestamp": str(old)}).encode()))
    assert answer["code"] == 600 and "UTCTimestamp" in answer["message"], answer


def test_honest_calls_that_draw_the_same_nonce_all_pass(farm, user, http):
    """The official SDK draws nonces from 900,000 values: a script polling ten times a second sends ~6,000
    calls in the 600 s the guard remembers, and about 20 of them repeat an earlier nonce. None is a replay."""
    nonce = "424242"
    answers = []
    now = int(time.time())
    for second, level in ((now - 1, 50), (now, 60)):  # a second apart: same nonce, same body, another timestamp
        for path, body in ((PROFILE, {}), (CREATE, {"count": 1, "taskUserLevel": level})):
            headers = signed(farm, user, body, nonce=nonce, path=path, timestamp=second)
            answers.append(check_envelope(http.post(path, json=body, headers=headers)))
    assert [a["code"] for a in answers] == [200, 200, 200, 200], answers
    headers = signed(farm, user, {}, nonce=nonce, path=PROFILE, timestamp=int(time.time()) - 10)
    assert check_envelope(http.post(PROFILE, json={}, headers=headers))["code"] == 200
    assert check_envelope(http.post(PROFILE, json={}, headers=headers))["code"] == 603  # a true repeat is refused
