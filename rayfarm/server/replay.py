"""The replay guard: each (access id, nonce) is accepted once inside the signing time window.

Checked in memory first. Where several server processes share the database (PostgreSQL, or
``--processes N``), the nonce is also inserted at once (``ON CONFLICT DO NOTHING``): the database is
the only shared truth. With one process on SQLite, nonces of read-only calls are written behind
(at most ``FLUSH_SECONDS`` later, in one transaction) so a read never takes SQLite's write lock;
nonces of calls that change state are written before the call runs. After a restart the guard
reloads the window from the database.
"""

import threading

from rayfarm.store import nonces
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
            rows = nonces.seen_since(conn, now - 2 * self.window)
        with self._lock:
            for access_id, nonce, seen_at in rows:
                self._seen.setdefault((access_id, nonce), seen_at)
            self._loaded = True

    def accept(self, access_id: str, nonce: str, now: float, changes_state: bool) -> bool:
        """Whether this nonce is new (and now remembered); False for a replay."""
        if not self._loaded:
            self._load(now)
        key = (access_id, nonce)
        with self._lock:
            if key in self._seen:
                return False
            self._seen[key] = now
        if self.shared or changes_state:
            with self.db.write() as conn:
                if not nonces.remember(conn, access_id, nonce, now):
                    return False
        else:
            with self._lock:
                self._pending.append({"access_id": access_id, "nonce": nonce, "seen_at": now})
        return True

    def flush(self) -> None:
        """Write the nonces remembered only in memory so far."""
        with self._lock:
            pending, self._pending = self._pending, []
        if pending:
            with self.db.write() as conn:
                nonces.remember_many(conn, pending)

    def forget_older_than(self, cutoff: float) -> None:
        with self._lock:
            self._seen = {key: seen for key, seen in self._seen.items() if seen >= cutoff}
        with self.db.write() as conn:
            nonces.forget_older_than(conn, cutoff)
