"""The scheduler's choice order.

Among tasks with waiting chunks:
1. a task the node cannot run is skipped: software it lacks, a task pinned to pools (hardware
   configs) none of the node's tags names, a task that failed on this node ``BLOCK_AFTER`` times,
   or a task already rendering on ``taskLimit`` nodes (unless this node is one of them and has a
   free slot — it adds no node);
2. higher priority (``taskUserLevel``) first;
3. among equals, fair share: the user with fewest running chunks first;
4. then the earliest submitted task, then the lowest id.
"""

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

BLOCK_AFTER = 2  # failures of one task on one node before that node gets no more of its chunks


@dataclass(frozen=True)
class Candidate:
    task_id: int
    user_id: int
    priority: int  # taskUserLevel: higher first
    submitted_at: float
    software: str
    limit: int | None  # nodes at most (None = no limit)
    nodes: int  # distinct nodes rendering it now
    on_this_node: bool  # this node renders a chunk of it now
    pools: Collection[str] | None = None  # node tags it may render on (its hardware configs); None: any node


def in_pool(pools: Collection[str] | None, tags: Collection[str]) -> bool:
    """A node with ``tags`` may render a task pinned to ``pools`` (None or empty: any node)."""
    return not pools or any(tag in pools for tag in tags)


def eligible(candidate: Candidate, software: Iterable[str], blocked: Mapping[int, int],
             tags: Collection[str] = ()) -> bool:
    if candidate.software not in set(software):
        return False
    if candidate.pools and not in_pool(candidate.pools, tags):
        return False
    if blocked.get(candidate.task_id, 0) >= BLOCK_AFTER:
        return False
    if candidate.limit and candidate.nodes >= candidate.limit and not candidate.on_this_node:
        return False
    return True


def rank(candidates: Iterable[Candidate], *, software: Iterable[str], blocked: Mapping[int, int],
         user_running: Mapping[int, int], tags: Collection[str] = ()) -> list[Candidate]:
    """Eligible candidates, best first (``tags``: the asking node's)."""
    names = set(software)
    chosen = [c for c in candidates if eligible(c, names, blocked, tags)]
    chosen.sort(key=lambda c: (-c.priority, user_running.get(c.user_id, 0), c.submitted_at, c.task_id))
    return chosen
