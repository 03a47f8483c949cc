"""Errors raised by the rayfarm SDK."""

from __future__ import annotations

import re

# The farm's sentences name the Renderbus route that helps (it speaks to every client); an SDK user reads the
# SDK's call instead. ``{id}`` is the task the sentence names.
SDK_CALLS = {
    "getTaskList": "api.query.get_task_list()",
    "queryTaskInfo": "api.query.task_info([{id}])",
    "queryTaskFrames": "api.query.task_frames({id})",
    "recommitTasks": "api.query.restart_failed_frames([{id}])",
    "taskJsonFile": "api.task.upload_task_json({id}, ...)",
    "getOutputUserDirFile": "api.files.output_files({id})",
}
_TASK = re.compile(r"\b[Tt]ask (\d+)")


def reword(message: str, calls: dict[str, str], unknown_id: str = "task_id") -> str:
    """The farm's sentence with each route it names replaced by ``calls``' wording (``{id}``: the task it names)."""
    found = _TASK.search(message)
    task_id = found.group(1) if found else unknown_id
    for route, call in calls.items():
        message = re.sub(rf"\b{route}\b", lambda _, call=call: call.format(id=task_id), message)
    return message


class RayfarmError(Exception):
    """Base class of every error the rayfarm SDK raises."""


class RayfarmAPIError(RayfarmError):
    """The farm answered, but not with success (the envelope's ``code`` is not 200).

    Attributes:
        code: The Renderbus result code (e.g. 600 invalid parameter, 718 task cannot be operated,
            937 task does not exist). For an answer that is not a Renderbus envelope at all (an HTTP
            error from a proxy, say), the HTTP status.
        message: The farm's English explanation, meant to be shown to the user; where it names an API
            route to call, this SDK's call is named instead (``api.query.get_task_list()``).
        farm_message: The farm's sentence as it came.
        url: The URL the request was sent to.
    """

    def __init__(self, code: int, message: str, url: str):
        super().__init__(code, reword(message, SDK_CALLS), url)
        self.code = int(code)
        self.farm_message = message
        self.message = reword(message, SDK_CALLS)
        self.url = url

    def __str__(self) -> str:
        return f"Error code: {self.code}, Error message: {self.message}, URL: {self.url}"


class RayfarmConnectionError(RayfarmError):
    """The farm could not be reached, or the answer was lost (no result code to report).

    Attributes:
        url: The URL the request was sent to.
        attempts: How many times the request was tried.
        may_have_reached: True when the request may have reached the farm (the answer was lost),
            so its effect may have happened even though no answer came back.
    """

    def __init__(self, message: str, url: str, attempts: int = 1, may_have_reached: bool = False):
        super().__init__(message)
        self.message = message
        self.url = url
        self.attempts = attempts
        self.may_have_reached = may_have_reached

    def __str__(self) -> str:
        return self.message
