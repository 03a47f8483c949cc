"""What the render nodes logged about their results: accepted by the server, refused, or dropped."""

import collections
import re
from collections.abc import Iterable

from tests.support.processes import FarmWorker, wait_for

ACCEPTED = re.compile(r"result (\w+) accepted for task (\d+) chunk (\S+) ")
# a result the node did not get accepted: refused by the server, or given up when the server took the chunk back
NOT_ACCEPTED = re.compile(r"result (\w+) (?:not accepted|dropped) for task (\d+) chunk (\S+) ")


def accepted_results(workers: Iterable[FarmWorker]) -> collections.Counter:
    """(task id, chunk, node) -> results the server accepted, as the nodes logged them."""
    found = collections.Counter()
    for worker in workers:
        for match in ACCEPTED.finditer(worker.log()):
            found[(int(match.group(2)), match.group(3), worker.name)] += 1
    return found


def accepted_per_chunk(workers: Iterable[FarmWorker]) -> collections.Counter:
    """(task id, chunk) -> accepted results over all nodes."""
    per_chunk = collections.Counter()
    for (task_id, chunk, _node), count in accepted_results(workers).items():
        per_chunk[(task_id, chunk)] += count
    return per_chunk


def not_accepted(workers: Iterable[FarmWorker]) -> collections.Counter:
    """(task id, chunk) -> results the nodes did not get accepted."""
    refused = collections.Counter()
    for worker in workers:
        for match in NOT_ACCEPTED.finditer(worker.log()):
            refused[(int(match.group(2)), match.group(3))] += 1
    return refused


def wait_reported(workers: Iterable[FarmWorker], chunks: set[tuple[int, str]], timeout: float = 60) -> None:
    """Wait until the nodes have logged an answer for every chunk: the server commits a result before the
    node reads the answer, so a finished task can be seen a moment before its node's last log line."""
    workers = list(workers)

    def logged() -> bool:
        return chunks <= set(accepted_per_chunk(workers)) | set(not_accepted(workers))

    wait_for(logged, timeout, "the nodes to log the answers to their results",
             details=lambda: "\n".join(w.log()[-2000:] for w in workers))
