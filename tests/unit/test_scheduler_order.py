from rayfarm.scheduler.order import BLOCK_AFTER, Candidate, eligible, in_pool, rank


def cand(task_id, user=1, level=50, submitted=0.0, software="blender", limit=None, nodes=0, mine=False, pools=None):
    return Candidate(task_id, user, level, submitted, software, limit, nodes, mine, pools)


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


def test_a_task_pinned_to_pools_goes_only_to_nodes_with_one_of_their_tags():
    pinned = cand(1, pools=["gpu"])
    assert not eligible(pinned, ["blender"], {})  # a node without tags
    assert not eligible(pinned, ["blender"], {}, tags=["cpu", "fast"])
    assert eligible(pinned, ["blender"], {}, tags=["fast", "gpu"])
    assert eligible(cand(1, pools=["gpu", "big"]), ["blender"], {}, tags=["big"])  # several pools: any of them
    for anywhere in (None, []):  # "Default": any node, tagged or not
        assert eligible(cand(1, pools=anywhere), ["blender"], {})
        assert eligible(cand(1, pools=anywhere), ["blender"], {}, tags=["gpu"])
    assert not eligible(cand(1, software="command", pools=["gpu"]), ["blender"], {}, tags=["gpu"])  # software still


def test_rank_skips_tasks_of_other_pools():
    ranked = rank([cand(1, level=90, pools=["gpu"]), cand(2, pools=["cpu"]), cand(3, level=10)],
                  software=["blender"], blocked={}, user_running={}, tags=["cpu"])
    assert [c.task_id for c in ranked] == [2, 3]
    assert [c.task_id for c in rank([cand(1, pools=["gpu"])], software=["blender"], blocked={}, user_running={})] == []


def test_in_pool():
    assert in_pool(None, []) and in_pool([], ["x"]) and in_pool(["a", "b"], ["b"])
    assert not in_pool(["a"], []) and not in_pool(["a"], ["A"])  # tags are exact
