"""PostgreSQL: index only leased frames by lease id and lease expiry (a waiting frame has neither)

Halves the cost of inserting a big task's frames (COPY) and of every later status change. SQLite
keeps full indexes: it cannot prove that a bound ``status = ?`` matches a partial index's predicate.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_frames_status_lease", table_name="frames")
    op.drop_index("ix_frames_lease_id", table_name="frames")
    op.create_index("ix_frames_status_lease", "frames", ["status", "lease_expires"],
                    postgresql_where=sa.text("status = 2"))
    op.create_index("ix_frames_lease_id", "frames", ["lease_id"], postgresql_where=sa.text("lease_id IS NOT NULL"))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_frames_status_lease", table_name="frames")
    op.drop_index("ix_frames_lease_id", table_name="frames")
    op.create_index("ix_frames_status_lease", "frames", ["status", "lease_expires"])
    op.create_index("ix_frames_lease_id", "frames", ["lease_id"])
