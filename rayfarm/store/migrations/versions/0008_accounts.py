"""account side of the Renderbus API: a user's task over-time setting, render environments, the audit trail

users.task_over_time holds updateUserSetting's taskOverTimeSec (NULL: never set). render_envs holds each
user's named environments (software, version, OS; at most one default). call_records (with the task ids of
each call in call_record_tasks) and login_records are the audit trail: every state-changing call and every
sign-in. Nothing existing changes.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("task_over_time", sa.Integer(), nullable=True))
    op.create_table(
        "render_envs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("cg_id", sa.Integer(), nullable=False),
        sa.Column("software", sa.String(length=32), nullable=False),
        sa.Column("cg_version", sa.String(length=64), nullable=False),
        sa.Column("render_system", sa.Integer(), nullable=False),
        sa.Column("render_layer_type", sa.Integer(), nullable=True),
        sa.Column("project_path", sa.String(length=1024), nullable=True),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_render_envs_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_render_envs")),
        sa.UniqueConstraint("user_id", "name", name=op.f("uq_render_envs_user_id_name")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "call_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("access_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=128), nullable=False),
        sa.Column("detail", sa.String(length=255), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("code", sa.Integer(), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_call_records_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_records")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_call_records_user_id_at", "call_records", ["user_id", "at"])
    op.create_index("ix_call_records_at", "call_records", ["at"])
    op.create_table(
        "call_record_tasks",
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["call_records.id"], name=op.f("fk_call_record_tasks_record_id_call_records"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("record_id", "task_id", name=op.f("pk_call_record_tasks")),
    )
    op.create_index(op.f("ix_call_record_tasks_task_id"), "call_record_tasks", ["task_id"])
    op.create_table(
        "login_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("access_id", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("code", sa.Integer(), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_login_records_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_records")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_login_records_user_id_at", "login_records", ["user_id", "at"])
    op.create_index("ix_login_records_at", "login_records", ["at"])


def downgrade() -> None:
    op.drop_table("login_records")
    op.drop_table("call_record_tasks")
    op.drop_table("call_records")
    op.drop_table("render_envs")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("task_over_time")
