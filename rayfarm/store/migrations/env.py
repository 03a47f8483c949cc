"""Alembic environment: runs on the connection handed over by rayfarm.store.db.Database.migrate."""

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from rayfarm.store.schema import metadata

config = context.config
connection = config.attributes.get("connection")


def run(conn) -> None:
    context.configure(connection=conn, target_metadata=metadata, render_as_batch=conn.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection)
else:  # alembic's own command line: `alembic -x url=... upgrade head`
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        run(conn)
        conn.commit()
