"""Celery's side of bench.peers. Runs in Celery's own venv (.venv-bench-celery): stdlib and Celery only.

As the worker app:  python -m celery -A bench.peers_celery worker --pool prefork --concurrency 8
As the client:      python -m bench.peers_celery        (driven by bench.peers over stdin/stdout)

Broker and result backend: the Redis at BENCH_CELERY_BROKER (db 0 for messages, db 1 for results).
Settings a render farm would need: a task is acknowledged only once it has run (task_acks_late), and a
pool process takes one message at a time (worker_prefetch_multiplier=1), so a lost node loses no work and
no node hoards tasks. Everything else is Celery's default.

The client answers one JSON line per job: it prints {"ready": ...} once a first task came back (the
worker is up and connected), then for each line {"argv": [...], "count": N} read from stdin it sends N
tasks as one group, waits for every result (join_native: Redis pub/sub, no polling) and prints the
wall time from the first send to the last result.
"""

import json
import os
import subprocess
import sys
import time

from celery import Celery, group

BROKER = os.environ.get("BENCH_CELERY_BROKER", "redis://127.0.0.1:6379")

app = Celery("bench_peers", broker=f"{BROKER}/0", backend=f"{BROKER}/1")
app.conf.update(
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
)


@app.task(name="bench.run_command")
def run_command(argv: list[str]) -> int:
    """What a farm node does with a chunk: run the program (argument list, no shell), keep its output."""
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True).returncode


def main() -> None:
    import celery

    run_command.delay(["true"]).get(timeout=120)  # the worker is up; connections are open
    print(json.dumps({"ready": True, "celery": celery.__version__}), flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        began = time.perf_counter()
        result = group(run_command.s(job["argv"]) for _ in range(job["count"])).apply_async()
        sent = time.perf_counter()
        codes = result.join_native(timeout=job.get("timeout", 900))
        seconds = time.perf_counter() - began
        result.forget()
        print(json.dumps({"wall_s": seconds, "send_s": sent - began, "results": len(codes),
                          "failed": sum(1 for code in codes if code != 0)}), flush=True)


if __name__ == "__main__":
    main()
