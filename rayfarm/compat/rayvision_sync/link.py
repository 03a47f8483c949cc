"""rayfarm's file transfer, spoken through the customer's own API object.

Signed calls (``uploadInit``, ``getOutputUserDirFile``, ``taskJsonFile`` and the signed download) go
through the API object's connection: the official ``rayvision_api`` Connect (``post(path, body,
validator=False)``; the download is signed by its own ``_handle_headers``) or rayfarm's
``rayfarm.sdk`` Connect (``post``, ``signed_headers``). An upload then PUTs raw bytes to the capability
URL ``uploadInit`` hands out (``/v1/upload/<id>?offset=N``), going on from the offset the farm reports
after a broken connection; the farm checks the whole file against its sha256 and keeps content it
already has without asking for it again. A download is checked against the ``X-Sha256`` header the
farm sends and is written under a ``.part`` name until it matches; a local file that already has that
content is left alone.

HTTP goes through ``requests`` for the official SDK (its environment has it) and ``httpx`` for
rayfarm's SDK; each is imported only when that kind of API object is used.
"""

import hashlib
import json
import os
import threading
import time
from contextlib import contextmanager

UPLOAD_INIT = "/api/rayfarm/file/uploadInit"
DOWNLOAD = "/api/rayfarm/file/download"
OUTPUT_FILES = "/api/render/file/operate/getOutputUserDirFile"
TASK_JSON_FILE = "/api/render/submit/taskJsonFile"
PART = 8 * 1024 * 1024  # bytes per PUT, and how often progress is logged
BLOCK = 1024 * 1024
ATTEMPTS = 5  # per file: broken connections in a row, or fresh starts of the whole transfer
NOTICE = ("rayfarm: files move over the farm's own HTTP (resumable uploads, sha256 checked both ways). The "
          "Aspera/Raysync transmitter is not used: its options (engine_type, server_ip, server_port, network_mode, "
          "proxy_ip, proxy_port, max_speed, transmitter_exe, transports_json, automatic_line, internet_provider, "
          "db_config_path, is_db, is_record, redis_*, upload_num, download_num, enable_hash) are accepted and ignored.")
_announced = threading.Event()


class TransferError(Exception):
    """A file could not be moved; the message says which and why."""


class FarmAnswer(TransferError):
    """The farm refused a transfer with a Renderbus code (e.g. 404: no such file)."""

    def __init__(self, code, message):
        super().__init__(f"{message} (code {code})")
        self.code = code


class _Restart(Exception):
    """Start this file's transfer again from the beginning (upload session gone, bytes damaged, ...)."""


def _json(content):
    try:
        answer = json.loads(content or b"{}")
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def file_sha256(path):
    """sha256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


class _RequestsHttp:
    """Plain HTTP for the official SDK's environment."""

    def __init__(self, timeout):
        import requests

        self._session = requests.Session()
        self._timeout = timeout
        self.errors = (requests.RequestException,)

    def put(self, url, offset, data):
        response = self._session.put(url, params={"offset": offset}, data=data, timeout=self._timeout)
        return response.status_code, _json(response.content)

    def get(self, url):
        response = self._session.get(url, timeout=self._timeout)
        return response.status_code, _json(response.content)

    @contextmanager
    def post_stream(self, url, headers, content):
        response = self._session.post(url, data=content, headers=headers, timeout=self._timeout, stream=True)
        try:
            yield response.status_code, response.headers, response.iter_content(BLOCK)
        finally:
            response.close()


class _HttpxHttp:
    """HTTP for rayfarm's own environment: the SDK connection's client (its certificate trust), else a new one."""

    def __init__(self, timeout, client=None):
        import httpx

        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)
        self.errors = (httpx.HTTPError, httpx.StreamError)

    def put(self, url, offset, data):
        response = self._client.put(url, params={"offset": offset}, content=data)
        return response.status_code, _json(response.content)

    def get(self, url):
        response = self._client.get(url)
        return response.status_code, _json(response.content)

    @contextmanager
    def post_stream(self, url, headers, content):
        with self._client.stream("POST", url, content=content, headers=headers) as response:
            yield response.status_code, response.headers, response.iter_bytes(BLOCK)


