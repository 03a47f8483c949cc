"""The replay guard survives restarts: a nonce once accepted is refused again after the server restarts."""

import signal
import time

from tests.farmproc import wait_for
from tests.integration.support import Raw

PROFILE = "/api/render/setUp/queryUserProfile"  # read-only: its nonce is written behind (server/replay.py)
CREATE = "/api/render/submit/createTask"  # changes state: its nonce is written before it runs


def test_nonces_are_refused_after_a_restart_and_after_a_crash(farm):
    raw = Raw(farm, farm.create_user("artist"))
    try:
        read = raw.headers(PROFILE, {})
        write = raw.headers(CREATE, {"count": 1})
        assert raw.call(PROFILE, {}, headers=read)["code"] == 200
        assert raw.call(CREATE, {"count": 1}, headers=write)["code"] == 200
        assert raw.call(PROFILE, {}, headers=read)["code"] == 603

        farm.stop()  # SIGTERM: pending nonces are written on the way out
        farm.start()
        assert raw.call(PROFILE, {}, headers=read)["code"] == 603
        assert raw.call(CREATE, {"count": 1}, headers=write)["code"] == 603

        late = raw.headers(PROFILE, {})
        assert raw.call(PROFILE, {}, headers=late)["code"] == 200
        time.sleep(1.5)  # the write-behind period has passed
        farm.stop(signal.SIGKILL)
        farm.start()
        wait_for(lambda: raw.call(PROFILE, {})["code"] == 200, 10, "the restarted server to answer")
        assert raw.call(PROFILE, {}, headers=late)["code"] == 603
    finally:
        raw.close()
