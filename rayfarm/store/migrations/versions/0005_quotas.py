"""per-user quotas: active tasks, frames per task, storage (limits and the bytes stored)

Existing users get the defaults: 1000 active tasks, unlimited frames per task and storage. Their stored
bytes start at 0: count what is already on disk with ``rayfarm user quota NAME --recount``.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("max_active_tasks", sa.Integer(), nullable=True, server_default=sa.text("1000")))
        batch_op.add_column(sa.Column("max_frames_per_task", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("max_storage_bytes", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("storage_bytes", sa.BigInteger(), nullable=False, server_default=sa.text("0")))
    op.create_index("ix_tasks_user_status", "tasks", ["user_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_tasks_user_status", table_name="tasks")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("storage_bytes")
        batch_op.drop_column("max_storage_bytes")
        batch_op.drop_column("max_frames_per_task")
        batch_op.drop_column("max_active_tasks")
