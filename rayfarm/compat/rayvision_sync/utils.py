"""The parts of ``rayvision_sync.utils`` a script uses: ``cutting_upload`` and task status descriptions.

The official module's other functions drive the Aspera/Raysync transmitter binary (``run_cmd``,
``upload_retry``, ...); rayfarm moves files over its own HTTP, so they have no counterpart here.
"""

import codecs
import json
import logging
import os
import socket

from rayfarm.compat.rayvision_sync.exception import RayvisionError

TASK_STATUS_DESCRIPTION = {
    "0": {"0": "等待中", "1": "Waiting"},
    "5": {"0": "渲染中", "1": "Rendering"},
    "8": {"0": "预处理中", "1": "Preprocessing"},
    "10": {"0": "停止", "1": "Stop"},
    "20": {"0": "欠费停止", "1": "Arrearage-stop"},
    "23": {"0": "超时停止", "1": "Timeout stop"},
    "25": {"0": "已完成", "1": "Done"},
    "30": {"0": "已完成(有失败帧)", "1": "Done(with failed frame)"},
    "35": {"0": "放弃", "1": "Abort"},
    "40": {"0": "等待全速渲染", "1": "Test done"},
    "45": {"0": "失败", "1": "Failed"},
}


def get_task_status_description(task_status_code=None, language="1"):
    """The description of a task status code ("0" Chinese, "1" English); ``RayvisionError(1000000)`` if unknown."""
    try:
        return TASK_STATUS_DESCRIPTION.get(task_status_code, {})[language]
    except KeyError:
        logging.getLogger(__name__).error("Get empty task_status_description, Please check the input.")
        raise RayvisionError(1000000, "Get empty task_status_description, Please check the input") from None


def json_load(json_path, encoding="utf-8"):
    """The data of a JSON file, or None when the file does not exist."""
    if os.path.exists(json_path):
        with codecs.open(json_path, "r", encoding=encoding) as handle:
            return json.load(handle)
    return None


def write_json(path, info):
    """Write ``info`` as indented JSON (UTF-8, non-ASCII kept)."""
    with codecs.open(path, "w", "utf-8") as handle:
        json.dump(info, handle, indent=4, ensure_ascii=False)


def cutting_upload(upload_path, max_resources_number=None, after_cutting_position=None):
    """Cut upload.json into files of at most ``max_resources_number`` assets each.

    Args:
        upload_path (str): upload.json absolute path.
        max_resources_number (int): Maximum number of resources in each upload file (None: no cutting).
        after_cutting_position (str): Folder for the new files (default: upload.json's folder).

    Returns:
        list: The paths of the files to upload: ``[upload_path]`` when no cutting is needed, else
        ``upload_1.json``, ``upload_2.json``, ... (the last one may hold an empty ``asset`` list, as in the
        official package).
    """
    if not os.path.exists(upload_path):
        raise RayvisionError(200001, f"upload file is not exist: {upload_path}")
    if max_resources_number is None:
        return [upload_path]
    if after_cutting_position is None or not os.path.exists(after_cutting_position):
        after_cutting_position = os.path.dirname(upload_path)
    asset = (json_load(upload_path) or {}).get("asset", [])
    if max_resources_number >= len(asset):
        return [upload_path]
    pool = []
    for count, start in enumerate(range(0, len(asset) + 1, max_resources_number), start=1):
        to_path = os.path.normpath(os.path.join(after_cutting_position, f"upload_{count}.json"))
        write_json(to_path, {"asset": asset[start:start + max_resources_number]})
        pool.append(to_path)
    return pool


def make_logger(name, logger=None, log_folder=None, log_name=None, log_level="DEBUG"):
    """The logger of an uploader or downloader: the caller's own, or one named ``name`` at ``log_level``.

    Like the official package, a ``log_folder`` gets a file ``<log_folder>/rayvision_sync/<log_name or host>.log``;
    with no logging configured at all, lines go to the console (the official package always prints them).
    """
    if logger:
        return logger
    result = logging.getLogger(name)
    result.setLevel(str(log_level).upper())
    if log_folder:
        path = os.path.abspath(os.path.join(log_folder, "rayvision_sync", log_name or f"{socket.getfqdn()}.log"))
        if not any(getattr(handler, "baseFilename", None) == path for handler in result.handlers):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            handler = logging.FileHandler(path, encoding="utf-8", delay=True)
            handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] %(name)s: %(message)s"))
            result.addHandler(handler)
    if not result.handlers and not logging.getLogger().handlers:
        console = logging.StreamHandler()
        console.setFormatter(logging.Formatter("%(levelname)-8s: %(name)s: %(message)s"))
        result.addHandler(console)
    return result
