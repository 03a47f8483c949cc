"""The audit trail: who did what, when, from where, and how it ended (rayfarm/server/audit.py writes it).

A call record is written in the transaction of the change it records (an accepted call), or in one of its
own right after a refusal; sign-ins have records of their own. Pages are newest first.
"""

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, insert, select

from rayfarm.store.schema import call_record_tasks, call_records, login_records, users


@dataclass(frozen=True)
class Entry:
    """One call, as recorded."""

    at: float
    user_id: int
    access_id: str
    action: str
    path: str
    detail: str
    channel: str
    address: str
    code: int
    message: str
    request_id: str
    task_ids: tuple[int, ...] = ()


def record_call(conn: Connection, entry: Entry) -> int:
    """Write a call's record (and the task ids it named); its id."""
    record_id = conn.execute(insert(call_records).values(
        at=entry.at, user_id=entry.user_id, access_id=entry.access_id[:64], action=entry.action[:64],
        path=entry.path[:128], detail=entry.detail[:255], channel=entry.channel, address=entry.address[:64],
        code=entry.code, message=entry.message[:500], request_id=entry.request_id[:32])).inserted_primary_key[0]
    ids = sorted(set(entry.task_ids))
    if ids:
        conn.execute(insert(call_record_tasks), [{"record_id": record_id, "task_id": task_id} for task_id in ids])
    return record_id


def record_login(conn: Connection, *, at: float, user_id: int | None, access_id: str, channel: str, address: str,
                 code: int, message: str = "") -> None:
    conn.execute(insert(login_records).values(at=at, user_id=user_id, access_id=access_id[:128], channel=channel,
                                              address=address[:64], code=code, message=message[:500]))


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")


def _page(total: int, page_num: int, page_size: int, items: list[dict]) -> dict:
    return {"pageCount": math.ceil(total / page_size) if total else 0, "pageNum": page_num, "total": total,
            "size": page_size, "items": items}


def _window(query, column, start: float | None, end: float | None):
    if start is not None:
        query = query.where(column >= start)
    if end is not None:
        query = query.where(column < end)
    return query


def call_page(conn: Connection, *, user_id: int | None, page_num: int, page_size: int, start: float | None,
              end: float | None, task_ids: list[int] | None = None) -> dict:
    """A page of call records, newest first: ``user_id``'s (None: everyone's), at ``start`` or later and before
    ``end``, only those naming one of ``task_ids`` when given."""
    where = []
    if user_id is not None:
        where.append(call_records.c.user_id == user_id)
    if task_ids:
        where.append(call_records.c.id.in_(select(call_record_tasks.c.record_id)
                                           .where(call_record_tasks.c.task_id.in_(task_ids))))
    counted = _window(select(func.count()).select_from(call_records).where(*where), call_records.c.at, start, end)
    total = int(conn.scalar(counted) or 0)
    query = (select(call_records, users.c.name.label("user_name"))
             .select_from(call_records.join(users, users.c.id == call_records.c.user_id)).where(*where))
    query = _window(query, call_records.c.at, start, end)
    rows = conn.execute(query.order_by(call_records.c.at.desc(), call_records.c.id.desc())
                        .limit(page_size).offset((page_num - 1) * page_size)).all()
    named: dict[int, list[int]] = {row.id: [] for row in rows}
    if named:
        for link in conn.execute(select(call_record_tasks).where(call_record_tasks.c.record_id.in_(list(named)))
                                 .order_by(call_record_tasks.c.task_id)):
            named[link.record_id].append(link.task_id)
    items = [{"id": row.id, "userId": row.user_id, "userName": row.user_name, "accessId": row.access_id,
              "taskType": row.path.rsplit("/", 2)[-2], "buttonName": row.action,
              "taskIds": named[row.id], "createTime": _clock(row.at), "createTimeMs": int(row.at * 1000),
              "detail": row.detail, "channel": row.channel, "ip": row.address, "code": row.code,
              "result": "success" if row.code == 200 else "refused", "message": row.message, "path": row.path,
              "requestId": row.request_id} for row in rows]
    return _page(total, page_num, page_size, items)


def login_page(conn: Connection, *, user_id: int | None, page_num: int, page_size: int, start: float | None,
               end: float | None) -> dict:
    """A page of sign-in records, newest first: ``user_id``'s (None: everyone's, unknown access ids too)."""
    where = [] if user_id is None else [login_records.c.user_id == user_id]
    counted = _window(select(func.count()).select_from(login_records).where(*where), login_records.c.at, start, end)
    total = int(conn.scalar(counted) or 0)
    query = (select(login_records, users.c.name.label("user_name"))
             .select_from(login_records.outerjoin(users, users.c.id == login_records.c.user_id)).where(*where))
    rows = conn.execute(_window(query, login_records.c.at, start, end)
                        .order_by(login_records.c.at.desc(), login_records.c.id.desc())
                        .limit(page_size).offset((page_num - 1) * page_size)).all()
    items = [{"id": row.id, "userId": row.user_id, "userName": row.user_name, "accessId": row.access_id,
              "loginType": row.channel, "loginStatus": 1 if row.code == 200 else 0, "loginTime": _clock(row.at),
              "loginTimeMs": int(row.at * 1000), "ip": row.address, "code": row.code, "message": row.message}
             for row in rows]
    return _page(total, page_num, page_size, items)