class FarmLink:
    """One API object's way to the farm: signed calls, uploads and downloads.

    Args:
        api: The customer's ``rayvision_api.RayvisionAPI`` (or a ``rayfarm.sdk.RayfarmAPI``).
        logger: Where the one-time notice about the transmitter goes.
    """

    def __init__(self, api, logger):
        connect = api.connect
        self._connect = connect
        self._ours = callable(getattr(connect, "signed_headers", None))  # rayfarm.sdk.Connect
        timeout = getattr(connect, "timeout", None) or 60
        if self._ours:
            self._base = connect.address("")
            self.http = _HttpxHttp(timeout, getattr(connect, "http", None))
        else:  # rayvision_api.connect.Connect keeps its protocol to itself
            self._base = f"{connect._protocol}://{connect.domain}"
            self.http = _RequestsHttp(timeout)
        self._hashes = {}
        self._hash_lock = threading.Lock()
        if not _announced.is_set():
            _announced.set()
            logger.info(NOTICE)

    # ------------------------------------------------------------ signed calls

    def call(self, path, body):
        """A signed call through the API's own connection; its ``data``."""
        if self._ours:
            return self._connect.post(path, body)
        return self._connect.post(path, body, validator=False)

    def _signed_headers(self, path, body):
        if self._ours:
            return self._connect.signed_headers(path, body)
        headers = self._connect._handle_headers(path, body)  # exactly how the official SDK signs its calls
        headers["languageFlag"] = "1"
        return headers

    def list_files(self, folder):
        """Every file under ``folder`` of the output storage (recursively): getOutputUserDirFile entries."""
        files = []
        for entry in self.call(OUTPUT_FILES, {"treePath": "/" + folder.strip("/")}) or []:
            if entry.get("directory"):
                files.extend(self.list_files(entry["filePath"]))
            else:
                files.append(entry)
        return files

    # ------------------------------------------------------------ uploads

    def upload(self, source, target, report):
        """Upload the file ``source`` so that the farm keeps it where the local path ``target`` maps.

        ``report(done, size, finished)`` is called as bytes go. Returns the farm's storage path.
        """
        reason = None
        for _ in range(ATTEMPTS):
            try:
                return self._upload_once(source, target, report)
            except _Restart as exc:
                reason = exc
        raise TransferError(f"{source} could not be uploaded: {reason}")

    def _upload_once(self, source, target, report):
        size = os.path.getsize(source)
        started = self.call(UPLOAD_INIT, {"localPath": target, "size": size, "sha256": file_sha256(source)})
        if started.get("done"):
            report(size, size, True)
            return started["storagePath"]
        url = self._base + started["url"]
        offset, stalled = started["offset"], 0
        while True:
            report(offset, size, False)
            with open(source, "rb") as handle:
                handle.seek(offset)
                block = handle.read(min(PART, size - offset))
            if len(block) != min(PART, size - offset):
                raise _Restart("the file changed while it was being uploaded")
            try:
                status, answer = self.http.put(url, offset, block)
            except self.http.errors as exc:
                stalled += 1
                if stalled >= ATTEMPTS:
                    raise TransferError(f"{source} could not be uploaded: the farm did not answer ({exc})") from exc
                time.sleep(min(2 ** stalled, 30))
                offset = self._farm_offset(url, offset)
                continue
            if status in (409, 429) and stalled < ATTEMPTS:  # go on from the farm's offset / slow down
                stalled += 1
                offset = answer.get("offset", offset)
                time.sleep(1 if status == 429 else 0)
                continue
            if status in (400, 404, 422):  # declared size exceeded, session gone, sha256 differs: start again
                raise _Restart(answer.get("error") or f"HTTP {status}")
            if status != 200:
                raise TransferError(f"{source} could not be uploaded: {answer.get('error') or f'HTTP {status}'}")
            offset, stalled = answer["offset"], 0
            if answer.get("done"):
                report(size, size, True)
                return answer["storagePath"]

    def _farm_offset(self, url, offset):
        """How many bytes the farm holds of an upload (``offset`` if it cannot say)."""
        try:
            status, answer = self.http.get(url)
        except self.http.errors:
            return offset
        return answer.get("offset", offset) if status == 200 else offset

    # ------------------------------------------------------------ downloads

    def download(self, path, dest, report):
        """Download ``path`` of the output storage to the file ``dest``.

        ``report(done, size, finished)`` is called as bytes come. Returns False when ``dest`` already
        held exactly those bytes (nothing written), True otherwise.
        """
        reason = None
        for attempt in range(ATTEMPTS):
            try:
                return self._download_once({"path": path, "area": "output"}, dest, report)
            except _Restart as exc:
                reason = exc
                time.sleep(min(2 ** attempt, 30))
        raise TransferError(f"{path} could not be downloaded: {reason}")

    def _download_once(self, body, dest, report):
        headers = self._signed_headers(DOWNLOAD, body)
        partial = dest + ".part"
        digest, done = hashlib.sha256(), 0
        try:
            with self.http.post_stream(self._base + DOWNLOAD, headers, json.dumps(body).encode()) as reply:
                status, head, blocks = reply
                if head.get("content-type", "").startswith("application/json"):
                    answer = _json(b"".join(blocks))
                    if answer.get("code") in (429, 500) or status >= 500:
                        raise _Restart(answer.get("message") or f"HTTP {status}")
                    raise FarmAnswer(answer.get("code", status), answer.get("message") or f"HTTP {status}")
                if status != 200:
                    raise _Restart(f"HTTP {status}")
                expected = head.get("x-sha256")
                if expected and os.path.isfile(dest) and self.local_sha256(dest) == expected:
                    return False
                total = int(head.get("content-length") or 0)
                os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
                with open(partial, "wb") as out:
                    for block in blocks:
                        out.write(block)
                        digest.update(block)
                        done += len(block)
                        if done // PART != (done - len(block)) // PART:
                            report(done, total, False)
        except self.http.errors as exc:
            raise _Restart(f"the connection broke ({exc})") from exc
        if expected and digest.hexdigest() != expected:
            os.remove(partial)
            raise _Restart("the bytes arrived damaged (their sha256 differs from the farm's)")
        os.replace(partial, dest)
        report(done, total, True)
        return True

    def local_sha256(self, path):
        """sha256 of a local file, remembered while its size and modification time stay the same."""
        stat = os.stat(path)
        key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
        with self._hash_lock:
            if key in self._hashes:
                return self._hashes[key]
        value = file_sha256(path)
        with self._hash_lock:
            self._hashes[key] = value
        return value
