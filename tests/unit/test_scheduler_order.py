from rayfarm.scheduler.order import BLOCK_AFTER, Candidate, eligible, rank


def cand(task_id, user=1, level=50, submitted=0.0, software="blender", limit=None, nodes=0, mine=False):
    return Candidate(task_id, user, level, submitted, software, limit, nodes, mine)


def test_higher_level_first_then_submit_time():
    ranked = rank([cand(1, level=50, submitted=1), cand(2, level=80, submitted=2), cand(3, level=50, submitted=0)],
                  software=["blender"], blocked={}, user_running={})
    assert [c.task_id for c in ranked] == [2, 3, 1]


def test_fair_share_between_users_with_equal_level():
    ranked = rank([cand(1, user=1, submitted=0), cand(2, user=2, submitted=5)], software=["blender"], blocked={},
                  user_running={1: 3, 2: 0})
    assert [c.task_id for c in ranked] == [2, 1]


def test_level_beats_fair_share():
    ranked = rank([cand(1, user=1, level=60), cand(2, user=2, level=50)], software=["blender"], blocked={},
                  user_running={1: 10})
    assert [c.task_id for c in ranked] == [1, 2]


def test_software_capability_filters():
    assert not eligible(cand(1, software="command"), ["blender"], {})
    assert eligible(cand(1, software="command"), ["blender", "command"], {})


def test_blocklist_after_two_failures():
    assert eligible(cand(1), ["blender"], {1: BLOCK_AFTER - 1})
    assert not eligible(cand(1), ["blender"], {1: BLOCK_AFTER})
    assert BLOCK_AFTER == 2


def test_task_limit_counts_nodes():
    assert not eligible(cand(1, limit=1, nodes=1), ["blender"], {})
    assert eligible(cand(1, limit=1, nodes=1, mine=True), ["blender"], {})  # same node adds no node
    assert eligible(cand(1, limit=2, nodes=1), ["blender"], {})
    assert eligible(cand(1, limit=None, nodes=50), ["blender"], {})
