"""The migrations create exactly the schema the code uses (on SQLite and on PostgreSQL)."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from rayfarm.store.schema import metadata
from tests.support.farms import make_farm


def test_migrations_match_the_schema(tmp_path):
    farm = make_farm(tmp_path)
    with farm.db.read() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    assert diff == []
