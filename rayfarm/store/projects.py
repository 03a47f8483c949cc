"""Projects (Renderbus calls them labels in the SDK's TagOperator)."""

from sqlalchemy import Connection, delete, insert, select

from rayfarm.protocol.codes import ApiError, Code
from rayfarm.store.schema import projects
from rayfarm.store.users import User


def list_projects(conn: Connection, user: User) -> dict:
    rows = conn.execute(select(projects.c.id, projects.c.name).where(projects.c.user_id == user.id)
                        .order_by(projects.c.id))
    return {"projectNameList": [{"projectId": row.id, "projectName": row.name} for row in rows]}


def add(conn: Connection, user: User, name: str, status: int) -> None:
    if conn.execute(select(projects.c.id).where(projects.c.user_id == user.id, projects.c.name == name)).first():
        raise ApiError(Code.PROJECT_EXISTS, f"A project named {name!r} exists already; use it or pick another name.")
    conn.execute(insert(projects).values(user_id=user.id, name=name, status=status))


def remove(conn: Connection, user: User, name: str) -> None:
    if conn.execute(delete(projects).where(projects.c.user_id == user.id, projects.c.name == name)).rowcount == 0:
        raise ApiError(Code.NOT_FOUND, f"There is no project named {name!r}; list them with getList.")
