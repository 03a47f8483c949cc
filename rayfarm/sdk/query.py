"""Queries, with the same names, signatures and requests as the official SDK's QueryOperator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rayfarm.sdk.connect import Connect
from rayfarm.sdk.urls import FarmUrl, given


class QueryOperator:
    """API query operation."""

    def __init__(self, connect: Connect) -> None:
        """Initialize instance.

        Args:
            connect: The connection every call goes through.
        """
        self._connect = connect

    def platforms(self) -> list[dict]:
        """Get platforms.

        Returns:
            Platforms info, e.g. ``[{"platform": 2, "name": "rayfarm", ...}]``.
        """
        zone = 1 if "renderbus" in self._connect.domain.lower() else 2
        return self._connect.post(self._connect.url.queryPlatforms, {"zone": zone})

    def get_task_list(self, page_num: int = 1, page_size: int = 100, status_list: list[int] | None = None,
                      search_keyword: str | None = None, start_time: str | None = None,
                      end_time: str | None = None, recycle_flag: int | None = None) -> dict:
        """Get task list, newest first.

        Args:
            page_num: Current page (from 1).
            page_size: Numbers displayed per page (1..1000).
            status_list: Only tasks whose status is in this list.
            search_keyword: Scene name or task id.
            start_time: Submitted at or after, ``yyyy-MM-dd HH:mm:ss``.
            end_time: Submitted at or before, ``yyyy-MM-dd HH:mm:ss``.
            recycle_flag: 1 to list deleted tasks (the recycle bin) instead.

        Returns:
            ``{"pageCount", "pageNum", "total", "size", "items": [...]}``; a page past the end has no items.
        """
        data = {"pageNum": page_num, "pageSize": page_size,
                **given(statusList=status_list, searchKeyword=search_keyword, startTime=start_time, endTime=end_time,
                        recycleFlag=recycle_flag)}
        return self._connect.post(self._connect.url.getTaskList, data)

    def iter_tasks(self, page_size: int = 100, status_list: list[int] | None = None,
                   search_keyword: str | None = None, start_time: str | None = None,
                   end_time: str | None = None, recycle_flag: int | None = None) -> Iterator[dict]:
        """Yield every task matching the filters, page after page, until an empty page.

        Args: as :meth:`get_task_list`, without ``page_num``.

        Yields:
            Task items, as in ``get_task_list(...)["items"]``.
        """
        page_num = 1
        while True:
            answer = self.get_task_list(page_num=page_num, page_size=page_size, status_list=status_list,
                                        search_keyword=search_keyword, start_time=start_time, end_time=end_time,
                                        recycle_flag=recycle_flag)
            items = (answer or {}).get("items") or []
            if not items:
                return
            yield from items
            page_num += 1

    def task_info(self, task_ids_list: list[int]) -> dict:
        """Get task details.

        Args:
            task_ids_list: Task ID list.

        Returns:
            A page whose ``items`` describe the tasks, in the order asked.
        """
        data = {
            "taskIds": task_ids_list,
        }
        return self._connect.post(self._connect.url.queryTaskInfo, data)

    def task_frames(self, task_id: int, page_num: int = 1, page_size: int = 100,
                    search_keyword: str | None = None, status: list[int] | None = None) -> dict:
        """Get task rendering frame details.

        Args:
            task_id: The task ID number.
            page_num: Current page number.
            page_size: Displayed data size per page.
            search_keyword: Part of a frame index (e.g. ``"5-8"``) to look for.
            status: Only frames in these frame statuses (1 waiting, 2 rendering, 3 stopped, 4 done,
                5 failed, 6 waiting for pre-processing, 8 waiting for priority frames, 11 timed out);
                ``total`` then counts only those.

        Returns:
            A page of frame items (``id``, ``frameIndex``, ``frameStatus``, ...).
        """
        data: dict[str, Any] = {
            "taskId": task_id,
            "pageNum": page_num,
            "pageSize": page_size,
        }
        if search_keyword:
            data["searchKeyword"] = search_keyword
        if status:
            data["status"] = [int(code) for code in status]
        return self._connect.post(self._connect.url.queryTaskFrames, data)

    def all_frame_status(self) -> dict:
        """Get the overview of task rendering frame.

        Returns:
            ``{"executingFramesTotal", "doneFramesTotal", "failedFramesTotal", "waitingFramesTotal",
            "abandonFramesTotal", "totalFrames"}`` over the caller's tasks.
        """
        return self._connect.post(self._connect.url.queryAllFrameStats)

    def restart_failed_frames(self, task_param_list: list[int], status: list[int] | None = None) -> dict:
        """Render the failed frames of tasks again.

        Args:
            task_param_list: Task ID list.
            status: Frame statuses to render again instead of the default (failed and timed out).

        Returns:
            ``{"count": n}``: how many frames wait to render again.
        """
        data: dict[str, Any] = {"taskIds": task_param_list}
        if status:
            data["status"] = status
        return self._connect.post(self._connect.url.recommitTasks, data)

    @staticmethod
    def _frame_selection(task_id: int, select_all: int, ids_list: list[int] | None,
                         status: list[int] | None) -> dict:
        if select_all == 1:
            if not task_id:
                raise AttributeError("task_id is required when select_all is 1")
            data: dict[str, Any] = {"taskId": task_id, "selectAll": select_all}
        else:
            if not ids_list:
                raise AttributeError("ids is required when select_all is 0")
            data = {"taskId": task_id, "ids": ids_list, "selectAll": select_all}
        if status:
            data["status"] = status
        return data

    def restart_frame(self, task_id: int, select_all: int = 1, ids_list: list[int] | None = None,
                      status: list[int] | None = None) -> dict:
        """Render chosen frames of a task again.

        Args:
            task_id: Task ID number.
            select_all: 1 to choose every frame of the task, 0 to choose ``ids_list``.
            ids_list: Frame ids (the ``id`` of ``task_frames`` items), when ``select_all`` is 0.
            status: Only frames in these frame statuses.

        Returns:
            ``{"count": n}``: how many frames wait to render again.
        """
        return self._connect.post(self._connect.url.recommitTaskFrames,
                                  self._frame_selection(task_id, select_all, ids_list, status))

    def stop_frame(self, task_id: int, select_all: int = 1, ids_list: list[int] | None = None,
                   status: list[int] | None = None) -> dict:
        """Stop chosen waiting or rendering frames of a task.

        Args:
            task_id: Task ID number.
            select_all: 1 to choose every frame of the task, 0 to choose ``ids_list``.
            ids_list: Frame ids, when ``select_all`` is 0.
            status: Only frames in these frame statuses.

        Returns:
            ``{"count": n}``: how many frames were stopped.
        """
        return self._connect.post(self._connect.url.stopTaskFrames,
                                  self._frame_selection(task_id, select_all, ids_list, status))

    def get_frame_thumbnall(self, frame_id: int, frame_status: int = 4) -> list[str]:
        """Thumbnail paths of a done frame (the official SDK's spelling; ``get_frame_thumbnail`` too).

        Args:
            frame_id: Frame id.
            frame_status: State of the frame; only done frames (4) have thumbnails.

        Returns:
            Thumbnail paths, to download with the file calls.
        """
        return self._connect.post(self._connect.url.loadingFrameThumbnail, {"id": frame_id, "frameStatus": frame_status})

    get_frame_thumbnail = get_frame_thumbnall

    def get_all_frames(self, task_id: int, start_page: int = 1, end_page: int = 2000,
                       page_size: int = 100) -> dict[str, dict]:
        """Every frame item of a task, by frame index (``"1"``, ``"5-8"``), reading pages in turn.

        Args:
            task_id: Task ID number.
            start_page: The first page to read.
            end_page: The last page to read (it stops earlier at an empty page).
            page_size: Frames per page.
        """
        frames: dict[str, dict] = {}
        for number in range(int(start_page), int(end_page) + 1):
            page = self.task_frames(task_id=int(task_id), page_num=number, page_size=page_size)
            if not page["items"]:
                break
            for item in page["items"]:
                frames[item["frameIndex"]] = item
        return frames

    def get_custome_frames(self, task_id: int, restartframes: list[str]) -> dict:
        """Render again the frames of a task named by frame index (e.g. ``["2-4[1]", "10"]``); the
        official SDK's spelling, ``get_custom_frames`` too."""
        frames = self.get_all_frames(task_id)
        ids = [item["id"] for index, item in frames.items() if str(index) in restartframes]
        return self.restart_frame(task_id=task_id, select_all=0, ids_list=ids)

    get_custom_frames = get_custome_frames

    def error_detail(self, code: str | None = None, codes: list[str] | None = None, language: int = 0) -> list[dict]:
        """What error or analysis tip codes mean and what to do about them.

        Args:
            code: One code, e.g. ``"46003"`` (a tips.json code) or ``"718"`` (an answer's code).
            codes: Several codes.
            language: 0 Chinese, 1 English; rayfarm answers in English either way (the ``...Cn`` fields too).

        Returns:
            ``[{"code", "type" (1 error, 0 warning), "desDescriptionEn", "desSolutionEn", ...}]``; codes the
            farm does not use are left out (``[]`` when none is known).
        """
        if not code and not codes:
            raise AssertionError("code and codes at least one")
        data: dict[str, Any] = {"language": language}
        if code:
            data["code"] = code
        if codes:
            data["codes"] = codes
        return self._connect.post(self._connect.url.queryAnalyseErrorDetail, data)

    def get_transfer_server_msg(self) -> dict:
        """The transfer servers: none for Raysync or Aspera (``null``); ``rayfarmTransfer`` gives the HTTP paths."""
        zone = 1 if "renderbus" not in self._connect.domain else 2
        return self._connect.post(self._connect.url.getServerInfo, {"zone": zone})

    def get_raysync_user_key(self) -> dict:
        """``{"raySyncUserKey": "", "userName", "platform", ...}``: rayfarm has no Raysync, so the key is empty."""
        return self._connect.post(self._connect.url.getRaySyncUserKey)

    # ---------------------------------------------------------------- rayfarm's own

    def workers(self) -> list[dict]:
        """Get the farm's render nodes.

        Returns:
            One item per node: ``id``, ``name``, ``state`` (idle, busy, lost, offline), ``disabled``,
            ``draining``, ``cpu``, ``memUsed``, ``lastSeen`` and its ``running`` chunks (only the
            caller's own chunks unless the caller is an administrator).
        """
        return self._connect.post(FarmUrl.workerList)

    def set_worker_mode(self, worker_ids: list[int], mode: str) -> dict:
        """Enable, disable or drain render nodes (administrators only).

        Args:
            worker_ids: Node ids (from :meth:`workers`).
            mode: ``"enable"``; ``"disable"`` (running chunks go back to waiting now); or
                ``"drain"`` (running chunks finish, then the node takes no more).

        Returns:
            ``{"updated": n}``.
        """
        return self._connect.post(FarmUrl.workerSetMode, {"workerIds": list(worker_ids), "mode": mode})

    def farm_summary(self) -> dict:
        """Get farm totals: tasks and frames by status code and nodes by state.

        Returns:
            ``{"tasks": {"5": n, ...}, "frames": {"4": n, ...}, "workers": {"idle": n, ...}, "user": {...}}``.
        """
        return self._connect.post(FarmUrl.farmSummary)
