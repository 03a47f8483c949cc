"""Sign-in throttling behind a reverse proxy: per real client address and per access id, never per proxy.

Without `--trusted-proxy` nobody's X-Forwarded-For is believed (not even loopback's: uvicorn trusts
127.0.0.1 by default, so any local client could pick a fresh address, hence a fresh bucket, per guess).
With it, the proxy's forwarded client address is the one throttled: one user's failed sign-ins do not lock
out everyone behind the proxy, and a client cannot escape its bucket by sending its own X-Forwarded-For.
The addresses in X-Forwarded-For below are documentation addresses carried in a header: every request
goes to the server on 127.0.0.1.
"""

import re

import httpx
import pytest

from tests.support.farms import make_users, running_farm
from tests.support.signed import WEB, check_envelope

BURST = 5  # failed sign-ins allowed at once per address and per access id (rayfarm/server/ratelimit.py)


@pytest.fixture(scope="module")
def direct(tmp_path_factory):
    yield from running_farm(tmp_path_factory, "no-proxy")


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    yield from running_farm(tmp_path_factory, "behind-proxy", "--trusted-proxy", "127.0.0.0/8")


def sign_in(farm, access_id: str, key: str, forwarded: str | None = None, source: str = "127.0.0.1") -> dict:
    headers = {**WEB, **({"X-Forwarded-For": forwarded} if forwarded else {})}
    with httpx.Client(base_url=farm.url, timeout=30, transport=httpx.HTTPTransport(local_address=source)) as http:
        response = http.post("/web/signin", json={"accessId": access_id, "accessKey": key}, headers=headers)
    answer = check_envelope(response) if response.status_code == 200 else response.json()
    return answer


def test_without_a_trusted_proxy_a_forged_forwarded_address_is_ignored(direct):
    # guesses at unknown ids (so no access id's bucket runs out), each claiming another forwarded address, sent
    # from 127.0.0.1: the one address uvicorn would believe by default
    codes = [sign_in(direct, f"AKguess{i}", "x", forwarded=f"198.51.100.{i}")["code"]
             for i in range(BURST + 3)]
    assert codes[:BURST] == [602] * BURST and 429 in codes[BURST:] and set(codes) == {602, 429}, codes


def test_behind_a_trusted_proxy_each_client_address_has_its_own_bucket(proxied):
    alice, bob = make_users(proxied, "proxied-alice", "proxied-bob")
    for i in range(BURST):  # one client behind the proxy guesses at unknown ids
        assert sign_in(proxied, f"AKnone{i}", "x", forwarded="203.0.113.5")["code"] == 602
    for i in range(3):  # until its bucket is empty (a token comes back every 2 s)
        if sign_in(proxied, f"AKmore{i}", "x", forwarded="203.0.113.5")["code"] == 429:
            break
    throttled = sign_in(proxied, alice.access_id, alice.access_key, forwarded="203.0.113.5")
    assert throttled["code"] == 429 and "from this address" in throttled["message"], throttled
    # prepending an address of its own does not help: the proxy appends the real one, which is what counts
    spoofed = sign_in(proxied, alice.access_id, alice.access_key, forwarded="198.51.100.7, 203.0.113.5")
    assert spoofed["code"] == 429, spoofed
    # everyone else behind the same proxy signs in as usual
    assert sign_in(proxied, bob.access_id, bob.access_key, forwarded="203.0.113.6")["code"] == 200
    assert sign_in(proxied, alice.access_id, alice.access_key, forwarded="203.0.113.7")["code"] == 200


def test_guesses_at_one_access_id_from_many_addresses_are_throttled_for_that_id(proxied):
    carol, dan = make_users(proxied, "proxied-carol", "proxied-dan")
    for i in range(BURST):
        assert sign_in(proxied, carol.access_id, f"guess-{i}", forwarded=f"192.0.2.{i + 1}")["code"] == 602
    for i in range(3):  # until the id's bucket is empty (a token comes back every 2 s)
        if sign_in(proxied, carol.access_id, f"again-{i}", forwarded=f"192.0.2.{i + 50}")["code"] == 429:
            break
    refused = sign_in(proxied, carol.access_id, "guess-more", forwarded="192.0.2.99")
    assert refused["code"] == 429 and re.search(r"for this access id; wait \d+ seconds?", refused["message"]), refused
    assert sign_in(proxied, dan.access_id, dan.access_key, forwarded="192.0.2.99")["code"] == 200
