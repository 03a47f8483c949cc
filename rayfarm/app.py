"""The server process: the farm's routes assembled into one application (the signed API, the nodes' API,
file transfer, the dashboard), its background jobs (the sweep, replay housekeeping), and how it runs
(uvicorn; one process or several sharing the database).
"""

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool

from rayfarm import web
from rayfarm.config import Settings
from rayfarm.scheduler import sweep as scheduler_sweep
from rayfarm.server import api, files, nodes
from rayfarm.server.farm import Farm
from rayfarm.server.replay import FLUSH_SECONDS
from rayfarm.store import web_sessions, workers

log = logging.getLogger("rayfarm.server")
HOUSEKEEPING_SECONDS = 30.0
PREVIEW_SECONDS = 2.0  # how soon after a task ends its previews are made
ENV_SHARED_ROOTS = "RAYFARM_SHARED_ROOTS"
ENV_RATE_LIMIT, ENV_RATE_BURST = "RAYFARM_RATE_LIMIT", "RAYFARM_RATE_BURST"
ENV_TRUSTED_PROXIES = "RAYFARM_TRUSTED_PROXIES"


def make_app(farm: Farm) -> Starlette:
    def forget_old() -> None:
        """Requests too old to be replayed, dashboard sessions past their expiry."""
        now = time.time()
        farm.replay.forget_older_than(now - 2 * farm.settings.time_window - 60)
        with farm.db.write() as conn:
            web_sessions.forget_expired(conn, now)

    def sweep() -> None:
        """Requeue chunks of lost nodes and expired leases; enforce per-chunk and over-time limits."""
        with farm.db.write() as conn:
            farm.live_nodes = workers.count_live(conn)
            touched = scheduler_sweep.sweep(conn, time.time(), farm.settings.lease_seconds)
        if touched:
            farm.wakeup.notify()
            for task_id in touched:  # a time limit may have ended a task: its previews are due
                farm.previews.notice(task_id)

    def previews() -> None:
        """Contact sheets and preview movies of the tasks that ended lately (ffmpeg runs here, off any request)."""
        farm.previews.make_due(farm.db)

    async def every(seconds: float, job) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await run_in_threadpool(job)
            except Exception:
                log.exception("%s failed; will try again", job.__name__)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        farm.wakeup.bind(asyncio.get_running_loop())
        farm.writer.start()
        farm.logs.start()
        jobs = [asyncio.create_task(every(HOUSEKEEPING_SECONDS, forget_old)),
                asyncio.create_task(every(FLUSH_SECONDS, farm.replay.flush)),
                asyncio.create_task(every(farm.settings.sweep_seconds, sweep)),
                asyncio.create_task(every(PREVIEW_SECONDS, previews))]
        try:
            yield
        finally:
            for job in jobs:
                job.cancel()
            await run_in_threadpool(farm.writer.stop)
            await run_in_threadpool(farm.logs.stop)
            with contextlib.suppress(Exception):
                await run_in_threadpool(farm.replay.flush)
            farm.db.dispose()

    served = api.http_routes(farm)
    routes = [
        *nodes.http_routes(farm),
        *files.http_routes(farm),
        *[r for r in served if r.path != api.CATCH_ALL],  # /healthz, /metrics
        *web.routes(farm),  # the dashboard: /, /web/*
        *[r for r in served if r.path == api.CATCH_ALL],  # /api/...: last, it takes every path under /api
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def build(settings: Settings, migrate: bool = True):
    farm = Farm(settings)
    if migrate:
        farm.db.migrate()
    return make_app(farm)


def app_from_env():
    """App factory for uvicorn's worker processes: settings come from the environment the parent set."""
    roots = [Path(p) for p in os.environ.get(ENV_SHARED_ROOTS, "").split(os.pathsep) if p]
    settings = Settings(data_dir=Path(os.environ["RAYFARM_DATA_DIR"]),
                        database_url=os.environ["RAYFARM_DATABASE_URL"], shared_roots=roots,
                        rate_limit=float(os.environ[ENV_RATE_LIMIT]), rate_burst=int(os.environ[ENV_RATE_BURST]),
                        trusted_proxies=[p for p in os.environ.get(ENV_TRUSTED_PROXIES, "").split(",") if p])
    return build(settings, migrate=False)


def serve(settings: Settings, host: str, port: int, log_level: str = "info", processes: int = 1,
          tls: tuple[Path, Path] | None = None) -> None:
    """Serve the farm; over HTTPS with ``tls`` = (certificate file, key file) in PEM (checked by the caller)."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = dict(host=host, port=port, log_level=log_level, access_log=log_level == "debug",
                   ssl_certfile=str(tls[0]) if tls else None, ssl_keyfile=str(tls[1]) if tls else None,
                   timeout_graceful_shutdown=5,
                   # longer than clients keep idle connections (httpx: 5 s, uvicorn's default too), so a client never
                   # sends on a connection the server is closing that instant (ReadError/reset; bench/load.py saw it)
                   timeout_keep_alive=75,
                   # The client's address (rate limits, sign-in throttling) and scheme come from X-Forwarded-For and
                   # X-Forwarded-Proto only when a --trusted-proxy sent them (uvicorn's ProxyHeadersMiddleware takes
                   # the nearest address no trusted proxy added); by default nobody is believed, loopback included.
                   proxy_headers=bool(settings.trusted_proxies), forwarded_allow_ips=list(settings.trusted_proxies))
    if processes <= 1:
        uvicorn.run(build(settings), **options)
        return
    Farm(settings).db.migrate()  # once, before the processes start
    os.environ["RAYFARM_PROCESSES"] = str(processes)  # nonces then go to the database at once (server/replay.py)
    os.environ["RAYFARM_DATA_DIR"] = str(settings.data_dir)
    os.environ["RAYFARM_DATABASE_URL"] = settings.database_url
    os.environ[ENV_SHARED_ROOTS] = os.pathsep.join(str(r) for r in settings.shared_roots)
    os.environ[ENV_RATE_LIMIT], os.environ[ENV_RATE_BURST] = str(settings.rate_limit), str(settings.rate_burst)
    os.environ[ENV_TRUSTED_PROXIES] = ",".join(settings.trusted_proxies)
    uvicorn.run("rayfarm.app:app_from_env", factory=True, workers=processes, **options)
