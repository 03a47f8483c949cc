"""``RayvisionManageTask``: task statuses and output folder names from queryTaskInfo, as rayvision_sync reads them.

The rules are the official package's, quirks included, so a script gets the same answers (and the same
errors) from the same items: ``isOpen`` goes through ``int()`` (missing → ``TypeError``), an ``isOpen``
parent counts only through its children, a status outside the eleven public codes raises
``RayvisionError(1000000)``, and ``is_task_end`` answers None when there is no leaf task at all.
"""

from rayfarm.compat.rayvision_sync.utils import get_task_status_description

TASK_END_STATUS_CODE_LIST = ["10", "20", "23", "25", "30", "35", "45"]


class RayvisionManageTask:
    """Reads the status and outputs of tasks through a query operator (``api.query``)."""

    def __init__(self, query):
        """Args: query: the API's query operator; only its ``task_info(task_ids)`` is called."""
        self._query = query

    def is_task_end(self, task_id, is_test_stop):
        """Whether the task has ended.

        Args:
            task_id (int): Task id.
            is_test_stop (bool): Count status 40 (priority frames done, waiting for full speed) as ended.

        Returns:
            bool or None: True when every leaf task's status is an end status, False when one is not,
            None when the task has no leaf task to judge.
        """
        end_codes = TASK_END_STATUS_CODE_LIST + (["40"] if is_test_stop else [])
        codes = self.find_task_status_codes(self.get_task_status([task_id]))
        if not codes:
            return None
        return all(code in end_codes for code in codes)

    def get_task_status(self, task_id_list):
        """The status dicts of the tasks (see :meth:`task_info_iterater`), from page 1 of queryTaskInfo."""
        task_info_list = self._query.task_info(task_id_list).get("items", [])
        return self.task_info_iterater(task_info_list)

    def task_info_iterater(self, task_info_list):
        """Turn queryTaskInfo items, recursively, into status dicts.

        Returns:
            list: ``{"task_id", "task_status_code", "task_status_text", "task_status_description",
            "is_opener", "output_file_name", "sub_task_status", "userId", "bid"}`` per item; codes,
            texts and ``is_opener`` as strings.
        """
        task_status_list = []
        for task_info in task_info_list:
            task_status_code = str(task_info.get("taskStatus"))
            is_opener = task_info.get("isOpen")
            description = get_task_status_description(task_status_code)
            sub_task_status = []
            if int(is_opener) == 1:
                sub_task_status = self.task_info_iterater(task_info.get("respRenderingTaskList", []))
            task_status_list.append({
                "task_id": str(task_info.get("id")),
                "task_status_code": task_status_code,
                "task_status_text": str(task_info.get("statusText")),
                "task_status_description": description,
                "is_opener": str(is_opener),
                "output_file_name": task_info.get("outputFileName"),
                "sub_task_status": sub_task_status,
                "userId": task_info.get("userId"),
                "bid": task_info.get("bid"),
            })
        return task_status_list

    def output_file_names(self, task_status_list):
        """``{"output_name", "user_id", "bid"}`` of every leaf task that names an output folder."""
        output_file_names = []
        for status in task_status_list:
            if int(status.get("is_opener")) == 1:
                output_file_names.extend(self.output_file_names(status.get("sub_task_status", []) or []))
            elif status.get("output_file_name", None) is not None:
                output_file_names.append({"output_name": status["output_file_name"], "user_id": status.get("userId"),
                                          "bid": status.get("bid")})
        return output_file_names

    def find_task_status_codes(self, task_status_list):
        """The status codes (strings) of every leaf task."""
        task_status_codes = []
        for status in task_status_list:
            if int(status.get("is_opener")) == 1:
                task_status_codes.extend(self.find_task_status_codes(status.get("sub_task_status", []) or []))
            elif status.get("task_status_code", None) is not None:
                task_status_codes.append(status["task_status_code"])
        return task_status_codes
