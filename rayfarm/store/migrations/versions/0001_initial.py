"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 17:52:06.601761
"""
import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('nonces',
    sa.Column('access_id', sa.String(length=64), nullable=False),
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('seen_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('access_id', 'nonce', name=op.f('pk_nonces'))
    )
    with op.batch_alter_table('nonces', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_nonces_seen_at'), ['seen_at'], unique=False)

    op.create_table('settings',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_settings'))
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('access_id', sa.String(length=64), nullable=False),
    sa.Column('access_key', sa.Text(), nullable=False),
    sa.Column('allow_commands', sa.Boolean(), nullable=False),
    sa.Column('is_admin', sa.Boolean(), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('email', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('access_id', name=op.f('uq_users_access_id')),
    sa.UniqueConstraint('name', name=op.f('uq_users_name')),
    sqlite_autoincrement=True
    )
    op.create_table('workers',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('draining', sa.Boolean(), nullable=False),
    sa.Column('slots', sa.Integer(), nullable=False),
    sa.Column('cores', sa.Integer(), nullable=False),
    sa.Column('memory', sa.BigInteger(), nullable=False),
    sa.Column('gpu', sa.String(length=255), nullable=False),
    sa.Column('software', sa.JSON(), nullable=True),
    sa.Column('tags', sa.JSON(), nullable=True),
    sa.Column('version', sa.String(length=32), nullable=False),
    sa.Column('cpu', sa.Float(), nullable=True),
    sa.Column('mem_used', sa.BigInteger(), nullable=True),
    sa.Column('session', sa.String(length=64), nullable=True),
    sa.Column('registered_at', sa.Float(), nullable=False),
    sa.Column('last_seen', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workers')),
    sa.UniqueConstraint('name', name=op.f('uq_workers_name')),
    sqlite_autoincrement=True
    )
    op.create_table('projects',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_projects_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_projects')),
    sa.UniqueConstraint('user_id', 'name', name=op.f('uq_projects_user_id_name')),
    sqlite_autoincrement=True
    )
    op.create_table('tasks',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('alias', sa.String(length=32), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('pre_status', sa.Integer(), nullable=True),
    sa.Column('is_deleted', sa.Boolean(), nullable=False),
    sa.Column('task_user_level', sa.Integer(), nullable=False),
    sa.Column('task_limit', sa.Integer(), nullable=True),
    sa.Column('over_time_stop', sa.Integer(), nullable=True),
    sa.Column('out_user_id', sa.BigInteger(), nullable=True),
    sa.Column('artist', sa.String(length=255), nullable=True),
    sa.Column('producer', sa.String(length=255), nullable=True),
    sa.Column('clone_original_id', sa.Integer(), nullable=True),
    sa.Column('scene_name', sa.String(length=255), nullable=False),
    sa.Column('project_name', sa.String(length=255), nullable=False),
    sa.Column('cg_id', sa.Integer(), nullable=True),
    sa.Column('software', sa.String(length=32), nullable=True),
    sa.Column('frames_range', sa.Text(), nullable=False),
    sa.Column('total_frames', sa.Integer(), nullable=False),
    sa.Column('per_chunk', sa.Integer(), nullable=False),
    sa.Column('pause_after_test', sa.Boolean(), nullable=False),
    sa.Column('job_stop_time', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('render', sa.JSON(), nullable=True),
    sa.Column('submit_hash', sa.String(length=64), nullable=True),
    sa.Column('stop_type', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('submitted_at', sa.Float(), nullable=True),
    sa.Column('started_at', sa.Float(), nullable=True),
    sa.Column('completed_at', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_tasks_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tasks')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.create_index('ix_tasks_status', ['status'], unique=False)
        batch_op.create_index('ix_tasks_user_deleted_submitted', ['user_id', 'is_deleted', 'submitted_at'], unique=False)

    op.create_table('blocklist',
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('worker_id', sa.Integer(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_blocklist_task_id_tasks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['worker_id'], ['workers.id'], name=op.f('fk_blocklist_worker_id_workers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('task_id', 'worker_id', name=op.f('pk_blocklist'))
    )
    op.create_table('frames',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('frame_index', sa.String(length=64), nullable=False),
    sa.Column('start_frame', sa.Integer(), nullable=False),
    sa.Column('end_frame', sa.Integer(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('frame_type', sa.Integer(), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('recommit_flag', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=True),
    sa.Column('lease_id', sa.String(length=64), nullable=True),
    sa.Column('lease_expires', sa.Float(), nullable=True),
    sa.Column('started_at', sa.Float(), nullable=True),
    sa.Column('ended_at', sa.Float(), nullable=True),
    sa.Column('execute_seconds', sa.Float(), nullable=True),
    sa.Column('progress', sa.Float(), nullable=False),
    sa.Column('avg_cpu', sa.Float(), nullable=True),
    sa.Column('avg_memory', sa.Float(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('stop_reason', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_frames_task_id_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_frames')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('frames', schema=None) as batch_op:
        batch_op.create_index('ix_frames_status_lease', ['status', 'lease_expires'], unique=False)
        batch_op.create_index('ix_frames_task_status_seq', ['task_id', 'status', 'seq'], unique=False)

    op.create_table('labels',
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_labels_task_id_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('task_id', 'name', name=op.f('pk_labels'))
    )
    op.create_table('task_files',
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_task_files_task_id_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('task_id', 'name', name=op.f('pk_task_files'))
    )


def downgrade() -> None:
    op.drop_table('task_files')
    op.drop_table('labels')
    with op.batch_alter_table('frames', schema=None) as batch_op:
        batch_op.drop_index('ix_frames_task_status_seq')
        batch_op.drop_index('ix_frames_status_lease')

    op.drop_table('frames')
    op.drop_table('blocklist')
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_user_deleted_submitted')
        batch_op.drop_index('ix_tasks_status')

    op.drop_table('tasks')
    op.drop_table('projects')
    op.drop_table('workers')
    op.drop_table('users')
    op.drop_table('settings')
    with op.batch_alter_table('nonces', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_nonces_seen_at'))

    op.drop_table('nonces')
