"""node pools: hardware configs from worker tags, and the pool a task may render on

``pools`` holds one row per worker tag (the hardware configs of hardwareConfig/list); its first row, the
empty tag, is "Default" (any node). ``tasks.pool_tags`` lists the tags a task may render on (NULL: any
node). Tags of nodes already registered get their pools now.

Revision ID: 0009
Revises: 0008
"""
import json
import time

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pools = op.create_table(
        "pools",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pools")),
        sa.UniqueConstraint("tag", name=op.f("uq_pools_tag")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.add_column(sa.Column("pool_tags", sa.JSON(), nullable=True))
    now = time.time()
    op.bulk_insert(pools, [{"tag": "", "created_at": now}])  # first row: id 1, "Default"
    tags: list[str] = []
    for (value,) in op.get_bind().execute(sa.text("SELECT tags FROM workers")):
        found = json.loads(value) if isinstance(value, str) else value
        tags += [t for t in (found or []) if isinstance(t, str) and t and t not in tags]
    if tags:
        op.bulk_insert(pools, [{"tag": tag[:64], "created_at": now} for tag in tags])


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.drop_column("pool_tags")
    op.drop_table("pools")
