"""The replay guard: each signed request (access id + signature) is accepted once inside the time window.

A replay has to repeat the signature (it covers the timestamp, nonce and body: server/auth.py checks
exactly the values it covers), so that is the key: two honest calls that drew the same nonce differ in
their signatures and both pass, and no re-encoding of a captured request gets past.

Checked in memory first. Where several server processes share the database (PostgreSQL, or
``--processes N``), the request is also inserted at once (``ON CONFLICT DO NOTHING``): the database is
the only shared truth. With one process on SQLite, read-only calls are written behind (at most
``FLUSH_SECONDS`` later, in one transaction) so a read never takes SQLite's write lock; calls that
change state are written before they run. After a restart the guard reloads the window from the database.
"""

import threading

from rayfarm.store import replays
from rayfarm.store.db import Database

FLUSH_SECONDS = 1.0


class ReplayGuard:
    def __init__(self, db: Database, window: float, shared: bool):
        self.db = db
        self.window = window
        self.shared = shared
        self._seen: dict[tuple[str, str], float] = {}
        self._pending: list[dict] = []
        self._lock = threading.Lock()
        self._loaded = False

    def _load(self, now: float) -> None:
        with self.db.read() as conn:
            rows = replays.seen_since(conn, now - 2 * self.window)
        with self._lock:
            for access_id, signature, seen_at in rows:
                self._seen.setdefault((access_id, signature), seen_at)
            self._loaded = True

    def accept(self, access_id: str, signature: str, now: float, changes_state: bool) -> bool:
        """Whether this request is new (and now remembered); False for a replay."""
        if not self._loaded:
            self._load(now)
        key = (access_id, signature)
        with self._lock:
            if key in self._seen:
                return False
            self._seen[key] = now
        if self.shared or changes_state:
            with self.db.write() as conn:
                if not replays.remember(conn, access_id, signature, now):
                    return False
        else:
            with self._lock:
                self._pending.append({"access_id": access_id, "signature": signature, "seen_at": now})
        return True

    def flush(self) -> None:
        """Write the requests remembered only in memory so far."""
        with self._lock:
            pending, self._pending = self._pending, []
        if pending:
            with self.db.write() as conn:
                replays.remember_many(conn, pending)

    def forget_older_than(self, cutoff: float) -> None:
        with self._lock:
            self._seen = {key: seen for key, seen in self._seen.items() if seen >= cutoff}
        with self.db.write() as conn:
            replays.forget_older_than(conn, cutoff)
