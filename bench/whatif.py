"""Run `rayfarm server` and `rayfarm worker` with in-process switches, to look inside a benchmark's processes.

    BENCH_WHATIF=yappi BENCH_YAPPI=/tmp/prof python -m bench.dispatch ...   # every benchmark's processes get it

Nothing here changes rayfarm's code on disk; the switches live only in the benchmark's processes
(bench/harness.py starts them through this module when BENCH_WHATIF is set). Switches (comma-separated):

- ``yappi``: CPU profile of every thread of the server and of each worker, written to
  ``$BENCH_YAPPI-<pid>.txt`` when the process exits (`pip install yappi`).

The what-if patches measured before they became rayfarm's code are gone with them: ``sqlite_write_lock``
(the SQLite writers' Python lock, `Database.write()` since 71702fd) and ``token_no_thread`` (the cached
worker token read without a thread hop, `Native._authorized` since d16d346).
"""

import os
import sys


def apply(names: list[str]) -> None:
    unknown = set(names) - {"yappi"}
    if unknown:
        raise SystemExit(f"BENCH_WHATIF: unknown switch(es) {', '.join(sorted(unknown))}; known: yappi")
    if "yappi" in names:  # CPU profile of every thread, written to $BENCH_YAPPI at exit
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
