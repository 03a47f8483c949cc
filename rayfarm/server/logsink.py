"""Render logs written by one background thread: a node's call never waits for a log file to open.

Lines are appended in the order they were given; ``flush()`` returns once everything given before it is
on disk, so a reader in this process sees what the nodes reported. Logging is best effort: a full or
unwritable log folder costs a warning, never a call whose state is already committed.
"""

import logging
import os
import queue
import threading
from pathlib import Path

log = logging.getLogger("rayfarm.logs")
APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC


class LogSink:
    def __init__(self, root: Path):
        self.root = Path(root)
        self._root = str(self.root)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._folders: set[int] = set()  # task folders known to exist

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="rayfarm-logs", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        thread = self._thread
        if thread is not None:
            self.flush()
            self._thread = None
            self._queue.put(None)
            thread.join(timeout=30)

    def append(self, task_id: int, frame_id: int, lines: list[str]) -> None:
        if self._thread is None:
            self._write({(task_id, frame_id): list(lines)})
        else:
            self._queue.put((task_id, frame_id, lines))

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every line appended before this call is written."""
        if self._thread is not None:
            done = threading.Event()
            self._queue.put(done)
            done.wait(timeout)

    def _serve(self) -> None:
        while True:
            items = [self._queue.get()]
            while True:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            grouped: dict[tuple[int, int], list[str]] = {}
            waiting, stopping = [], False
            for item in items:
                if item is None:
                    stopping = True
                elif isinstance(item, threading.Event):
                    waiting.append(item)
                else:
                    grouped.setdefault((item[0], item[1]), []).extend(item[2])
            self._write(grouped)
            for event in waiting:
                event.set()
            if stopping:
                return

    def _write(self, grouped: dict[tuple[int, int], list[str]]) -> None:
        for (task_id, frame_id), lines in grouped.items():
            text = "".join(line.rstrip("\n") + "\n" for line in lines)
            try:
                self._append(task_id, frame_id, text)
            except OSError as exc:
                log.warning("could not write the render log of task %s frame %s: %s", task_id, frame_id, exc)

    def _append(self, task_id: int, frame_id: int, text: str) -> None:
        # plain strings, os.open and os.write: pathlib and a text file object cost several times the write itself
        # (bench.dispatch: a log line for every lease)
        folder = f"{self._root}/{task_id}"
        if task_id not in self._folders:  # one mkdir per task, not one per write
            os.makedirs(folder, exist_ok=True)
            if len(self._folders) > 10_000:
                self._folders.clear()
            self._folders.add(task_id)
        path = f"{folder}/{frame_id}.log"
        try:
            fd = os.open(path, APPEND, 0o666)
        except FileNotFoundError:  # the folder went away (removed by hand): make it again
            os.makedirs(folder, exist_ok=True)
            fd = os.open(path, APPEND, 0o666)
        try:
            data = text.encode("utf-8", "replace")
            while data:
                data = data[os.write(fd, data):]
        finally:
            os.close(fd)
