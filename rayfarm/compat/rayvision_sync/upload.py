"""``RayvisionUpload``: rayvision_sync's uploader, moving files over rayfarm's HTTP.

Same constructor, methods, parameters and defaults as rayvision_sync 3.1.8. Configuration files
(task.json, upload.json, asset.json, tips.json) reach the farm as ``taskJsonFile`` calls; assets are
uploaded into the caller's input storage where the farm looks for them (see
:func:`~rayfarm.compat.rayvision_sync.paths.storage_target`). Transfer-engine options are accepted
and ignored (logged once).
"""

import json
import os
from concurrent.futures import ThreadPoolExecutor

from rayfarm.compat.rayvision_sync.exception import RayvisionError
from rayfarm.compat.rayvision_sync.link import TASK_JSON_FILE, FarmLink, TransferError
from rayfarm.compat.rayvision_sync.paths import join_target, storage_target
from rayfarm.compat.rayvision_sync.utils import make_logger

#: The configuration files a rayfarm task keeps (others would never be read by the farm).
CONFIG_NAMES = ("task.json", "upload.json", "asset.json", "tips.json")


def read_upload_list(upload_json_path, transmit_type="upload_json"):
    """The ``(local, server)`` pairs to upload: upload.json's ``asset`` entries, or one local path per line.

    Raises:
        RayvisionError: 200001 when the file does not exist, 200024 when it cannot be read as that type.
    """
    if not os.path.isfile(upload_json_path):
        raise RayvisionError(200001, f"upload file is not exist: {upload_json_path}")
    with open(upload_json_path, encoding="utf-8-sig") as handle:
        text = handle.read()
    if transmit_type == "upload_list":
        return [(line.strip(), None) for line in text.splitlines() if line.strip()]
    try:
        assets = json.loads(text).get("asset", [])
        pairs = [(item["local"], item.get("server")) for item in assets]
    except (ValueError, AttributeError, TypeError, KeyError):
        raise RayvisionError(200024, f"argument format invalid: {upload_json_path} must hold "
                                     f'{{"asset": [{{"local": ..., "server": ...}}]}}.') from None
    if not all(isinstance(local, str) and local for local, _ in pairs):
        raise RayvisionError(200024, f"argument format invalid: every asset of {upload_json_path} needs a \"local\" path.")
    return pairs


def upload_files(local, target):
    """``(file, target)`` for one entry: the file itself, or every file under a folder entry."""
    if not os.path.isdir(local):
        return [(local, target)]
    found = []
    for root, _, names in sorted(os.walk(local)):
        for name in sorted(names):
            path = os.path.join(root, name)
            found.append((path, join_target(target, os.path.relpath(path, local))))
    return found


