"""The farm's own outage is not the nodes' fault.

While no server process sweeps (the farm was down, frozen or cut from its database), render nodes
cannot renew their leases. When sweeping starts again after such a gap, every live node and every
running lease gets a fresh term, so a restart of the server does not throw away the chunks the
nodes kept rendering meanwhile. A node that really died is still found lost one lease term later.
"""

from sqlalchemy import Connection, insert, select, update

from rayfarm.domain.states import FrameStatus as F
from rayfarm.store.schema import frames, settings, workers

KEY = "last_sweep"


def forgive_outage(conn: Connection, now: float, lease_seconds: float) -> bool:
    """Record this sweep; after a gap of more than half a lease term, renew every lease. True if renewed."""
    last = conn.scalar(select(settings.c.value).where(settings.c.key == KEY))
    if last is None:
        conn.execute(insert(settings).values(key=KEY, value=repr(now)))
    else:
        conn.execute(update(settings).where(settings.c.key == KEY).values(value=repr(now)))
    try:
        gap = now - float(last) if last is not None else None
    except ValueError:
        gap = None
    if gap is not None and gap <= lease_seconds / 2:
        return False
    conn.execute(update(workers).where(workers.c.state.in_(["idle", "busy"]), workers.c.last_seen < now)
                 .values(last_seen=now))
    conn.execute(update(frames).where(frames.c.status == int(F.RENDERING), frames.c.lease_expires < now + lease_seconds)
                 .values(lease_expires=now + lease_seconds))
    return True
