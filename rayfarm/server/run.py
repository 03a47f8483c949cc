"""Start the server process: migrate the database, then serve with uvicorn."""

import logging

import uvicorn

from rayfarm.config import Settings
from rayfarm.server.app import make_app
from rayfarm.server.farm import Farm


def build(settings: Settings):
    farm = Farm(settings)
    farm.db.migrate()
    return make_app(farm)


def serve(settings: Settings, host: str, port: int, log_level: str = "info") -> None:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = build(settings)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=log_level == "debug",
                timeout_graceful_shutdown=5)
