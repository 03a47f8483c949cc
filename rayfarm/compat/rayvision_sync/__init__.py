"""A drop-in for ``rayvision_sync`` 3.1.8 that moves files over rayfarm's own HTTP.

Change one import line and nothing else::

    # from rayvision_sync.upload import RayvisionUpload
    from rayfarm.compat.rayvision_sync import RayvisionUpload, RayvisionDownload, RayvisionManageTask

    upload = RayvisionUpload(api)                       # api: the official rayvision_api.RayvisionAPI
    upload.upload_config(task_id, [task_json_path])     # task.json reaches the task (taskJsonFile)
    upload.upload_asset(upload_json_path)               # scenes and textures into your input storage
    api.submit(int(task_id))
    RayvisionDownload(api).auto_download([int(task_id)], local_path="/renders")

The submodules mirror the official package's (``.upload``, ``.download``, ``.manage``, ``.utils``,
``.exception``). Only the standard library is imported here: it runs in the official SDK's environment.
"""

from rayfarm.compat.rayvision_sync.download import RayvisionDownload
from rayfarm.compat.rayvision_sync.exception import (
    DownloadFailed,
    RayvisionError,
    UnsupportedDatabaseError,
    UnsupportedEngineType,
)
from rayfarm.compat.rayvision_sync.manage import RayvisionManageTask
from rayfarm.compat.rayvision_sync.upload import RayvisionUpload
from rayfarm.compat.rayvision_sync.utils import cutting_upload

__all__ = [
    "DownloadFailed",
    "RayvisionDownload",
    "RayvisionError",
    "RayvisionManageTask",
    "RayvisionUpload",
    "UnsupportedDatabaseError",
    "UnsupportedEngineType",
    "cutting_upload",
]
