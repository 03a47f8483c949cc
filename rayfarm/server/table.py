"""The one table of signed API routes: Renderbus task and query routes, frame, file and output routes, farm-admin
routes."""

from rayfarm.server.admin import ADMIN_ROUTES
from rayfarm.server.files import FILE_ROUTES
from rayfarm.server.frames import FRAME_ROUTES
from rayfarm.server.outputs import OUTPUT_ROUTES
from rayfarm.server.renderbus import ROUTES, Route

TABLE: dict[str, Route] = {**ROUTES, **FRAME_ROUTES, **FILE_ROUTES, **OUTPUT_ROUTES, **ADMIN_ROUTES}
