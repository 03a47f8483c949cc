"""Fuzzing the pure parsers: whatever comes in, the only exception is the documented one."""

import copy
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rayfarm.domain import frames, taskjson
from rayfarm.protocol import signing
from rayfarm.protocol.codes import ApiError

FUZZ = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# Any text, lone surrogates included (json.loads('"\\ud800"') produces them).
ANY_TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=20)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | ANY_TEXT
JSON_LIKE = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(ANY_TEXT, inner, max_size=4), max_leaves=25)
PLAIN_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
                          lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                       max_size=4),
                          max_leaves=25)
HEADERS = st.fixed_dictionaries({}, optional={name: ANY_TEXT | st.integers() for name in signing.SIGNED_HEADERS})
RANGE_TEXT = st.text(alphabet=st.sampled_from(list("0123456789-[],: \t\nx")), max_size=40)


# ---------------------------------------------------------------- signing

@FUZZ
@given(headers=HEADERS, body=st.dictionaries(ANY_TEXT, JSON_LIKE, max_size=6) | JSON_LIKE, host=ANY_TEXT,
       path=ANY_TEXT)
def test_string_to_sign_only_raises_canonical_error(headers, body, host, path):
    try:
        message = signing.string_to_sign(host, path, headers, body)
    except signing.CanonicalError:
        return
    assert message.startswith(f"[POST]{host}:{path}&")
    signature = signing.sign("key", message)  # a message that was built can always be signed
    assert signing.verify("key", message, signature)


@settings(max_examples=150, deadline=None, database=None)
@given(body=st.dictionaries(st.text(max_size=8), PLAIN_JSON, max_size=5))
def test_string_to_sign_is_stable_through_json(body):
    """What the farm signs after parsing the JSON body equals what was signed before sending it."""
    headers = {"accessId": "a", "channel": "4", "platform": "2", "UTCTimestamp": "1", "nonce": "2", "version": "2.0.0"}
    def signed(value):
        try:
            return signing.string_to_sign("h:1", "/p", headers, value)
        except signing.CanonicalError:  # an ambiguous body (two values under one signed name) is refused alike
            return signing.CanonicalError

    assert signed(body) == signed(json.loads(json.dumps(body)))


@FUZZ
@given(message=ANY_TEXT, signature=ANY_TEXT)
def test_verify_never_raises(message, signature):
    assert signing.verify("key", message, signature) in (True, False)


# ---------------------------------------------------------------- frames

@FUZZ
@given(st.one_of(RANGE_TEXT, ANY_TEXT, JSON_LIKE))
def test_parse_range_only_raises_api_error(text):
    try:
        runs = frames.parse_range(text)
    except ApiError as exc:
        assert exc.code in (600, 511)
        assert exc.message
        return
    assert runs
    every = [frame for run in runs for frame in run.frames()]
    assert len(every) == len(set(every)) == frames.frame_count(runs)
    assert all(run.step >= 1 and run.start <= run.end and (run.end - run.start) % run.step == 0 for run in runs)


@FUZZ
@given(st.one_of(RANGE_TEXT.map(lambda t: "100:" + t), st.from_regex(r"[01]{3}(:.*)?", fullmatch=True),
                 RANGE_TEXT, ANY_TEXT, JSON_LIKE))
def test_parse_pre_frames_only_raises_api_error(text):
    try:
        pre = frames.parse_pre_frames(text)
    except ApiError as exc:
        assert exc.code == 750
        return
    assert isinstance(pre, frames.PreFrames)
    try:
        chosen = frames.priority_frames(frames.parse_range("1-100"), pre)
    except ApiError as exc:
        assert exc.code == 750
        return
    assert chosen == sorted(set(chosen))


# ---------------------------------------------------------------- task.json

