"""What every request handler needs: settings, database, storage and the key box."""

import os
import threading
import time

from rayfarm.config import Settings, farm_secret
from rayfarm.files.storage import Storage
from rayfarm.files.thumbnails import Thumbnails
from rayfarm.server.logsink import LogSink
from rayfarm.server.metrics import Metrics
from rayfarm.server.previews import Previews
from rayfarm.server.ratelimit import RateLimiter
from rayfarm.server.replay import ReplayGuard
from rayfarm.server.wakeup import Wakeup
from rayfarm.store import users as users_store
from rayfarm.store.db import Database
from rayfarm.store.users import KeyBox, User
from rayfarm.store.writer import Writer

USER_CACHE_SECONDS = 5.0
# All nodes together send at most about this many heartbeats per second: a big farm's nodes beat less often
# (never less often than three times per lease), so heartbeats cannot crowd out leases and results.
HEARTBEAT_BUDGET = 200.0


class Farm:
    def __init__(self, settings: Settings, database: Database | None = None):
        self.settings = settings
        self.db = database or Database(settings.database_url)
        self.keys = KeyBox(farm_secret(settings.data_dir))
        self.storage = Storage(settings.storage, settings.shared_roots)
        self.wakeup = Wakeup()
        self.writer = Writer(self.db)
        self.logs = LogSink(settings.logs)
        self.thumbnails = Thumbnails(self.storage)  # of done chunks' images, made when first asked for
        self.previews = Previews(self.storage, self.thumbnails)  # contact sheets and preview movies of tasks' outputs
        self.metrics = Metrics(self)
        shared = not self.db.is_sqlite or os.environ.get("RAYFARM_PROCESSES", "1") != "1"
        self.replay = ReplayGuard(self.db, settings.time_window, shared)
        self.limiter = RateLimiter(settings.rate_limit, settings.rate_burst)
        self._users: dict[str, tuple[float, User, str]] = {}
        self.live_nodes = 0  # idle or busy nodes, counted by the sweep and on registration
        self._lock = threading.Lock()

    def heartbeat_intervals(self) -> tuple[float, float]:
        """(idle, busy) heartbeat seconds for the nodes: the configured ones, stretched on a big farm."""
        s = self.settings
        floor, cap = self.live_nodes / HEARTBEAT_BUDGET, s.lease_seconds / 3
        return (max(min(max(s.heartbeat_seconds, floor), cap), 0.05),
                max(min(max(s.busy_heartbeat_seconds, floor), cap), 0.05))

    def knows_access_id(self, access_id: str) -> bool:
        """The access id was found in the database lately (no database access: a rate-limit hint only)."""
        return access_id in self._users

    def user_by_access_id(self, access_id: str) -> tuple[User, str] | None:
        """The user and clear key for an access id, cached a few seconds (disable/rotate apply quickly)."""
        now = time.monotonic()
        with self._lock:
            hit = self._users.get(access_id)
        if hit and hit[0] > now:
            return hit[1], hit[2]
        with self.db.read() as conn:
            found = users_store.by_access_id(conn, self.keys, access_id)
        if found is None:
            return None
        with self._lock:
            if len(self._users) > 10_000:
                self._users.clear()
            self._users[access_id] = (now + USER_CACHE_SECONDS, found[0], found[1])
        return found
