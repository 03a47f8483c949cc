"""Read side of the Renderbus API: task lists, task info, frames, totals (no writes here)."""

import math
from collections import defaultdict

from sqlalchemy import Connection, String, and_, case, cast, func, or_, select

from rayfarm.domain import states
from rayfarm.domain.eta import estimate
from rayfarm.domain.paths import OUTPUT_BID, output_name
from rayfarm.domain.states import FrameStatus as F
from rayfarm.protocol.codes import ApiError, Code
from rayfarm.store.schema import frames, labels, tasks, users, workers
from rayfarm.store.tasks import unknown
from rayfarm.store.users import User

MAX_PAGE_SIZE = 1000
# number of frames (images) in a chunk row
FRAMES_IN_CHUNK = (frames.c.end_frame - frames.c.start_frame) / frames.c.step + 1


def _ms(seconds: float | None) -> int | None:
    return int(seconds * 1000) if seconds else None


def page(items: list, total: int, page_num: int, page_size: int) -> dict:
    return {"pageCount": math.ceil(total / page_size) if total else 0, "pageNum": page_num, "total": total,
            "size": page_size, "items": items}


Counts = dict[int, tuple[int, float, float, int]]
NONE = (0, 0.0, 0.0, 0)


def _counts(conn: Connection, task_ids: list[int]) -> dict[int, Counts]:
    """task id -> frame status -> (frames, summed execute seconds, average progress, chunks)."""
    result: dict[int, Counts] = defaultdict(dict)
    if not task_ids:
        return result
    query = (select(frames.c.task_id, frames.c.status, func.sum(FRAMES_IN_CHUNK),
                    func.coalesce(func.sum(frames.c.execute_seconds), 0.0), func.avg(frames.c.progress), func.count())
             .where(frames.c.task_id.in_(task_ids)).group_by(frames.c.task_id, frames.c.status))
    for task_id, status, n, seconds, progress, chunks in conn.execute(query):
        result[task_id][status] = (int(n or 0), float(seconds or 0.0), float(progress or 0.0), int(chunks))
    return result


def _eta(status: int, counts: Counts) -> dict:
    """``etaSeconds`` (time left) and ``secondsPerFrame`` (measured) of a waiting or rendering task; null otherwise."""
    found = None
    if status in (states.TaskStatus.WAITING, states.TaskStatus.RENDERING):
        done, rendering = counts.get(int(F.DONE), NONE), counts.get(int(F.RENDERING), NONE)
        waiting = sum(counts.get(int(s), NONE)[0] for s in (F.WAITING, F.HELD, F.WAITING_PREPROCESS))
        found = estimate(done_frames=done[0], done_seconds=done[1], waiting_frames=waiting,
                         rendering_frames=rendering[0], rendering_progress=rendering[2], rendering_chunks=rendering[3])
    return {"etaSeconds": found.seconds if found else None, "secondsPerFrame": found.per_frame if found else None}


def _labels(conn: Connection, task_ids: list[int]) -> dict[int, list[str]]:
    result: dict[int, list[str]] = defaultdict(list)
    if task_ids:
        for task_id, name in conn.execute(select(labels.c.task_id, labels.c.name)
                                          .where(labels.c.task_id.in_(task_ids)).order_by(labels.c.name)):
            result[task_id].append(name)
    return result


def _item(row, user_name: str, counts: Counts, task_labels: list[str]) -> dict:
    def n(*statuses: int) -> int:
        return sum(counts.get(int(s), NONE)[0] for s in statuses)

    status = states.public_code(row.status)
    pre = row.pre_status
    total = row.total_frames or 0
    done = n(F.DONE)
    running_progress = counts.get(int(F.RENDERING), NONE)
    progress = 0.0
    if total:
        progress = round(100.0 * (done + running_progress[0] * running_progress[2] / 100.0) / total, 1)
    submitted = row.submitted_at is not None
    return {
        "id": row.id,
        "taskAlias": row.alias,
        "sceneName": row.scene_name or "",
        "taskStatus": status,
        "statusText": f"render_task_status_{status}",
        "preTaskStatus": pre,
        "preStatusText": f"render_task_status_{pre}" if pre is not None else None,
        "totalFrames": total,
        "executingFrames": n(F.RENDERING),
        "doneFrames": done,
        "failedFrames": n(F.FAILED, F.TIMED_OUT),
        "abortFrames": n(F.STOPPED),
        "waitingCount": n(F.WAITING, F.HELD, F.WAITING_PREPROCESS),
        "progress": progress,
        "framesRange": row.frames_range or "",
        "projectName": row.project_name or "",
        "createDate": _ms(row.created_at),
        "submitDate": _ms(row.submitted_at),
        "startTime": _ms(row.started_at),
        "completedDate": _ms(row.completed_at),
        "renderDuration": round(sum(c[1] for c in counts.values()), 3),
        **_eta(row.status, counts),  # rayfarm: from the done chunks' times
        "jobStopTime": row.job_stop_time or None,  # rayfarm: task.json job_stop_time, the chunk time-out (s)
        "framesPerChunk": row.per_chunk,  # rayfarm: task.json frames_per_task
        "userName": user_name,
        "userId": row.user_id,
        "producer": row.producer,
        "artist": row.artist,
        "taskLevel": row.priority,
        "taskUserLevel": row.priority,
        "taskLimit": row.task_limit,
        "overTimeStop": row.over_time_stop,
        "taskOverTime": row.over_time_stop,
        "outputFileName": output_name(row.id, row.scene_name) if submitted else None,
        "cgId": row.cg_id,
        "software": row.software,
        "labels": task_labels,
        "isDelete": 0 if row.is_deleted else 1,
        "cloneOriginalId": row.clone_original_id,
        "outUserId": row.out_user_id,
        # a plain task (no layers): what rayvision_sync's RayvisionManageTask reads as one leaf task
        "isOpen": 0,
        "respRenderingTaskList": [],
        "bid": OUTPUT_BID,
        "pools": list(row.pool_tags or []),  # rayfarm: the node tags it may render on ([]: any node)
        "layerParentId": 0,
        "stopType": row.stop_type,
    }


