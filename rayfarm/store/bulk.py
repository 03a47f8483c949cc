"""Bulk writes that bypass per-row statement building: a 100,000-frame submit is one fast call.

SQLite gets a driver-level ``executemany``; PostgreSQL gets ``COPY`` through psycopg, both in the
caller's transaction.
"""

from sqlalchemy import Connection

FRAME_COLUMNS = ("task_id", "seq", "frame_index", "start_frame", "end_frame", "step", "frame_type", "status")
# columns with defaults that a bulk path must fill itself
FRAME_DEFAULTS = {"attempts": 0, "recommit_flag": 0, "progress": 0.0}


def insert_frames(conn: Connection, rows: list[tuple]) -> None:
    """Insert frame rows given as tuples in FRAME_COLUMNS order."""
    if not rows:
        return
    columns = FRAME_COLUMNS + tuple(FRAME_DEFAULTS)
    tail = tuple(FRAME_DEFAULTS.values())
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        with raw.cursor() as cursor:
            with cursor.copy(f"COPY frames ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row + tail)
            if len(rows) >= 50_000:  # fresh statistics, or the planner may scan a big table for a lease
                cursor.execute("ANALYZE frames")
        return
    marks = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(f"INSERT INTO frames ({', '.join(columns)}) VALUES ({marks})", [row + tail for row in rows])