VALID = {
    "software_config": {"cg_name": "Blender", "cg_version": "3.6", "plugins": {}},
    "task_info": {"input_cg_file": "D:/proj/a.blend", "frames_per_task": "2", "pre_frames": "100",
                  "stop_after_test": "1", "cg_id": "2007"},
    "scene_info_render": {"common": {"frames": "1-6[1]", "width": "1920", "height": "1080", "Render_Format": "PNG"}},
    "additional_info": {"command": ["x"]},
}
KEYS = [(section, key) for section in ("software_config", "task_info") for key in VALID[section]] + [
    ("scene_info_render", "common"), ("additional_info", "command"), ("task_info", "job_stop_time"),
    ("task_info", "max_attempts"), ("task_info", "project_name"), ("task_info", "time_out"),
]
COMMON_KEYS = list(VALID["scene_info_render"]["common"]) + ["camera_name"]


def _parse_or_api_error(content):
    try:
        spec = taskjson.parse(content)
    except ApiError as exc:
        assert exc.code in (600, 740, 741, 750, 511), exc
        assert exc.message
        return None
    assert spec.total_frames >= 1
    assert spec.per_chunk >= 1
    assert spec.pause_after_test == bool(spec.pause_after_test and spec.priority)
    taskjson.describe(spec)
    return spec


@FUZZ
@given(st.one_of(ANY_TEXT, st.text(max_size=200), st.binary(max_size=100)))
def test_parse_arbitrary_text(content):
    _parse_or_api_error(content)


@FUZZ
@given(JSON_LIKE | PLAIN_JSON)
def test_parse_arbitrary_json(value):
    try:
        content = json.dumps(value)
    except (UnicodeEncodeError, ValueError):
        return
    _parse_or_api_error(content)


@FUZZ
@given(changes=st.lists(st.tuples(st.sampled_from(KEYS), JSON_LIKE | RANGE_TEXT), max_size=3),
       common=st.lists(st.tuples(st.sampled_from(COMMON_KEYS), JSON_LIKE | RANGE_TEXT), max_size=3),
       software=st.sampled_from(["Blender", "command", "blender", "Maya", ""]))
def test_parse_mutated_valid_task(changes, common, software):
    data = copy.deepcopy(VALID)
    data["software_config"]["cg_name"] = software
    for (section, key), value in changes:
        data[section][key] = value
    if isinstance(data["scene_info_render"]["common"], dict):
        for key, value in common:
            data["scene_info_render"]["common"][key] = value
    _parse_or_api_error(json.dumps(data))


# ---------------------------------------------------------------- request bodies and storage paths

@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(sorted(__import__("rayfarm.server.table", fromlist=["TABLE"]).TABLE)),
       body=st.dictionaries(ANY_TEXT | st.sampled_from(["taskIds", "taskId", "count", "pageSize", "path", "ids"]),
                            JSON_LIKE, max_size=6))
def test_models_parse_only_raises_600_or_601(path, body):
    """Whatever JSON object arrives, validation answers with the body model or ApiError 600/601 naming a field."""
    from rayfarm.server import models
    from rayfarm.server.table import TABLE

    try:
        parsed = models.parse(TABLE[path].model, body)
    except ApiError as exc:
        assert exc.code in (600, 601) and "'" in exc.message, exc
        return
    assert isinstance(parsed, TABLE[path].model)


@FUZZ
@given(relative=ANY_TEXT | st.text(alphabet=st.sampled_from(list("ab./\\~\x00%")), max_size=40)
       | st.just("a" * 5000) | st.just("/".join(["a"] * 3000)))
def test_inside_only_raises_api_error_and_never_leaves_the_root(tmp_path_factory, relative):
    from pathlib import Path

    from rayfarm.files.storage import inside

    root = Path(tmp_path_factory.getbasetemp()) / "inside-root"
    root.mkdir(exist_ok=True)
    try:
        found = inside(root, relative)
    except ApiError as exc:
        assert exc.code == 600
        return
    assert found == root.resolve() or root.resolve() in found.parents