def _items(conn: Connection, rows: list) -> list[dict]:
    ids = [row.id for row in rows]
    counts = _counts(conn, ids)
    task_labels = _labels(conn, ids)
    names = dict(conn.execute(select(users.c.id, users.c.name).where(users.c.id.in_({r.user_id for r in rows}))).all())
    return [_item(row, names.get(row.user_id, ""), counts.get(row.id, {}), task_labels.get(row.id, [])) for row in rows]


def check_page(page_num: int | None, page_size: int | None, default_size: int = 100) -> tuple[int, int]:
    page_num = 1 if page_num is None else page_num
    page_size = default_size if page_size is None else page_size
    if page_num < 1:
        raise ApiError(Code.INVALID_PARAMETER, "pageNum starts at 1; ask for page 1 or later.")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ApiError(Code.INVALID_PARAMETER, f"pageSize must be between 1 and {MAX_PAGE_SIZE}; ask for smaller pages.")
    if page_num * page_size > 10**9:
        raise ApiError(Code.INVALID_PARAMETER, "pageNum is too large; there are not that many records.")
    return page_num, page_size


def task_list(conn: Connection, user: User, *, page_num: int, page_size: int, status_list: list[int] | None,
              keyword: str | None, start: float | None, end: float | None, recycle: bool) -> dict:
    where = [tasks.c.user_id == user.id, tasks.c.is_deleted == recycle, tasks.c.submitted_at.is_not(None)]
    if status_list:
        where.append(tasks.c.status.in_(status_list))
    if keyword:
        pattern = f"%{keyword.replace('%', '').replace('_', '')}%"
        conditions = [tasks.c.scene_name.like(pattern), tasks.c.alias == keyword]
        if keyword.isdigit() and len(keyword) < 12:
            conditions.append(tasks.c.id == int(keyword))
        conditions.append(cast(tasks.c.id, String).like(pattern))
        where.append(or_(*conditions))
    if start is not None:
        where.append(tasks.c.submitted_at >= start)
    if end is not None:
        where.append(tasks.c.submitted_at <= end)
    total = conn.scalar(select(func.count()).select_from(tasks).where(*where))
    rows = conn.execute(select(tasks).where(*where).order_by(tasks.c.submitted_at.desc(), tasks.c.id.desc())
                        .limit(page_size).offset((page_num - 1) * page_size)).all()
    return page(_items(conn, rows), total, page_num, page_size)


def task_info(conn: Connection, user: User, ids: list[int]) -> dict:
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        raise ApiError(Code.MISSING_PARAMETER, "taskIds is empty; pass at least one task id.")
    if len(wanted) > MAX_PAGE_SIZE:
        raise ApiError(Code.INVALID_PARAMETER, f"At most {MAX_PAGE_SIZE} task ids fit in one call; split the list.")
    rows = {r.id: r for r in conn.execute(select(tasks).where(tasks.c.id.in_(wanted), tasks.c.user_id == user.id))}
    missing = [i for i in wanted if i not in rows]
    if missing:
        raise unknown(missing)
    items = _items(conn, [rows[i] for i in wanted])
    return page(items, len(items), 1, max(len(items), 1))


def frame_item(row, node_name: str | None) -> dict:
    return {
        "id": row.id,
        "taskId": row.task_id,
        "frameIndex": row.frame_index,
        "frameStatus": row.status,
        "frameStatusText": f"task_frame_status_{row.status}",
        "frameType": row.frame_type,
        "startTime": _ms(row.started_at) or 0,
        "endTime": _ms(row.ended_at) or 0,
        "frameExecuteTime": int(round(row.execute_seconds or 0)),
        "recommitFlag": row.recommit_flag,
        "attempts": row.attempts,
        "nodeId": row.node_id,
        "nodeName": node_name,
        "averageCpu": round(row.avg_cpu, 1) if row.avg_cpu is not None else None,
        "averageMemory": int(row.avg_memory) if row.avg_memory is not None else None,
        "progress": round(row.progress or 0.0, 1),
        "errorMessage": row.error,
    }