class RayvisionUpload:
    """Upload configuration files and asset files (rayvision_sync's ``RayvisionUpload``)."""

    def __init__(self, api, db_config_path=None, transports_json="", transmitter_exe="", automatic_line=True,
                 internet_provider="", logger=None, log_folder=None, log_name=None, log_level="DEBUG"):
        """Initialize instance.

        Args:
            api (object): The ``rayvision_api.RayvisionAPI`` (or ``rayfarm.sdk.RayfarmAPI``) to upload with.
            db_config_path, transports_json, transmitter_exe, automatic_line, internet_provider: Settings of
                the official transmitter; accepted and ignored.
            logger (object): Customize log object.
            log_folder (string): Folder for a log file (``<log_folder>/rayvision_sync/<log_name>``).
            log_name (string): Log file name (default: this host's name + ``.log``).
            log_level (string): "DEBUG", "INFO", "WARNING" or "ERROR".
        """
        self.logger = make_logger(__name__, logger, log_folder, log_name, log_level)
        self.api = api
        self.link = FarmLink(api, self.logger)

    def upload(self, task_id, task_json_path, tips_json_path, asset_json_path, upload_json_path, max_speed=None,
               transmit_type="upload_json", engine_type="aspera", server_ip=None, server_port=None, network_mode=0,
               is_record=False, redis_flag=None, redis_obj=None, proxy_ip=None, proxy_port=None, upload_num=2):
        """Upload the configuration files (:meth:`upload_config`), then the assets (:meth:`upload_asset`).

        Returns:
            bool: True is success, False is failure.
        """
        config_file_list = [task_json_path, tips_json_path, asset_json_path, upload_json_path]
        if not self.upload_config(task_id, config_file_list):
            return False
        return bool(self.upload_asset(upload_json_path, transmit_type=transmit_type))

    def upload_config(self, task_id, config_file_list, max_speed=None, engine_type="aspera", server_ip=None,
                      server_port=None, network_mode=0, proxy_ip=None, proxy_port=None, upload_num=2):
        """Send each existing configuration file to the task as ``taskJsonFile`` (``fileName`` = its name).

        Missing files are skipped (logged), as are names the farm does not keep (only task.json,
        upload.json, asset.json and tips.json are read by a farm).

        Returns:
            bool: True.

        Raises:
            RayvisionError: 20004 when the farm does not accept a file (its answer is in the message).
        """
        for config_path in config_file_list:
            if not config_path or not os.path.exists(config_path):
                self.logger.info("%s is not exists.", config_path)
                continue
            name = os.path.basename(config_path)
            if name not in CONFIG_NAMES:
                self.logger.warning("%s is not sent: a farm reads only %s.", config_path, ", ".join(CONFIG_NAMES))
                continue
            with open(config_path, encoding="utf-8-sig") as handle:
                content = handle.read()
            try:
                self.link.call(TASK_JSON_FILE, {"taskId": int(task_id), "fileName": name, "content": content})
            except Exception as exc:  # the API's own error, after its own retries
                raise RayvisionError(20004, f"{config_path} upload failed: {exc}") from exc
            self.logger.info("upload file done (%s) -> task %s %s", config_path, task_id, name)
        return True

    def upload_asset(self, upload_json_path, max_speed=None, is_db=True, engine_type="aspera", server_ip=None,
                     server_port=None, transmit_type="upload_json", network_mode=0, redis_flag=None, is_record=False,
                     redis_obj=None, proxy_ip=None, proxy_port=None, upload_num=2):
        """Upload every asset listed in upload.json (``{"asset": [{"local", "server"}]}``) into your input storage.

        Args:
            upload_json_path (str): Path to the upload.json file (with ``transmit_type="upload_list"``: a
                text file with one local path per line).
            transmit_type (str): "upload_json" or "upload_list".
            The other arguments steer the official transmitter; accepted and ignored.

        Returns:
            bool: True when every file is on the farm. Unchanged files are not sent again; an
            interrupted file goes on where it stopped.

        Raises:
            RayvisionError: 200001 no such upload file, 200024 it cannot be read, 200025 files that cannot
                be uploaded (missing locally, or refused by the farm; all are named).
        """
        failed = []
        for local, server in read_upload_list(upload_json_path, transmit_type):
            if not os.path.exists(local):
                failed.append(f"{local}: no such file")
                continue
            for source, target in upload_files(local, storage_target(local, server)):
                try:
                    self.link.upload(source, target, self._reporter(source, target))
                except (TransferError, OSError) as exc:
                    failed.append(str(exc))
                except Exception as exc:  # the API's own error (e.g. a path the farm refuses)
                    failed.append(f"{source}: {exc}")
        if failed:
            raise RayvisionError(200025, "There are files that cannot be uploaded: " + "; ".join(failed))
        return True

    def thread_pool_upload(self, upload_pool, pool_size=10, **kwargs):
        """Run :meth:`upload_asset` for each upload file in ``upload_pool``, ``pool_size`` at a time.

        As in the official package, ``kwargs`` must hold ``is_db`` (it is dropped) and nothing is
        returned; a file set that fails is logged as an error.
        """
        kwargs.pop("is_db")
        with ThreadPoolExecutor(pool_size) as pool:
            jobs = {path: pool.submit(self.upload_asset, upload_json_path=path, is_db=False, **kwargs)
                    for path in upload_pool}
        for path, job in jobs.items():
            if job.exception() is not None:
                self.logger.error("Uploading %s failed: %s", path, job.exception())

    def _reporter(self, source, target):
        def report(done, size, finished):
            if finished:
                self.logger.info("upload file done (%s) -> %s", source, target)
            else:
                percent = 100 * done // size if size else 100
                self.logger.info("uploading %s: %d/%d bytes (%d%%)", source, done, size, percent)

        return report
