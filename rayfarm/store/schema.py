"""The database schema (SQLAlchemy Core). Migrations in ``migrations/`` create exactly this."""

from sqlalchemy import (
                        JSON,
                        BigInteger,
                        Boolean,
                        Column,
                        Float,
                        ForeignKey,
                        Index,
                        Integer,
                        MetaData,
                        String,
                        Table,
                        Text,
                        UniqueConstraint,
                        text,
)

from rayfarm.domain.quotas import DEFAULT_ACTIVE_TASKS

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("access_id", String(64), nullable=False, unique=True),
    Column("access_key", Text, nullable=False),  # encrypted with the farm secret (see docs/design.md)
    Column("allow_commands", Boolean, nullable=False, default=False),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("email", String(255), nullable=False, default=""),
    Column("created_at", Float, nullable=False),
    # Quotas (rayfarm/store/quotas.py): NULL is unlimited. storage_bytes is what the user stores now.
    Column("max_active_tasks", Integer, default=DEFAULT_ACTIVE_TASKS,
           server_default=text(str(DEFAULT_ACTIVE_TASKS))),
    Column("max_frames_per_task", Integer),
    Column("max_storage_bytes", BigInteger),
    Column("storage_bytes", BigInteger, nullable=False, default=0, server_default=text("0")),
    # updateUserSetting's taskOverTimeSec (store/users.py); NULL: never set (12 h)
    Column("task_over_time", Integer),
    sqlite_autoincrement=True,
)

tasks = Table(
    "tasks", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("alias", String(32), nullable=False),
    Column("status", Integer, nullable=False),
    Column("pre_status", Integer),
    Column("is_deleted", Boolean, nullable=False, default=False),
    Column("priority", Integer, nullable=False, default=50),  # taskUserLevel on the wire: higher first
    Column("task_limit", Integer),
    Column("over_time_stop", Integer),
    Column("out_user_id", BigInteger),
    Column("artist", String(255)),
    Column("producer", String(255)),
    Column("clone_original_id", Integer),
    Column("scene_name", String(255), nullable=False, default=""),
    Column("project_name", String(255), nullable=False, default=""),
    Column("cg_id", Integer),
    Column("software", String(32)),
    Column("frames_range", Text, nullable=False, default=""),
    Column("total_frames", Integer, nullable=False, default=0),
    Column("per_chunk", Integer, nullable=False, default=1),
    Column("pause_after_test", Boolean, nullable=False, default=False),
    Column("job_stop_time", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False, default=3),
    Column("render", JSON),  # what the renderer needs: scene, camera, size, format, command
    # node tags the task may render on (hardware configs); SQL NULL: any node (none_as_null: the scheduler reads
    # this column for every candidate task, and a NULL costs no JSON decoding)
    Column("pool_tags", JSON(none_as_null=True)),
    Column("submit_hash", String(64)),
    Column("stop_type", String(32)),
    Column("created_at", Float, nullable=False),
    Column("submitted_at", Float),
    Column("started_at", Float),
    Column("completed_at", Float),
    Index("ix_tasks_user_deleted_submitted", "user_id", "is_deleted", "submitted_at"),
    Index("ix_tasks_status", "status"),
    Index("ix_tasks_user_status", "user_id", "status"),  # a user's active and unsubmitted tasks (quotas)
    sqlite_autoincrement=True,
)

