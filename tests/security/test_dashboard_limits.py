"""The dashboard is rate-limited like the signed API: failed sign-ins per address, calls per signed-in user.

The farm runs with `--rate-limit 0.5 --rate-burst 5`: a key may send 5 requests at once, then one every
2 s, and failed sign-ins get the same numbers (their own limiter never allows more than 5 at once and 0.5
per second, rayfarm/server/ratelimit.py). Each test sends from its own loopback address (127.0.0.x), so
its address's buckets are its own. What is asserted about time: the first few requests of a test are sent
well within the 2 s a token takes to come back, and a refused client gets in again within a bounded wait.
"""

import re
import time

import httpx
import pytest

from tests.support.farms import make_users, running_farm
from tests.support.signed import PROFILE, WEB, Raw, check_envelope

BURST = 5
WEB_PROFILE = "/web/api/render/setUp/queryUserProfile"
WAIT_LIMIT = 30.0  # seconds a refused client may wait at most before it gets in


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    yield from running_farm(tmp_path_factory, "dashboard-limits", "--rate-limit", "0.5", "--rate-burst", str(BURST))


@pytest.fixture(scope="module")
def open_farm(tmp_path_factory):
    yield from running_farm(tmp_path_factory, "dashboard-no-limits", "--rate-limit", "0")


def browser(farm, address: str) -> httpx.Client:
    """A client sending from ``address`` (any 127.x.y.z reaches the server on Linux): its own address buckets."""
    return httpx.Client(base_url=farm.url, timeout=30, transport=httpx.HTTPTransport(local_address=address))


def sign_in(http: httpx.Client, access_id: str, key: str) -> httpx.Response:
    return http.post("/web/signin", json={"accessId": access_id, "accessKey": key}, headers=WEB)


def refused(response: httpx.Response) -> dict:
    """A throttled dashboard answer: HTTP 429, Retry-After, the usual envelope with code 429 and a sentence."""
    assert response.status_code == 429, response.text
    assert int(response.headers["Retry-After"]) >= 1
    assert "set-cookie" not in response.headers
    payload = response.json()
    assert payload["code"] == 429 and payload["result"] is False and payload["data"] is None, payload
    assert set(payload) >= {"version", "result", "code", "message", "data", "serverTime", "requestId"}, payload
    return payload


def test_sign_in_brute_force_is_throttled_even_for_the_right_key_until_it_waits(farm):
    (user,) = make_users(farm, "guessed")
    with browser(farm, "127.0.0.11") as http:
        for guess in range(BURST):  # a full bucket: the first failures are plain wrong-key answers
            answer = check_envelope(sign_in(http, user.access_id, f"guess-{guess}"))
            assert answer["code"] == 602 and "set-cookie" not in answer
        right = refused(sign_in(http, user.access_id, user.access_key))  # the right key now: refused all the same
        assert re.fullmatch(r"Too many failed sign-ins from this address; wait \d+ seconds? and try again\.",
                            right["message"]), right
        codes, messages = [], set()
        for guess in range(20):
            response = sign_in(http, user.access_id, f"more-{guess}")
            codes.append(response.json()["code"])
            if response.status_code == 429:
                messages.add(re.sub(r"\d+ seconds?", "N seconds", refused(response)["message"]))
        assert 429 in codes and set(codes) <= {602, 429}, codes
        # a refused right key reads exactly like a refused wrong one: throttling does not tell which guess was right
        assert messages == {re.sub(r"\d+ seconds?", "N seconds", right["message"])}, messages

        (bystander,) = make_users(farm, "bystander")
        with browser(farm, "127.0.0.12") as elsewhere:  # another address and another user: not slowed at all
            assert check_envelope(sign_in(elsewhere, bystander.access_id, bystander.access_key))["code"] == 200
            # the guessed access id is throttled from every address: many addresses cannot guess one key together
            other = refused(sign_in(elsewhere, user.access_id, "guess-from-elsewhere"))
            assert re.fullmatch(r"Too many failed sign-ins for this access id; wait \d+ seconds? and try again\.",
                                other["message"]), other

        deadline = time.monotonic() + WAIT_LIMIT
        while True:  # waiting as told lets the right key in
            response = sign_in(http, user.access_id, user.access_key)
            if response.status_code != 429 or time.monotonic() > deadline:
                break
            time.sleep(int(response.headers["Retry-After"]))
        assert check_envelope(response)["code"] == 200 and "rayfarm_session" in response.cookies
        assert check_envelope(http.get("/web/me"))["data"]["userName"] == "guessed"


