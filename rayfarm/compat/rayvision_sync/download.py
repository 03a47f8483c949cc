"""``RayvisionDownload``: rayvision_sync's downloader, fetching task outputs over rayfarm's HTTP.

Same constructor, methods, parameters and defaults as rayvision_sync 3.1.8. A task's outputs are the
folder named by ``outputFileName`` in queryTaskInfo (``<taskId>_<scene>``), listed with
getOutputUserDirFile and fetched file by file, each checked against the farm's sha256. Files already
downloaded with the same content are not fetched again, so polling downloads cost little.
Transfer-engine options are accepted and ignored (logged once).
"""

import os
import time

from rayfarm.compat.rayvision_sync.exception import DownloadFailed
from rayfarm.compat.rayvision_sync.link import FarmLink, TransferError
from rayfarm.compat.rayvision_sync.manage import RayvisionManageTask
from rayfarm.compat.rayvision_sync.paths import local_file
from rayfarm.compat.rayvision_sync.utils import make_logger

#: auto_download_after_task_completed waits this long after a task ended before downloading it.
SETTLE_SECONDS = 5


class RayvisionDownload:
    """Download the outputs of tasks (rayvision_sync's ``RayvisionDownload``)."""

    def __init__(self, api, transports_json="", transmitter_exe="", automatic_line=True, internet_provider="",
                 logger=None, log_folder=None, log_name=None, log_level="DEBUG"):
        """Initialize instance.

        Args:
            api (object): The ``rayvision_api.RayvisionAPI`` (or ``rayfarm.sdk.RayfarmAPI``) to download with.
            transports_json, transmitter_exe, automatic_line, internet_provider: Settings of the official
                transmitter; accepted and ignored.
            logger (object): Customize log object.
            log_folder (string): Folder for a log file (``<log_folder>/rayvision_sync/<log_name>``).
            log_name (string): Log file name (default: this host's name + ``.log``).
            log_level (string): "DEBUG", "INFO", "WARNING" or "ERROR".
        """
        self.logger = make_logger(__name__, logger, log_folder, log_name, log_level)
        self.api = api
        self.link = FarmLink(api, self.logger)
        self.manage_task = RayvisionManageTask(api.query)

    @staticmethod
    def check_params(task_id_list, custom_server_output_path):
        """One of ``task_id_list`` and ``custom_server_output_path`` must be given."""
        if not task_id_list and not custom_server_output_path:
            raise Exception("One of the task_id_list and custom_server_output_path must exist")

    def download(self, task_id_list=None, max_speed=None, print_log=True, download_filename_format="true",
                 local_path=None, server_path=None, engine_type="aspera", server_ip=None, server_port=None,
                 network_mode=0, proxy_ip=None, proxy_port=None, enable_hash=False, asset=False, download_num=2):
        """Download the outputs of tasks, or folders of your output storage.

        Args:
            task_id_list (list of int): Tasks whose outputs to download.
            print_log (bool): Log each file at INFO (else DEBUG).
            download_filename_format (str): "true" keeps the ``<outputFileName>`` folder (``<taskId>_<scene>``)
                under ``local_path``; "false" writes its contents straight into ``local_path``.
            local_path (str): Where to write (default ``~/renderfarm_sdk``).
            server_path (str or list): Folders of the output storage to download instead, relative to its
                root (e.g. ``"18164087_test/l_layer"``).
            asset (bool): Download from the input storage instead (rayfarm serves no such downloads).
            The other arguments steer the official transmitter; accepted and ignored (the sha256 check is
            always on).

        Returns:
            bool: True is success.

        Raises:
            DownloadFailed: an output could not be downloaded (nothing there yet, or the transfer failed).
        """
        if asset and not local_path:
            local_path = os.path.dirname(server_path)
        self.check_params(task_id_list, server_path)
        local_path = self._check_local_path(local_path)
        self.logger.info("[Rayvision_sync start download .....]")
        self._download_log(task_id_list, local_path)
        self._run_download(task_id_list, local_path, print_log, download_filename_format, server_path, asset)
        self.logger.info("[Rayvision_sync end download.....]")
        return True

    def auto_download(self, task_id_list=None, max_speed=None, print_log=False, sleep_time=10,
                      download_filename_format="true", local_path=None, engine_type="aspera", server_ip=None,
                      server_port=None, network_mode=0, is_test_stop=False, proxy_ip=None, proxy_port=None,
                      enable_hash=False, download_num=2):
        """Download the tasks' outputs as they appear, until every task has ended.

        Every ``sleep_time`` seconds each task is asked whether it ended
        (:meth:`RayvisionManageTask.is_task_end`) and what it has output so far is downloaded; an ended
        task is downloaded one last time and dropped from the round. The caller's list is not changed.

        Returns:
            bool: True is success.

        Raises:
            DownloadFailed: naming the tasks whose last download (after they ended) failed.
        """
        local_path = self._check_local_path(local_path)
        self.logger.info("[Rayvision_sync start auto_download.....]")
        self._download_log(task_id_list, local_path)
        pending, failed = list(task_id_list or []), []
        while pending:
            time.sleep(float(sleep_time))
            for task_id in list(pending):
                ended = self.manage_task.is_task_end(task_id, is_test_stop)
                try:
                    self._run_download([task_id], local_path, print_log, download_filename_format)
                    downloaded = True
                except DownloadFailed:
                    downloaded = False
                if ended is True:
                    if not downloaded:
                        failed.append(task_id)
                    self.logger.info("The tasks end: %s", task_id)
                    pending.remove(task_id)
        if failed:
            raise DownloadFailed(f"Finally tasks download failed: {failed}")
        self.logger.info("[Rayvision_sync end auto_download.....]")
        return True

    def auto_download_after_task_completed(self, task_id_list=None, max_speed=None, print_log=True, sleep_time=10,
                                           download_filename_format="true", local_path=None, engine_type="aspera",
                                           server_ip=None, server_port=None, network_mode=0, is_test_stop=False,
                                           proxy_ip=None, proxy_port=None, enable_hash=False, download_num=2):
        """Download each task once it has ended, removing its id from the caller's ``task_id_list``.

        Every ``sleep_time`` seconds the remaining tasks are asked whether they ended; an ended task is
        downloaded 5 seconds later and its id removed from the list passed in.

        Returns:
            bool: True is success.

        Raises:
            DownloadFailed: an ended task's outputs could not be downloaded.
        """
        local_path = self._check_local_path(local_path)
        self.logger.info("[Rayvision_sync start auto_download_after_task_completed .....]")
        self._download_log(task_id_list, local_path)
        while task_id_list:
            time.sleep(float(sleep_time))
            for task_id in list(task_id_list):
                if self.manage_task.is_task_end(task_id, is_test_stop) is True:
                    time.sleep(float(SETTLE_SECONDS))
                    self.logger.info("The tasks end: %s", task_id)
                    self._run_download([task_id], local_path, print_log, download_filename_format)
                    task_id_list.remove(task_id)
        self.logger.info("[Rayvision_sync end -- auto_download_after_task_completed......]")
        return True

    # ------------------------------------------------------------ internals

    def _check_local_path(self, local_path):
        return local_path or os.path.join(os.path.expanduser("~"), "renderfarm_sdk")

    def _download_log(self, task_id_list, local_path):
        self.logger.info("INPUT:")
        self.logger.info("=" * 20)
        self.logger.info("task_id_list: %s", task_id_list)
        self.logger.info("local_path: %s", local_path)
        self.logger.info("=" * 20)

    def _run_download(self, task_id_list, local_path, print_log=True, download_filename_format="true",
                      server_path=None, asset=False):
        """Download the tasks' output folders (or ``server_path``); DownloadFailed at the first that fails."""
        os.makedirs(local_path, exist_ok=True)
        if not server_path:
            statuses = self.manage_task.get_task_status(task_id_list)
            names = [output["output_name"] for output in self.manage_task.output_file_names(statuses)]
        elif isinstance(server_path, str):
            names = [server_path]
        elif isinstance(server_path, list):
            names = list(server_path)
        else:
            raise Exception("custom_server_output_path must a list or str.")
        keep = str(download_filename_format).lower() == "true"
        for name in names:
            if asset:
                raise DownloadFailed(f"{name} Download failed: rayfarm does not serve downloads from the input "
                                     f"storage (asset=True); keep your own copy of the assets you uploaded.")
            try:
                self._download_folder(str(name), local_path, keep, print_log)
            except Exception as exc:  # a transfer, a local file, or the API's own error (listing refused)
                raise DownloadFailed(f"{name} Download failed: {exc}") from exc

    def _download_folder(self, name, local_path, keep, print_log):
        """Fetch every file under the output folder ``name`` into ``local_path``."""
        folder = name.replace("\\", "/").strip("/")
        entries = self.link.list_files(folder)
        if not entries:
            raise TransferError(f"the farm has no output files under {folder!r} yet")
        log = self.logger.info if print_log else self.logger.debug
        for entry in entries:
            path = entry["filePath"].lstrip("/")
            if keep:
                relative = path
            elif path.startswith(folder + "/"):
                relative = path[len(folder) + 1:]
            else:
                raise ValueError(f"the farm listed {path!r} outside {folder!r}")
            dest = local_file(local_path, relative)

            def report(done, size, finished, dest=dest):
                if finished:
                    log("download file done (%s)", dest)
                else:
                    log("downloading %s: %d/%d bytes", dest, done, size)

            if not self.link.download(entry["filePath"], dest, report):
                log("%s is up to date", dest)