def task_frames(conn: Connection, user: User, task_id: int, *, page_num: int, page_size: int,
                keyword: str | None, statuses: list[int] | None = None) -> dict:
    owner = conn.scalar(select(tasks.c.user_id).where(tasks.c.id == task_id))
    if owner != user.id:
        raise unknown([task_id])
    where = [frames.c.task_id == task_id]
    if keyword:
        where.append(frames.c.frame_index.like(f"%{keyword.replace('%', '')}%"))
    if statuses:
        where.append(frames.c.status.in_(statuses))
    total = conn.scalar(select(func.count()).select_from(frames).where(*where))
    joined = frames.outerjoin(workers, workers.c.id == frames.c.node_id)
    query = (select(frames, workers.c.name.label("node_name")).select_from(joined)
             .where(*where).order_by(frames.c.seq).limit(page_size).offset((page_num - 1) * page_size))
    items = [frame_item(row, row.node_name) for row in conn.execute(query)]
    # rayfarm: the task's chunks by status, whatever the filter (what the dashboard's frame filters count)
    counted = conn.execute(select(frames.c.status, func.count()).where(frames.c.task_id == task_id)
                           .group_by(frames.c.status))
    return {**page(items, total, page_num, page_size), "chunkCounts": {str(s): int(n) for s, n in counted}}


def frame_stats(conn: Connection, user: User) -> dict:
    status = frames.c.status

    def total_of(*wanted: int):
        return func.coalesce(func.sum(case((status.in_([int(s) for s in wanted]), FRAMES_IN_CHUNK), else_=0)), 0)

    query = (select(total_of(F.RENDERING), total_of(F.DONE), total_of(F.FAILED, F.TIMED_OUT),
                    total_of(F.WAITING, F.HELD, F.WAITING_PREPROCESS), total_of(F.STOPPED),
                    func.coalesce(func.sum(FRAMES_IN_CHUNK), 0))
             .select_from(frames.join(tasks, tasks.c.id == frames.c.task_id))
             .where(and_(tasks.c.user_id == user.id, tasks.c.is_deleted.is_(False))))
    executing, done, failed, waiting, stopped, total = (int(v) for v in conn.execute(query).one())
    return {"executingFramesTotal": executing, "doneFramesTotal": done, "failedFramesTotal": failed,
            "waitingFramesTotal": waiting, "abandonFramesTotal": stopped, "totalFrames": total}


def finished_task(conn: Connection, task_id: int):
    """The task if it finished with done frames (25, 30) and is not deleted, else None (a preview is due)."""
    return conn.execute(select(tasks).where(
        tasks.c.id == task_id, tasks.c.is_deleted.is_(False),
        tasks.c.status.in_([int(states.TaskStatus.DONE), int(states.TaskStatus.DONE_WITH_FAILURES)]))).first()


def task_row(conn: Connection, user: User, task_id: int):
    row = conn.execute(select(tasks).where(tasks.c.id == task_id, tasks.c.user_id == user.id)).first()
    if row is None:
        raise unknown([task_id])
    return row


def owned_frame(conn: Connection, user: User, frame_id: int, task_id: int | None = None):
    """The frame row if it belongs to the user (and to ``task_id`` if given); None for anything else (one answer
    for frames that do not exist and frames of other users)."""
    query = (select(frames).select_from(frames.join(tasks, tasks.c.id == frames.c.task_id))
             .where(frames.c.id == frame_id, tasks.c.user_id == user.id))
    if task_id is not None:
        query = query.where(frames.c.task_id == task_id)
    return conn.execute(query).first()


def chunk_of_task(conn: Connection, task_id: int, *, frame_id: int | None = None, frame_index: str | None = None):
    """One chunk of a task, by frame id or by its frame index label (e.g. "5-8"); None if it has no such chunk."""
    query = select(frames).where(frames.c.task_id == task_id)
    query = query.where(frames.c.id == frame_id) if frame_id else query.where(frames.c.frame_index == frame_index)
    return conn.execute(query).first()


def latest_done_chunks(conn: Connection, task_id: int, frame_type: int | None = None, limit: int = 20) -> list:
    """The task's done chunks, the most recently finished first (at most ``limit``)."""
    query = select(frames).where(frames.c.task_id == task_id, frames.c.status == int(F.DONE))
    if frame_type is not None:
        query = query.where(frames.c.frame_type == frame_type)
    return conn.execute(query.order_by(frames.c.ended_at.desc(), frames.c.id.desc()).limit(limit)).all()
