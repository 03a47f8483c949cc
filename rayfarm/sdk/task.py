"""Task operations, with the same names, signatures, defaults and requests as the official SDK's TaskOperator."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rayfarm.sdk.connect import Connect
from rayfarm.sdk.errors import RayfarmAPIError
from rayfarm.sdk.urls import given


class TaskOperator:
    """API task related operations."""

    TASK_PARAM = "taskIds"

    def __init__(self, connect: Connect) -> None:
        """Initialize instance.

        Args:
            connect: The connection every call goes through.
        """
        self._connect = connect
        self._has_submit = False
        self._task_id: int | None = None

    def create_task(self, count: int = 1, task_user_level: int = 50, out_user_id: int | None = None,
                    labels: Sequence[str] | None = None, clone_original_id: int | None = None,
                    artist: str | None = None) -> dict:
        """Create a task ID.

        ``createTask`` is not retried once the request may have reached the farm: a repeat would
        reserve other ids.

        Args:
            count: The quantity of task ID.
            task_user_level: Set the user's task level to either 50 or 60, default is 50.
            out_user_id: Non-required, external user ID, used to distinguish users accessing third parties.
            labels: Custom task labels (list or tuple).
            clone_original_id: Clone the original task ID (the clone copies its task.json and
                settings, so it can be submitted at once).
            artist: producer.

        Returns:
            The information of the task, e.g.
            ``{"taskIdList": [1658434], "aliasTaskIdList": ["2W1658434"], "userId": 100093088}``.
        """
        data = {"count": count, "taskUserLevel": task_user_level,
                **given(outUserId=out_user_id, labels=list(labels or ()), artist=artist,
                        cloneOriginalId=int(clone_original_id) if clone_original_id else None)}
        return self._connect.post(self._connect.url.createTask, data, idempotent=False)

    def _generate_task_id(self) -> int:
        """The current task id: a new one when there is none yet or the last one was submitted."""
        if not self._has_submit and self._task_id:
            return self._task_id
        task_id_info = self.create_task(count=1, out_user_id=None)
        task_id_list = (task_id_info or {}).get("taskIdList")
        if not task_id_list:
            raise RayfarmAPIError(1000000, "Failed to create task number!", self._connect.address(
                self._connect.url.createTask))
        self._task_id = int(task_id_list[0])
        self._has_submit = False
        return self._task_id

    @property
    def task_id(self) -> int:
        """int: The ID number of the render task.

        Notes:
            As long as we do not initialize the class again or submit the task successfully, we
            can always continue to get the task id from the class instance.
        """
        return self._generate_task_id()

    def submit_task(self, task_id: int, producer: str | None = None, only_id: bool = False) -> Any:
        """Submit a task to rayvision render farm.

        Submitting a task that was already submitted succeeds without doing anything.

        Args:
            task_id: Submit task ID.
            producer: Producer.
            only_id: Return the task id instead of the farm's answer (and keep the current
                ``task_id``, as the official SDK does).

        Returns:
            The farm's answer (``{"taskId": ...}``), or ``task_id`` when ``only_id`` is true.
        """
        data: dict[str, Any] = {
            "taskId": task_id,
        }
        if producer:
            data["producer"] = producer
        task_info = self._connect.post(self._connect.url.task, data)
        if only_id:
            return task_id
        self._has_submit = True
        return task_info

    def upload_task_json(self, task_id: int, content: dict | str, file_name: str = "task.json") -> Any:
        """Store a configuration file (task.json, upload.json, asset.json or tips.json) of a task not yet submitted.

        Args:
            task_id: The task the file belongs to.
            content: The file's content: a dict (sent as JSON text) or the JSON text itself.
            file_name: ``task.json``, ``upload.json``, ``asset.json`` or ``tips.json``.

        Returns:
            The farm's answer (None).
        """
        text = content if isinstance(content, str) else json.dumps(content)
        data = {
            "taskId": task_id,
            "fileName": file_name,
            "content": text,
        }
        return self._connect.post(self._connect.url.taskJsonFile, data)

    def stop_task(self, task_param_list: list[int]) -> Any:
        """Stop the task.

        Args:
            task_param_list: Task ID list.
        """
        return self._connect.post(self._connect.url.stopTask, {self.TASK_PARAM: task_param_list})

    def start_task(self, task_param_list: list[int]) -> Any:
        """Start task.

        Args:
            task_param_list: Task ID list.
        """
        return self._connect.post(self._connect.url.startTask, {self.TASK_PARAM: task_param_list})

    def abort_task(self, task_param_list: list[int]) -> Any:
        """Give up the task.

        Args:
            task_param_list: Task ID list.
        """
        return self._connect.post(self._connect.url.abandonTask, {self.TASK_PARAM: task_param_list})

    def delete_task(self, task_param_list: list[int]) -> Any:
        """Delete task.

        Args:
            task_param_list: Task ID list.
        """
        return self._connect.post(self._connect.url.deleteTask, {self.TASK_PARAM: task_param_list})

    def update_priority(self, task_id: int, priority: int) -> Any:
        """Update the render priority for the task by given task id.

        Args:
            task_id: The ID number of the render task.
            priority: The priority for the current render task.
        """
        data = {
            "taskId": task_id,
            "taskUserLevel": priority,
        }
        return self._connect.post(self._connect.url.updateTaskUserLevel, data)

    def set_task_overtime_top(self, task_id_list: list[int], overtime: int | float) -> Any:
        """Set the task timeout stop time.

        Args:
            task_id_list: Task list.
            overtime: Timeout time, unit: second. Example body: ``{"taskIds": [485], "overTime": 1800}``.
        """
        data = {
            "taskIds": task_id_list,
            "overTime": overtime,
        }
        return self._connect.post(self._connect.url.setTaskOverTimeStop, data)

    def full_speed(self, task_id_list: list[int]) -> Any:
        """Full to render.

        Args:
            task_id_list: Task list. Example body: ``{"taskIds": [485]}``.
        """
        data = {
            "taskIds": task_id_list,
        }
        return self._connect.post(self._connect.url.fullSpeedRendering, data)

    def update_task_limit(self, taskId: int, taskLimit: int | None) -> Any:  # noqa: N803 - official SDK names
        """Set the most nodes that may render the task at once (0 or None: no limit).

        Args:
            taskId: The ID number of the render task.
            taskLimit: The node limit. Example body: ``{"taskId": 485, "taskLimit": 2}``.
        """
        data = {
            "taskId": taskId,
            "taskLimit": taskLimit,
        }
        return self._connect.post(self._connect.url.updateTaskLimit, data)

    def recommit_task_frames(self, task_id: int, frame_ids: Sequence[int] | None = None, select_all: bool = False,
                             status: Sequence[int] | None = None) -> dict:
        """Render chosen frames of a task again (each one's ``recommitFlag`` goes up by one).

        Args:
            task_id: The ID number of the render task.
            frame_ids: Frame ids (the ``id`` of ``task_frames`` items) to render again.
            select_all: Choose every frame of the task instead of ``frame_ids``.
            status: Only frames in these frame statuses (3 stopped, 4 done, 5 failed, 11 timed out);
                the farm's default is done, failed and timed out. Example body:
                ``{"taskId": 485, "selectAll": 0, "ids": [9001, 9002], "status": [5]}``.

        Returns:
            ``{"count": n}``: how many frames wait to render again.
        """
        return self._connect.post(self._connect.url.recommitTaskFrames,
                                  _frame_selection(task_id, frame_ids, select_all, status))

    def stop_task_frames(self, task_id: int, frame_ids: Sequence[int] | None = None, select_all: bool = False,
                         status: Sequence[int] | None = None) -> dict:
        """Stop chosen waiting or rendering frames of a task (their nodes kill the renders).

        Args:
            task_id: The ID number of the render task.
            frame_ids: Frame ids (the ``id`` of ``task_frames`` items) to stop.
            select_all: Choose every frame of the task instead of ``frame_ids``.
            status: Only frames in these frame statuses (1 waiting, 2 rendering, 8 held); the
                default is all three. Example body: ``{"taskId": 485, "selectAll": 1}``.

        Returns:
            ``{"count": n}``: how many frames were stopped.
        """
        return self._connect.post(self._connect.url.stopTaskFrames,
                                  _frame_selection(task_id, frame_ids, select_all, status))


def _frame_selection(task_id: int, frame_ids: Sequence[int] | None, select_all: bool,
                     status: Sequence[int] | None) -> dict[str, Any]:
    """The body of recommitTaskFrames / stopTaskFrames: ``ids`` and ``status`` only when given."""
    data: dict[str, Any] = {"taskId": task_id, "selectAll": 1 if select_all else 0}
    if frame_ids:
        data["ids"] = [int(frame_id) for frame_id in frame_ids]
    if status:
        data["status"] = [int(code) for code in status]
    return data
