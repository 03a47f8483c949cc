"""A user's render environments (Renderbus' "user plugin configs"): named software + version + OS, one default;
and what submit does with them: a task.json without a version takes the default's, and a version that no
registered node offers is refused (the rule is ``domain/software.py``).

Names are the user's own: another user's environment of the same name is simply not there for them.
"""

import time
from dataclasses import dataclass

from sqlalchemy import Connection, and_, case, delete, insert, select, update

from rayfarm.domain import software as sw
from rayfarm.domain.taskjson import TaskSpec
from rayfarm.protocol.codes import ApiError, Code
from rayfarm.store.schema import render_envs, workers
from rayfarm.store.users import User

DISPLAY = {"blender": "Blender", "command": "command"}  # cgName in answers


@dataclass(frozen=True)
class Env:
    name: str
    cg_id: int
    software: str
    cg_version: str
    render_system: int
    render_layer_type: int | None = None
    project_path: str | None = None


def _unknown(name: str) -> ApiError:
    return ApiError(Code.NOT_FOUND, f"You have no render environment named {name!r}; list yours with "
                                    f"getUserPluginConfig.")


def _values(env: Env) -> dict:
    return dict(cg_id=env.cg_id, software=env.software, cg_version=env.cg_version, render_system=env.render_system,
                render_layer_type=env.render_layer_type, project_path=env.project_path, updated_at=time.time())


def _mine(user: User, name: str):
    return and_(render_envs.c.user_id == user.id, render_envs.c.name == name)


def add(conn: Connection, user: User, env: Env) -> None:
    if conn.execute(select(render_envs.c.id).where(_mine(user, env.name))).first():
        raise ApiError(Code.INVALID_PARAMETER, f"You have a render environment named {env.name!r} already; change it "
                                               f"with editUserPluginConfig or choose another name.")
    conn.execute(insert(render_envs).values(user_id=user.id, name=env.name, is_default=False, created_at=time.time(),
                                            **_values(env)))


def edit(conn: Connection, user: User, env: Env) -> None:
    if conn.execute(update(render_envs).where(_mine(user, env.name)).values(**_values(env))).rowcount == 0:
        raise _unknown(env.name)


def remove(conn: Connection, user: User, name: str) -> None:
    if conn.execute(delete(render_envs).where(_mine(user, name))).rowcount == 0:
        raise _unknown(name)


def set_default(conn: Connection, user: User, name: str) -> None:
    """Make ``name`` the user's one default environment: one statement over all of the user's rows, so two
    concurrent calls queue on the same row locks and the last one wins (never two defaults)."""
    if not conn.execute(select(render_envs.c.id).where(_mine(user, name))).first():
        raise _unknown(name)
    conn.execute(update(render_envs).where(render_envs.c.user_id == user.id)
                 .values(is_default=case((render_envs.c.name == name, True), else_=False)))


def listed(conn: Connection, user: User, *, render_system: int | None = None,
           cg_ids: list[int] | None = None) -> list:
    """The user's environments (of that OS and those software ids when given), by name."""
    query = select(render_envs).where(render_envs.c.user_id == user.id)
    if render_system is not None:
        query = query.where(render_envs.c.render_system == render_system)
    if cg_ids:
        query = query.where(render_envs.c.cg_id.in_(cg_ids))
    return conn.execute(query.order_by(render_envs.c.name)).all()


def default_version(conn: Connection, user_id: int, software: str) -> str | None:
    """The version of the user's default environment, if that environment is for ``software``."""
    return conn.scalar(select(render_envs.c.cg_version).where(
        render_envs.c.user_id == user_id, render_envs.c.is_default.is_(True), render_envs.c.software == software))


def software_versions(conn: Connection, name: str) -> list[str]:
    """The version of ``name`` each registered node offers (one per node that offers it; "" when unknown).
    Every registered node counts, lost or disabled ones too: they may come back."""
    return [str(software[name] or "") for software in conn.scalars(select(workers.c.software))
            if isinstance(software, dict) and name in software]


def apply_at_submit(conn: Connection, user_id: int, spec: TaskSpec) -> None:
    """Fill in the default environment's version when task.json names none; refuse (600) a version that no
    registered node offers (only once some node offers the software with a known version)."""
    if not spec.cg_version:
        spec.cg_version = default_version(conn, user_id, spec.software) or ""
    if spec.cg_version:
        sw.refuse_unknown_version(DISPLAY.get(spec.software, spec.software), spec.cg_version,
                                  software_versions(conn, spec.software))
