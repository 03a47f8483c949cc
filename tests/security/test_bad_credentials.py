"""Bad credentials get HTTP 200, the code that says what is wrong and an English sentence; nothing runs.

Requests are signed by hand (tests.support.signed.Raw) so that they can be as wrong as needed; every
route's refusals are in test_auth_matrix.py, these are the sentences of the signed API's checks.
"""

import time

import pytest

from tests.support.farms import make_users
from tests.support.signed import CREATE, LIST, PROFILE, Raw, check_envelope


@pytest.fixture(scope="module")
def raw(farm):
    (user,) = make_users(farm, "cora")
    client = Raw(farm, user)
    yield client
    client.close()


def test_bad_signature_is_611(raw):
    raw.refused(PROFILE, {}, 611, "signature", key="wrong-key")
    headers = raw.headers(PROFILE, {"a": 1})
    raw.refused(PROFILE, {"a": 2}, 611, headers=headers)  # body changed after signing
    headers = raw.headers(PROFILE, {})
    headers["platform"] = "9"  # a signed header changed after signing
    raw.refused(PROFILE, {}, 611, headers=headers)
    headers = raw.headers(PROFILE, {})
    del headers["signature"]
    raw.refused(PROFILE, {}, 611, "signature", headers=headers)


def test_signature_for_another_path_or_host_is_611(raw, farm):
    headers = raw.headers(LIST, {})
    raw.refused(PROFILE, {}, 611, headers=headers)
    headers = raw.headers(PROFILE, {})
    response = raw.client.post(f"http://localhost:{farm.port}{PROFILE}", content=b"{}", headers=headers)
    assert check_envelope(response)["code"] == 611


@pytest.mark.parametrize("skew", [-3600, 3600, -301])
def test_stale_or_future_timestamp_is_610(raw, skew):
    raw.refused(PROFILE, {}, 610, "clock", timestamp=int(time.time()) + skew)


def test_timestamp_that_is_not_a_number_is_610(raw):
    headers = raw.headers(PROFILE, {})
    headers["UTCTimestamp"] = "yesterday"
    raw.refused(PROFILE, {}, 610, "UTCTimestamp", headers=headers)


def test_replayed_nonce_is_603_and_does_nothing_twice(raw):
    headers = raw.headers(CREATE, {"count": 1, "taskUserLevel": 50})
    first = raw.call(CREATE, {"count": 1, "taskUserLevel": 50}, headers=headers)
    assert first["code"] == 200
    raw.refused(CREATE, {"count": 1, "taskUserLevel": 50}, 603, "replay", headers=headers)
    (after,) = raw.ok(CREATE, {"count": 1, "taskUserLevel": 50})["taskIdList"]
    assert after == first["data"]["taskIdList"][0] + 1  # the replay created nothing
    # the same nonce in another request (its own signature) is an honest call that drew the same nonce
    assert raw.call(PROFILE, {}, headers=raw.headers(PROFILE, {}, nonce=headers["nonce"]))["code"] == 200


def test_overlong_nonce_is_603(raw):
    raw.refused(PROFILE, {}, 603, "nonce", nonce="n" * 65)


def test_unknown_or_missing_access_id_is_602(raw):
    raw.refused(PROFILE, {}, 602, "accessId", access_id="AKIDnobody", key="whatever")
    headers = raw.headers(PROFILE, {})
    del headers["accessId"]
    raw.refused(PROFILE, {}, 602, "accessId", headers=headers)
    headers["accessId"] = ""
    raw.refused(PROFILE, {}, 602, "accessId", headers=headers)
