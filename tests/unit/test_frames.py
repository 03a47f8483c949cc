"""Frame ranges, priority (test) frames and chunking."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rayfarm.domain import frames as fr
from rayfarm.domain.frames import Chunk, PreFrames, Run, chunk, frame_count, parse_pre_frames, parse_range
from rayfarm.protocol.codes import ApiError


def frames_of(runs) -> list[int]:
    return [frame for run in runs for frame in run.frames()]


def indexes(chunks) -> list[str]:
    return [c.index for c in chunks]


# ---------------------------------------------------------------- parse_range: good input

@pytest.mark.parametrize("text, runs, frames", [
    ("1-250[1]", [Run(1, 250, 1)], list(range(1, 251))),
    ("1-9[2]", [Run(1, 9, 2)], [1, 3, 5, 7, 9]),
    ("5", [Run(5, 5, 1)], [5]),
    ("0", [Run(0, 0, 1)], [0]),
    ("1,3,5-7", [Run(1, 1, 1), Run(3, 3, 1), Run(5, 7, 1)], [1, 3, 5, 6, 7]),
    ("1-10[3]", [Run(1, 10, 3)], [1, 4, 7, 10]),
    ("1-11[3]", [Run(1, 10, 3)], [1, 4, 7, 10]),  # the end is trimmed to the last frame actually rendered
    ("1-12[3]", [Run(1, 10, 3)], [1, 4, 7, 10]),
    ("1-5[100]", [Run(1, 1, 100)], [1]),
    ("10-12", [Run(10, 12, 1)], [10, 11, 12]),
    ("7-7", [Run(7, 7, 1)], [7]),
    ("007-009", [Run(7, 9, 1)], [7, 8, 9]),
    ("1,5-9,20-30[2]", [Run(1, 1, 1), Run(5, 9, 1), Run(20, 30, 2)], [1, 5, 6, 7, 8, 9] + list(range(20, 31, 2))),
    ("1-9[2],2", [Run(1, 9, 2), Run(2, 2, 1)], [1, 3, 5, 7, 9, 2]),  # interleaved but disjoint
    (" 1 - 250 [ 1 ] ", [Run(1, 250, 1)], list(range(1, 251))),
    ("1-3, 5", [Run(1, 3, 1), Run(5, 5, 1)], [1, 2, 3, 5]),
    ("\t1-3,\n5 \r\n", [Run(1, 3, 1), Run(5, 5, 1)], [1, 2, 3, 5]),
])
def test_parse_range_good(text, runs, frames):
    parsed = parse_range(text)
    assert parsed == runs
    assert frames_of(parsed) == frames
    assert frame_count(parsed) == len(frames)


def test_run_len_and_frames():
    run = Run(1, 10, 3)
    assert len(run) == 4
    assert list(run.frames()) == [1, 4, 7, 10]


def test_largest_allowed_task():
    runs = parse_range(f"1-{fr.MAX_FRAMES}")
    assert frame_count(runs) == fr.MAX_FRAMES


# ---------------------------------------------------------------- parse_range: bad input

@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    ("   ", "empty"),
    ("a", "'a'"),
    ("5-1", "ends before it starts"),
    ("1-5[0]", "step"),
    ("-3", "'-3'"),
    ("1--5", "'1--5'"),
    ("1-2[x]", "'1-2[x]'"),
    ("1-2[]", "'1-2[]'"),
    ("1-5[1", "'1-5[1'"),
    ("1-5]", "'1-5]'"),
    ("1,,2", "''"),
    ("1,", "''"),
    (",1", "''"),
    ("1.5", "'1.5'"),
    ("1-5[-1]", "'1-5[-1]'"),
    ("+3", "'+3'"),
    ("1e3", "'1e3'"),
    ("１-５", "'１-５'"),  # full-width digits
    ("٣", "'٣'"),  # Arabic-Indic digit: only ASCII digits are frame numbers
    ("1-5,3", "listed twice"),
    ("1,1", "listed twice"),
    ("1-9[2],5", "listed twice"),
    ("1-10,11-20,15", "listed twice"),
    (None, "must be a string"),
    (12, "must be a string"),
    (["1-5"], "must be a string"),
    (b"1-5", "must be a string"),
    ("1-1000000000", "'1-1000000000'"),
    ("1-10000001", "not supported"),
    ("99999999", "not supported"),
    ("1234567890", "1234567890"),  # more digits than any frame number
])
def test_parse_range_bad(text, fragment):
    with pytest.raises(ApiError) as info:
        parse_range(text)
    assert info.value.code == 600
    message = info.value.message
    assert fragment in message
    # The message says what to write instead.
    assert '"1-250[1]"' in message and "start-end[step]" in message


def test_too_many_frames_is_511():
    with pytest.raises(ApiError) as info:
        parse_range(f"1-{fr.MAX_FRAMES + 1}")
    assert info.value.code == 511
    assert "split the render into several tasks" in info.value.message


def test_too_many_frames_across_items_is_511():
    half = fr.MAX_FRAMES // 2
    with pytest.raises(ApiError) as info:
        parse_range(f"1-{half},{half + 1}-{fr.MAX_FRAMES},{fr.MAX_FRAMES + 1}")
    assert info.value.code == 511


def test_too_many_items():
    text = ",".join(str(i) for i in range(fr.MAX_ITEMS + 1))
    with pytest.raises(ApiError) as info:
        parse_range(text)
    assert info.value.code == 600
    assert f"more than {fr.MAX_ITEMS} items" in info.value.message
    assert len(info.value.message) < 400


def test_error_message_stays_short_for_huge_input():
    text = "1," * 5000 + "x" * 100_000
    with pytest.raises(ApiError) as info:
        parse_range(text)
    assert info.value.code == 600
    assert len(info.value.message) < 600


# ---------------------------------------------------------------- parse_pre_frames

@pytest.mark.parametrize("text, expected", [
    (None, PreFrames()),
    ("", PreFrames()),
    ("000", PreFrames(False, False, False, ())),
    ("100", PreFrames(True, False, False, ())),
    ("010", PreFrames(False, True, False, ())),
    ("001", PreFrames(False, False, True, ())),
    ("111", PreFrames(True, True, True, ())),
    (" 101 ", PreFrames(True, False, True, ())),
    ("000:1,3-4[1]", PreFrames(False, False, False, (Run(1, 1, 1), Run(3, 4, 1)))),
    ("100:5", PreFrames(True, False, False, (Run(5, 5, 1),))),
    ("000:1-9[2]", PreFrames(False, False, False, (Run(1, 9, 2),))),
    ("100:", PreFrames(True, False, False, ())),
    ("100: ", PreFrames(True, False, False, ())),
])
def test_parse_pre_frames_good(text, expected):
    assert parse_pre_frames(text) == expected


@pytest.mark.parametrize("text", [
    "10", "1000", "abc", "200", "1 0 0", "100:x", "100:5-1", "100:1,1", "100:1-5[0]", "100::1", ":1",
    "100:1-2000", f"000:1-{fr.MAX_FRAMES + 5}", 7, 100, True, ["100"], {"first": 1},
])
def test_parse_pre_frames_bad(text):
    with pytest.raises(ApiError) as info:
        parse_pre_frames(text)
    assert info.value.code == 750
    assert "pre_frames" in info.value.message or "priority frames" in info.value.message


def test_parse_pre_frames_message_explains_format():
    with pytest.raises(ApiError) as info:
        parse_pre_frames("abc")
    assert '"100"' in info.value.message and "first, middle and last" in info.value.message


# ---------------------------------------------------------------- priority_frames

@pytest.mark.parametrize("frames_text, flags, expected", [
    # odd count: 1..9, middle is 5
    ("1-9", "100", [1]),
    ("1-9", "010", [5]),
    ("1-9", "001", [9]),
    ("1-9", "111", [1, 5, 9]),
    ("1-9", "000", []),
    # even count: 1..10, middle is the lower of the two middle frames
    ("1-10", "010", [5]),
    ("1-10", "111", [1, 5, 10]),
    ("1-2", "010", [1]),
    ("1-2", "111", [1, 2]),
    # steps and several items: positions count rendered frames, not frame numbers
    ("1-9[2]", "111", [1, 5, 9]),
    ("1-10[3]", "010", [4]),
    ("1,3,5-7", "111", [1, 5, 7]),
    ("10-20[5],100", "111", [10, 15, 100]),
    # a single frame is first, middle and last at once
    ("5", "111", [5]),
])
def test_priority_frames_flags(frames_text, flags, expected):
    assert fr.priority_frames(parse_range(frames_text), parse_pre_frames(flags)) == expected


def test_priority_frames_custom_merged_sorted_unique():
    runs = parse_range("1-10")
    assert fr.priority_frames(runs, parse_pre_frames("000:2,4")) == [2, 4]
    assert fr.priority_frames(runs, parse_pre_frames("101:4,1-2")) == [1, 2, 4, 10]


@pytest.mark.parametrize("frames_text, pre", [
    ("1-10", "000:11"),
    ("1-10", "100:0"),
    ("1-9[2]", "000:2"),  # not on the step
    ("1,3,5-7", "000:4"),
    ("1-10", "000:5-12"),
])
def test_priority_frames_outside_range(frames_text, pre):
    with pytest.raises(ApiError) as info:
        fr.priority_frames(parse_range(frames_text), parse_pre_frames(pre))
    assert info.value.code == 750
    assert "not in the task's frame range" in info.value.message


def test_priority_frames_without_runs():
    assert fr.priority_frames([], parse_pre_frames("111:1")) == []


# ---------------------------------------------------------------- chunks

@pytest.mark.parametrize("chunk_, index", [
    (Chunk(7, 7, 1), "7"),
    (Chunk(7, 7, 3), "7"),
    (Chunk(5, 8, 1), "5-8"),
    (Chunk(1, 9, 2), "1-9[2]"),
    (Chunk(0, 1, 1, True), "0-1"),
])
def test_chunk_index(chunk_, index):
    assert chunk_.index == index


@pytest.mark.parametrize("frames_text, per_chunk, expected", [
    ("1-6", 1, ["1", "2", "3", "4", "5", "6"]),
    ("1-6", 2, ["1-2", "3-4", "5-6"]),
    ("1-7", 3, ["1-3", "4-6", "7"]),
    ("1-6", 100, ["1-6"]),
    ("1-9[2]", 1, ["1", "3", "5", "7", "9"]),
    ("1-9[2]", 2, ["1-3[2]", "5-7[2]", "9"]),
    ("1-9[2]", 5, ["1-9[2]"]),
    ("1-10[3]", 3, ["1-7[3]", "10"]),
    ("1,3,5-7", 2, ["1", "3", "5-6", "7"]),  # chunks never span two items
    ("1-3,10-12", 4, ["1-3", "10-12"]),
])
def test_chunk_without_priority(frames_text, per_chunk, expected):
    chunks = chunk(parse_range(frames_text), per_chunk)
    assert indexes(chunks) == expected
    assert not any(c.priority for c in chunks)


def test_chunk_with_priority_frames_first_and_excluded():
    chunks = chunk(parse_range("1-10"), 3, [1, 5, 10])
    assert [(c.index, c.priority) for c in chunks] == [
        ("1", True), ("5", True), ("10", True), ("2-4", False), ("6-8", False), ("9", False)]


def test_chunk_priority_splits_stepped_runs():
    chunks = chunk(parse_range("1-13[2]"), 3, [7])
    assert indexes(chunks) == ["7", "1-5[2]", "9-13[2]"]
    assert [c.step for c in chunks] == [1, 2, 2]


def test_chunk_priority_per_one():
    chunks = chunk(parse_range("1-4"), 1, [2, 2])
    assert [(c.index, c.priority) for c in chunks] == [("2", True), ("1", False), ("3", False), ("4", False)]


def test_chunk_single_frame_chunk_has_step_one():
    chunks = chunk(parse_range("1-9[4]"), 2)
    assert [(c.start, c.end, c.step) for c in chunks] == [(1, 5, 4), (9, 9, 1)]


def test_chunk_refuses_zero_per_chunk():
    with pytest.raises(ValueError):
        chunk(parse_range("1-5"), 0)


@st.composite
def runs_and_priority(draw):
    """Disjoint runs written as a range string, a chunk size and some priority frames."""
    items, cursor = [], draw(st.integers(0, 20))
    for _ in range(draw(st.integers(1, 5))):
        step = draw(st.integers(1, 4))
        count = draw(st.integers(1, 15))
        end = cursor + (count - 1) * step + draw(st.integers(0, step - 1))  # untrimmed end
        items.append(f"{cursor}-{end}[{step}]" if draw(st.booleans()) or count > 1 else str(cursor))
        cursor = end + draw(st.integers(1, 10))
    runs = parse_range(",".join(items))
    every = frames_of(runs)
    priority = draw(st.lists(st.sampled_from(every), max_size=6))
    return runs, draw(st.integers(1, 7)), priority


@settings(max_examples=300, deadline=None, database=None)
@given(runs_and_priority())
def test_chunk_covers_every_frame_once(case):
    runs, per_chunk, priority = case
    chunks = chunk(runs, per_chunk, priority)
    every = frames_of(runs)
    covered = [frame for c in chunks for frame in c.frames()]
    assert sorted(covered) == sorted(every)  # every frame exactly once
    prio = [c for c in chunks if c.priority]
    main = [c for c in chunks if not c.priority]
    assert chunks == prio + main  # priority chunks come first
    assert [c.start for c in prio] == sorted(set(priority))
    assert all(c.start == c.end for c in prio)
    for c in main:
        frames = list(c.frames())
        assert frames[0] == c.start and frames[-1] == c.end  # arithmetic run, the end is a real frame
        assert 1 <= len(frames) <= per_chunk
        assert not set(frames) & set(priority)
        assert frames_of(parse_range(c.index)) == frames  # frameIndex describes the chunk exactly
        # a chunk lies inside one run and uses that run's step
        assert any(r.start <= c.start and c.end <= r.end and (len(frames) == 1 or c.step == r.step) for r in runs)
    if not priority:
        assert len(main) == sum(-(-len(r) // per_chunk) for r in runs)
