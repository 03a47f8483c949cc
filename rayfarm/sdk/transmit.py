"""Transfer configuration, with the names of the official SDK's TransmitOperator.

rayfarm moves files over its own HTTP API (:class:`~rayfarm.sdk.files.FileOperator`, or the drop-in
``rayfarm.compat.rayvision_sync`` for scripts written for ``rayvision_sync``): the farm lists no Raysync or
Aspera transfer engine.
"""

from __future__ import annotations

from rayfarm.sdk.connect import Connect


class TransmitOperator:
    """The interface to perform the transfer."""

    def __init__(self, connect: Connect) -> None:
        """Initialize instance.

        Args:
            connect: The connection every call goes through.
        """
        self._connect = connect

    def upload_json_content(self, task_id: int, content: str, file_name: str = "task.json") -> None:
        """Store a configuration file (task.json, upload.json, asset.json or tips.json) of a task not yet submitted.

        Args:
            task_id: The task id.
            content: The file's JSON text.
            file_name: Its name.
        """
        return self._connect.post(self._connect.url.taskJsonFile,
                                  {"taskId": task_id, "fileName": file_name, "content": content})

    def get_transfer_config(self) -> dict:
        """The farm's transfer configuration: the bids, ``resqEngines`` (empty: no Raysync or Aspera engine),
        and ``rayfarmTransfer``, the HTTP paths files move through."""
        return self._connect.post(self._connect.url.getConfig)
