"""The one table of signed API routes: Renderbus-compatible, file, and farm-admin routes."""

from rayfarm.server.admin import ADMIN_ROUTES
from rayfarm.server.files import FILE_ROUTES
from rayfarm.server.renderbus import ROUTES, Route

TABLE: dict[str, Route] = {**ROUTES, **FILE_ROUTES, **ADMIN_ROUTES}
