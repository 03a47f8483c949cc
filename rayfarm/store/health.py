"""Whether the farm's database can be used: it answers, and its schema is this version's (`rayfarm doctor`)."""

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from rayfarm.store.db import MIGRATIONS


def schema_state(url: str) -> tuple[str | None, str]:
    """(the database's migration, or None when it has none yet; the newest this code knows). Raises
    ConnectionError with the driver's reason when the database does not answer."""
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head() or ""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision(), head
    except SQLAlchemyError as exc:
        raise ConnectionError(" ".join(str(getattr(exc, "orig", None) or exc).split())[:300]) from None
    finally:
        engine.dispose()
