"""one name for a task's priority: tasks.task_user_level becomes tasks.priority

The wire keeps Renderbus' names (taskUserLevel, taskLevel); inside, the SDK, the command line and the
scheduler all say priority.

Revision ID: 0007
Revises: 0006
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.alter_column("task_user_level", new_column_name="priority")


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.alter_column("priority", new_column_name="task_user_level")