task_files = Table(
    "task_files", metadata,
    Column("task_id", Integer, ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(32), primary_key=True),
    Column("content", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)

labels = Table(
    "labels", metadata,
    Column("task_id", Integer, ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(128), primary_key=True),
)

projects = Table(
    "projects", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("status", Integer, nullable=False, default=1),
    UniqueConstraint("user_id", "name"),
    sqlite_autoincrement=True,
)

frames = Table(
    "frames", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", Integer, ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),  # order inside the task: priority chunks first
    Column("frame_index", String(64), nullable=False),
    Column("start_frame", Integer, nullable=False),
    Column("end_frame", Integer, nullable=False),
    Column("step", Integer, nullable=False, default=1),
    Column("frame_type", Integer, nullable=False),
    Column("status", Integer, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("recommit_flag", Integer, nullable=False, default=0),
    Column("node_id", Integer),
    Column("lease_id", String(64)),
    Column("lease_expires", Float),
    Column("started_at", Float),
    Column("ended_at", Float),
    Column("execute_seconds", Float),
    Column("progress", Float, nullable=False, default=0.0),
    Column("avg_cpu", Float),
    Column("avg_memory", Float),
    Column("error", Text),
    Column("stop_reason", String(32)),
    Index("ix_frames_task_status_seq", "task_id", "status", "seq"),
    # partial on PostgreSQL (migration 0004): only leased frames have a lease
    Index("ix_frames_status_lease", "status", "lease_expires", postgresql_where=text("status = 2")),
    Index("ix_frames_lease_id", "lease_id", postgresql_where=text("lease_id IS NOT NULL")),
    sqlite_autoincrement=True,
)

# the replay guard: signed requests accepted inside the time window (store/replays.py)
seen_requests = Table(
    "seen_requests", metadata,
    Column("access_id", String(64), primary_key=True),
    Column("signature", String(64), primary_key=True),
    Column("seen_at", Float, nullable=False, index=True),
)

# signed-in dashboard sessions (store/web_sessions.py): the cookie names one; signing out deletes it
web_sessions = Table(
    "web_sessions", metadata,
    Column("id", String(64), primary_key=True),  # random, carried in the signed session cookie
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False, index=True),
)

settings = Table(
    "settings", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

workers = Table(
    "workers", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("hostname", String(255), nullable=False, default=""),
    Column("state", String(16), nullable=False, default="idle"),  # idle, busy, lost, offline
    Column("disabled", Boolean, nullable=False, default=False),
    Column("draining", Boolean, nullable=False, default=False),
    Column("slots", Integer, nullable=False, default=1),
    Column("cores", Integer, nullable=False, default=1),
    Column("memory", BigInteger, nullable=False, default=0),
    Column("gpu", String(255), nullable=False, default=""),
    Column("software", JSON),  # {"blender": "3.4.1", "command": ""}
    Column("tags", JSON),
    Column("version", String(32), nullable=False, default=""),
    Column("cpu", Float),
    Column("mem_used", BigInteger),
    Column("session", String(64)),  # changes at every register: a restarted worker is a new session
    Column("registered_at", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    sqlite_autoincrement=True,
)

# node pools: one per worker tag, the hardware configs of the Renderbus API (store/pools.py). The row with the
# empty tag (id 1) is "Default": any node.
pools = Table(
    "pools", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tag", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    sqlite_autoincrement=True,
)

blocklist = Table(
    "blocklist", metadata,
    Column("task_id", Integer, ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("worker_id", Integer, ForeignKey("workers.id", ondelete="CASCADE"), primary_key=True),
    Column("failures", Integer, nullable=False, default=0),
)

uploads = Table(
    "uploads", metadata,
    Column("id", String(64), primary_key=True),  # random: the upload URL's capability
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("local_path", Text, nullable=False),
    Column("storage_path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("completed_at", Float),
)

# a user's named render environments (store/render_envs.py): software, version, OS; at most one is the default
render_envs = Table(
    "render_envs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("name", String(128), nullable=False),  # editName
    Column("cg_id", Integer, nullable=False),
    Column("software", String(32), nullable=False),  # rayfarm's name: "blender", "command"
    Column("cg_version", String(64), nullable=False),
    Column("render_system", Integer, nullable=False),  # 0 Linux, 1 Windows
    Column("render_layer_type", Integer),
    Column("project_path", String(1024)),
    Column("is_default", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("user_id", "name"),
    sqlite_autoincrement=True,
)

# the audit trail (store/audit.py): every state-changing call of the signed API and the dashboard ...
call_records = Table(
    "call_records", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("access_id", String(64), nullable=False),
    Column("action", String(64), nullable=False),  # the route's Renderbus name: "stopTask"
    Column("path", String(128), nullable=False),
    Column("detail", String(255), nullable=False, default=""),  # the call's other parameters, short
    Column("channel", String(16), nullable=False),  # "sdk" (the signed API) or "dashboard"
    Column("address", String(64), nullable=False),  # the client's address
    Column("code", Integer, nullable=False),  # 200: accepted; else the refusal's code
    Column("message", String(500), nullable=False, default=""),  # the refusal's sentence
    Column("request_id", String(32), nullable=False),
    Index("ix_call_records_user_id_at", "user_id", "at"),
    Index("ix_call_records_at", "at"),
    sqlite_autoincrement=True,
)

# ... the task ids each call named (no foreign key: a refused call may name ids that do not exist) ...
call_record_tasks = Table(
    "call_record_tasks", metadata,
    Column("record_id", Integer, ForeignKey("call_records.id", ondelete="CASCADE"), primary_key=True),
    Column("task_id", Integer, primary_key=True, index=True),
)

# ... and every sign-in: the dashboard's (success or failure) and the signed API's queryUserProfile
login_records = Table(
    "login_records", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("user_id", Integer, ForeignKey("users.id")),  # NULL: an access id no user has
    Column("access_id", String(128), nullable=False),  # the access id used (or tried)
    Column("channel", String(16), nullable=False),
    Column("address", String(64), nullable=False),
    Column("code", Integer, nullable=False),
    Column("message", String(500), nullable=False, default=""),
    Index("ix_login_records_user_id_at", "user_id", "at"),
    Index("ix_login_records_at", "at"),
    sqlite_autoincrement=True,
)