def test_right_sign_ins_and_bad_requests_cost_nothing(farm):
    (user,) = make_users(farm, "regular")
    with browser(farm, "127.0.0.13") as http:
        for _ in range(3 * BURST):
            assert check_envelope(sign_in(http, user.access_id, user.access_key))["code"] == 200
        for _ in range(3 * BURST):  # no key at all: refused for its content, not a guess
            assert check_envelope(http.post("/web/signin", json={"accessId": user.access_id}, headers=WEB))["code"] == 601
        for guess in range(BURST):  # the bucket is still full
            assert check_envelope(sign_in(http, user.access_id, f"wrong-{guess}"))["code"] == 602
        refused(sign_in(http, user.access_id, user.access_key))


def test_dashboard_calls_share_the_users_bucket_with_their_signed_calls(farm):
    mia, ned = make_users(farm, "mia", "ned")
    raw = Raw(farm, mia)
    with browser(farm, "127.0.0.14") as web_mia, browser(farm, "127.0.0.15") as web_ned:
        assert check_envelope(sign_in(web_mia, mia.access_id, mia.access_key))["code"] == 200
        assert check_envelope(sign_in(web_ned, ned.access_id, ned.access_key))["code"] == 200
        for _ in range(BURST - 2):
            assert check_envelope(web_mia.post(WEB_PROFILE, json={}, headers=WEB))["code"] == 200
        for _ in range(2):  # signed calls of the same access id spend the same tokens
            assert raw.call(PROFILE, {})["code"] == 200
        answer = refused(web_mia.post(WEB_PROFILE, json={}, headers=WEB))
        assert answer["message"].startswith("Too many requests from this access id; slow down to 0.5 per second and "
                                            "try again in "), answer
        assert raw.call(PROFILE, {})["code"] == 429  # the dashboard's calls counted for the signed API too
        refused(web_mia.get("/web/counts"))
        refused(web_mia.get("/web/me"))
        thumbnail = web_mia.get("/web/thumbnails/1/1/a.jpg")
        assert thumbnail.status_code == 429 and int(thumbnail.headers["Retry-After"]) >= 1
        assert thumbnail.json()["error"].startswith("Too many requests from this access id")
        assert check_envelope(web_ned.post(WEB_PROFILE, json={}, headers=WEB))["code"] == 200  # ned has his own

        deadline = time.monotonic() + WAIT_LIMIT
        while True:
            response = web_mia.post(WEB_PROFILE, json={}, headers=WEB)
            if response.status_code != 429 or time.monotonic() > deadline:
                break
            time.sleep(int(response.headers["Retry-After"]))
        assert check_envelope(response)["code"] == 200
    raw.close()


def test_calls_without_a_session_count_against_the_address(farm):
    with browser(farm, "127.0.0.16") as http:
        codes = [http.get("/web/me").json()["code"] for _ in range(BURST + 10)]
        assert codes[:BURST] == [602] * BURST and 429 in codes and set(codes) <= {602, 429}, codes
        answer = refused(http.get("/web/me"))
        assert answer["message"].startswith("Too many requests from this address without a dashboard session"), answer


def test_rate_limit_0_turns_the_dashboard_limits_off(open_farm):
    (user,) = make_users(open_farm, "free")
    with browser(open_farm, "127.0.0.17") as http:
        codes = [check_envelope(sign_in(http, user.access_id, f"guess-{i}"))["code"] for i in range(4 * BURST)]
        assert codes == [602] * (4 * BURST)
        assert check_envelope(sign_in(http, user.access_id, user.access_key))["code"] == 200
        codes = [check_envelope(http.post(WEB_PROFILE, json={}, headers=WEB))["code"] for _ in range(6 * BURST)]
        assert codes == [200] * (6 * BURST)
