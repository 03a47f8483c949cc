"""Run `rayfarm server` with experimental patches applied in-process, to size a fix before anyone makes it.

    BENCH_WHATIF=sqlite_write_lock python -m bench.dispatch ...   # every benchmark's server gets the patches

Nothing here changes rayfarm's code on disk; the patches live only in the benchmark's server process.
Patches (comma-separated in BENCH_WHATIF):

- ``sqlite_write_lock``: on SQLite, one process-wide threading.Lock around ``Database.write()``, so
  writer threads queue on a Python lock instead of sleeping in SQLite's busy handler (which backs
  off 1, 2, 5, 10 ... 100 ms between retries, so a waiting writer often sleeps long after the lock freed).
- ``token_no_thread``: the worker token is read without a thread-pool hop once it is cached.
- ``yappi``: CPU profile of every thread of the server and of each worker, written to
  ``$BENCH_YAPPI-<pid>.txt`` when the process exits.
"""

import contextlib
import os
import sys
import threading


def apply(names: list[str]) -> None:
    if "sqlite_write_lock" in names:
        from rayfarm.store import db

        original = db.Database.write
        lock = threading.Lock()

        @contextlib.contextmanager
        def write(self):
            if not self.is_sqlite:
                with original(self) as conn:
                    yield conn
                return
            with lock, original(self) as conn:
                yield conn

        db.Database.write = write
    if "token_no_thread" in names:
        from rayfarm.server import native
        from rayfarm.store.workers import WorkerError

        async def authorized(self, request):
            import hmac

            from starlette.concurrency import run_in_threadpool

            header = request.headers.get("authorization", "")
            given = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
            expected = self._token if self._token is not None else await run_in_threadpool(self.token)
            if not given or not hmac.compare_digest(given.encode(), expected.encode()):
                raise WorkerError(401, "bad worker token")

        native.Native._authorized = authorized
    if "yappi" in names:  # CPU profile of every thread, written to $BENCH_YAPPI (pip install yappi) at exit
        import atexit
        import signal

        import yappi

        yappi.set_clock_type("cpu")
        yappi.start()

        def dump():
            yappi.stop()
            with open(os.environ.get("BENCH_YAPPI", "/tmp/yappi") + f"-{os.getpid()}.txt", "w") as out:
                yappi.get_func_stats().sort("ttot").print_all(out, columns={0: ("name", 90), 1: ("ncall", 9),
                                                                              3: ("ttot", 8), 4: ("tsub", 8)})
                yappi.get_thread_stats().print_all(out)

        atexit.register(dump)
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))


if __name__ == "__main__":
    apply([n for n in os.environ.get("BENCH_WHATIF", "").split(",") if n])
    from rayfarm.cli import main

    sys.argv[0] = "rayfarm"
    main()
