"""Start the server: migrate the database once, then serve with uvicorn (one or several processes)."""

import logging
import os
from pathlib import Path

import uvicorn

from rayfarm.config import Settings
from rayfarm.server.app import make_app
from rayfarm.server.farm import Farm

ENV_SHARED_ROOTS = "RAYFARM_SHARED_ROOTS"
ENV_RATE_LIMIT, ENV_RATE_BURST = "RAYFARM_RATE_LIMIT", "RAYFARM_RATE_BURST"
ENV_TRUSTED_PROXIES = "RAYFARM_TRUSTED_PROXIES"


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


def serve(settings: Settings, host: str, port: int, log_level: str = "info", processes: int = 1) -> None:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = dict(host=host, port=port, log_level=log_level, access_log=log_level == "debug",
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
    uvicorn.run("rayfarm.server.run:app_from_env", factory=True, workers=processes, **options)
