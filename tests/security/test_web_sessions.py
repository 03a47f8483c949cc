"""Signing out of the dashboard ends the session on the server, for every server process and after restarts.

Before issue #15 the sign-out only asked the browser to drop its cookie: a copied cookie worked on for its
12 hours. Sessions are rows now (rayfarm/store/web_sessions.py): the signed cookie names one.
"""

import httpx
import pytest

from tests.support.farms import make_users, running_farm
from tests.support.signed import WEB, check_envelope

COOKIE = "rayfarm_session"


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    # two API processes on one database: a session ended through one is ended for the other too
    yield from running_farm(tmp_path_factory, "web-sessions", "--processes", "2")


def signed_in(farm, user) -> str:
    """A fresh browser signs in; its session cookie."""
    with httpx.Client(base_url=farm.url, timeout=30) as browser:
        answer = browser.post("/web/signin", json={"accessId": user.access_id, "accessKey": user.access_key},
                              headers=WEB)
        assert check_envelope(answer)["code"] == 200
        return answer.cookies[COOKIE]


def code_with(farm, cookie: str, tries: int = 8) -> set[int]:
    """The codes of /web/me with this cookie, each on a new connection (so both server processes answer)."""
    codes = set()
    for _ in range(tries):
        with httpx.Client(base_url=farm.url, timeout=30, cookies={COOKIE: cookie}) as browser:
            codes.add(check_envelope(browser.get("/web/me"))["code"])
    return codes


def sign_out(farm, cookie: str, path: str = "/web/signout") -> None:
    with httpx.Client(base_url=farm.url, timeout=30, cookies={COOKIE: cookie}) as browser:
        assert check_envelope(browser.post(path, json={}, headers=WEB))["code"] == 200


def test_a_copied_cookie_stops_working_when_its_session_signs_out(farm):
    (user,) = make_users(farm, "copier")
    cookie = signed_in(farm, user)
    other = signed_in(farm, user)  # the same user in another browser
    assert code_with(farm, cookie) == {200}
    sign_out(farm, cookie)
    assert code_with(farm, cookie) == {602}  # a copy of the cookie, kept by whoever had it, is refused
    assert code_with(farm, other) == {200}  # the other session goes on


def test_sign_out_everywhere_ends_every_session_of_the_user_only(farm):
    alice, bob = make_users(farm, "everywhere-alice", "everywhere-bob")
    laptop, desk, bobs = signed_in(farm, alice), signed_in(farm, alice), signed_in(farm, bob)
    sign_out(farm, laptop, "/web/signout-everywhere")
    assert code_with(farm, laptop) == {602} and code_with(farm, desk) == {602}
    assert code_with(farm, bobs) == {200}
    assert code_with(farm, signed_in(farm, alice)) == {200}  # signing in again works


def test_sessions_outlive_a_restart_and_so_does_signing_out(farm):
    (user,) = make_users(farm, "restarter")
    kept, ended = signed_in(farm, user), signed_in(farm, user)
    sign_out(farm, ended)
    farm.stop()
    farm.start()
    assert code_with(farm, kept) == {200}
    assert code_with(farm, ended) == {602}
