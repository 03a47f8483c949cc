"""index frames by lease id (results and heartbeats look chunks up by lease)

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_frames_lease_id", "frames", ["lease_id"])


def downgrade() -> None:
    op.drop_index("ix_frames_lease_id", table_name="frames")
