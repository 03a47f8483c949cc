"""The replay guard survives restarts: a signed call once accepted is refused again after the server restarts."""

import signal

from sqlalchemy import select

from rayfarm.store.schema import seen_requests
from tests.support.processes import wait_for
from tests.support.signed import CREATE, PROFILE, Raw
from tests.support.snapshots import engine

# PROFILE is read-only: a single SQLite server writes its signature behind (server/replay.py);
# CREATE changes state: its signature is written before it runs.


def remembered(farm, headers: dict) -> bool:
    """The signed call is in the database's replay memory."""
    query = select(seen_requests.c.seen_at).where(seen_requests.c.access_id == headers["accessId"],
                                                  seen_requests.c.signature == headers["signature"])
    with engine(farm).connect() as conn:
        return conn.execute(query).first() is not None


def test_nonces_are_refused_after_a_restart_and_after_a_crash(farm):
    raw = Raw(farm, farm.create_user("artist"))
    try:
        read = raw.headers(PROFILE, {})
        write = raw.headers(CREATE, {"count": 1})
        assert raw.call(PROFILE, {}, headers=read)["code"] == 200
        assert raw.call(CREATE, {"count": 1}, headers=write)["code"] == 200
        assert raw.call(PROFILE, {}, headers=read)["code"] == 603

        farm.stop()  # SIGTERM: pending signatures are written on the way out
        farm.start()
        assert raw.call(PROFILE, {}, headers=read)["code"] == 603
        assert raw.call(CREATE, {"count": 1}, headers=write)["code"] == 603

        late = raw.headers(PROFILE, {})
        assert raw.call(PROFILE, {}, headers=late)["code"] == 200
        wait_for(lambda: remembered(farm, late), 60, "the server to write the call's signature behind")
        farm.stop(signal.SIGKILL)
        farm.start()
        wait_for(lambda: raw.call(PROFILE, {})["code"] == 200, 60, "the restarted server to answer")
        assert raw.call(PROFILE, {}, headers=late)["code"] == 603
    finally:
        raw.close()
