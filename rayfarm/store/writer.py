"""The render nodes' hot calls (lease, complete, heartbeat) written in batches: group commit.

On SQLite one transaction writes at a time whatever we do; threads that queue for its lock sleep in
SQLite's busy handler (1, 2, 5 ... 100 ms back-off) long after the lock is free, and each call pays its
own BEGIN IMMEDIATE, commit and thread-pool hop. Here one thread takes every call waiting at that
moment and runs them in one transaction. If any call of a batch raises, the batch is rolled back and
each of its calls runs again alone, so one call's error never changes another's result; a call's
``after`` step (log files) runs only once its transaction has committed.

On PostgreSQL each call keeps its own transaction in the thread pool: a transaction holding the row
locks of several calls could wait for another server process's in a cycle, and PostgreSQL serves
concurrent transactions well anyway.
"""

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from anyio import to_thread
from sqlalchemy import Connection

from rayfarm.store.db import Database

log = logging.getLogger("rayfarm.writer")
MAX_BATCH = 128


@dataclass
class _Call:
    fn: Callable[[Connection], Any]
    after: Callable[[Any], Any] | None
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future


def _settle(outcomes: list[tuple[asyncio.Future, bool, Any]]) -> None:
    for future, ok, value in outcomes:
        if future.done():  # the request went away (client disconnected)
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def _answer(batch: list[_Call], outcomes: list[tuple[bool, Any]]) -> None:
    """Hand each call its outcome in its event loop: one wake-up of each loop per batch, not one per call."""
    by_loop: dict[asyncio.AbstractEventLoop, list] = {}
    for call, (ok, value) in zip(batch, outcomes, strict=True):
        by_loop.setdefault(call.loop, []).append((call.future, ok, value))
    for loop, settled in by_loop.items():
        loop.call_soon_threadsafe(_settle, settled)


class Writer:
    def __init__(self, db: Database, max_batch: int = MAX_BATCH):
        self.db = db
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.batches = 0  # transactions committed by the writer thread
        self.calls = 0  # calls they carried

    @property
    def batching(self) -> bool:
        return self.db.is_sqlite and self._thread is not None

    def start(self) -> None:
        if self.db.is_sqlite and self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="rayfarm-writer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=30)

    async def run(self, fn: Callable[[Connection], Any], after: Callable[[Any], Any] | None = None) -> Any:
        """``fn(conn)`` in a write transaction, then ``after(result)`` once committed; returns what the last returned."""
        if not self.batching:
            return await to_thread.run_sync(self._alone, fn, after)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put(_Call(fn, after, loop, future))
        return await future

    def _alone(self, fn: Callable[[Connection], Any], after: Callable[[Any], Any] | None) -> Any:
        with self.db.write() as conn:
            value = fn(conn)
        return after(value) if after else value

    def _serve(self) -> None:
        while True:
            call = self._queue.get()
            if call is None:
                return
            batch = [call]
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(more)
            try:
                self._run(batch)
            except BaseException as exc:  # never leave a caller waiting
                log.exception("the writer thread failed a batch")
                _answer(batch, [(False, exc)] * len(batch))

    def _run(self, batch: list[_Call]) -> None:
        outcomes: list[tuple[bool, Any]] | None = None
        if len(batch) > 1:
            try:
                with self.db.write() as conn:
                    outcomes = [(True, call.fn(conn)) for call in batch]
            except Exception:
                outcomes = None  # rolled back as a whole: each call again, alone
        if outcomes is None:
            outcomes = []
            for call in batch:
                try:
                    with self.db.write() as conn:
                        outcomes.append((True, call.fn(conn)))
                except Exception as exc:
                    outcomes.append((False, exc))
        self.batches += 1
        self.calls += len(batch)
        answered = []
        for call, (ok, value) in zip(batch, outcomes, strict=True):
            if ok and call.after is not None:
                try:
                    value = call.after(value)
                except Exception as exc:
                    ok, value = False, exc
            answered.append((ok, value))
        _answer(batch, answered)
