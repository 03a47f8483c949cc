"""The one table of signed API routes: Renderbus task, query and account routes, frame, file and output routes,
farm-admin routes."""

from rayfarm.server.account import ACCOUNT_ROUTES
from rayfarm.server.admin import ADMIN_ROUTES
from rayfarm.server.files import FILE_ROUTES
from rayfarm.server.frames import FRAME_ROUTES
from rayfarm.server.hardware import HARDWARE_ROUTES
from rayfarm.server.outputs import OUTPUT_ROUTES
from rayfarm.server.progress import PROGRESS_ROUTES
from rayfarm.server.renderbus import ROUTES, Route

TABLE: dict[str, Route] = {**ROUTES, **ACCOUNT_ROUTES, **FRAME_ROUTES, **PROGRESS_ROUTES, **HARDWARE_ROUTES, **FILE_ROUTES,
                           **OUTPUT_ROUTES, **ADMIN_ROUTES}
