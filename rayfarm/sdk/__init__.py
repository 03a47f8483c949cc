"""rayfarm's Python SDK: the official ``rayvision_api`` task and query calls, typed, on httpx.

Example::

    from rayfarm.sdk import RayfarmAPI

    api = RayfarmAPI(access_id="...", access_key="...", domain="127.0.0.1:8765")
    task_id = api.task.task_id
    api.task.upload_task_json(task_id, task_json)
    api.task.submit_task(task_id)
    print(api.query.task_info([task_id])["items"][0]["taskStatus"])
"""

from rayfarm.sdk.connect import Connect
from rayfarm.sdk.core import RayfarmAPI
from rayfarm.sdk.env import RenderEnvOperator
from rayfarm.sdk.errors import RayfarmAPIError, RayfarmConnectionError, RayfarmError
from rayfarm.sdk.query import QueryOperator
from rayfarm.sdk.task import TaskOperator
from rayfarm.sdk.transmit import TransmitOperator
from rayfarm.sdk.urls import ApiUrl
from rayfarm.sdk.user import UserOperator

__all__ = [
    "ApiUrl",
    "Connect",
    "QueryOperator",
    "RayfarmAPI",
    "RayfarmAPIError",
    "RayfarmConnectionError",
    "RayfarmError",
    "RenderEnvOperator",
    "TaskOperator",
    "TransmitOperator",
    "UserOperator",
]
