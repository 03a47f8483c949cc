"""Hypothesis strategies for fuzzing the server (tests/security/test_fuzz_server.py): request bodies drawn from
a route's own JSON schema, with values inside and just outside each field's bounds, real ids of the fuzzed
farm (``POOLS``, filled by the test) and hostile values anywhere."""

import json
from dataclasses import dataclass, field

from hypothesis import strategies as st

from tests.support import taskjson
from tests.support.taskjson import SCENE

HUGE_INTS = [0, -1, 1, 2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 2**70, -(2**63) - 1, 10**30]
HOSTILE_TEXT = ["", " ", "\x00", "a\x00b", "\ud800", "\udfff", "../../etc/passwd", "D:/../../secret.key", "/..",
                "..", ".", "%2e%2e%2f", "\\\\server\\share\\..\\..", "' OR 1=1 --", "%s%n%x", "${jndi:x}",
                "😀" * 3, "\u202e", "NaN", "Infinity", "null", "[]", "{}", "x" * 5000, "\r\nX-Injected: 1",
                "1-999999999", "0-9999999[1]", "1,2,3", "task.json", "D:/proj/shots/shot010.blend"]
PATTERN_EXAMPLES = ["node-1", "a.b@c", "done", "failed", "timeout", "output", "thumbnails", "Done", "-", "a" * 129]
HOSTILE_NUMBERS = [float("nan"), float("inf"), float("-inf"), -0.0, 1e308, -1e308, 5e-324, 0.5, 1.5]
SCALARS = [None, True, False, *HUGE_INTS, *HOSTILE_NUMBERS, *HOSTILE_TEXT]
# nested values, fixed once (drawing recursive structures costs more than the server takes to answer them)
NESTED = [[], {}, [None], [[1]], [2**70], ["x"], [1.5], [True], {"a": 1}, {"": None}, {"\x00": 1}, [[[[[]]]]],
          [{"taskIds": [1]}], {"a": {"b": {"c": [1, {"d": "\ud800"}]}}}, list(range(50)), ["x" * 100] * 20,
          {str(i): i for i in range(30)}, [float("nan")] * 3]
SCALAR = st.sampled_from(SCALARS) | st.integers() | st.floats() | st.text(max_size=20)
HOSTILE = SCALAR | st.sampled_from(NESTED)


@dataclass
class Pools:
    """Real ids in the fuzzed farm: the caller's and other users' tasks, frames, nodes, leases, sessions."""

    tasks: list[int] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)
    workers: list[int] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)
    leases: list[str] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)


POOLS = Pools()
ID_NAMES = {"taskId", "taskIds", "id", "ids", "frameId", "cloneOriginalId", "outUserId", "workerId", "workerIds"}


def _ids(name: str) -> st.SearchStrategy:
    def pick(pools: Pools) -> st.SearchStrategy:
        chosen = {"frameId": pools.frames, "ids": pools.frames, "id": pools.frames, "workerId": pools.workers,
                  "workerIds": pools.workers}.get(name, pools.tasks) or [1]
        return st.sampled_from(chosen)

    return st.deferred(lambda: pick(POOLS))


def _text_for(name: str, schema: dict) -> st.SearchStrategy:
    limit = min(schema.get("maxLength", 64), 64)
    plain = st.text(max_size=limit)
    if "pattern" in schema:
        plain = st.sampled_from(PATTERN_EXAMPLES) | plain
    if name == "content":
        task = st.builds(lambda frames, scene, per: json.dumps(taskjson.blender(scene, frames, frames_per_task=per)),
                         st.sampled_from(["1-3", "1-10[2]", "5", "1-999999999", "0-9999999", "3-1", "x", ""]),
                         st.sampled_from([SCENE, "D:/../../x.blend", "/etc/passwd", "", "D:/none.blend"]),
                         st.sampled_from(["1", "0", "-1", "99999999", "x"]))
        return task | st.just("{}") | plain
    if name in ("localPath", "path", "treePath", "scene"):
        return st.sampled_from(["/", "D:/proj/a.blend", "D:/proj/shots/shot010.blend", "../x", "/../../x", "D:",
                                "/1_scene/x.png", "1_scene"]) | plain
    if name == "session":
        return st.deferred(lambda: st.sampled_from(POOLS.sessions or ["s"])) | plain
    if name == "leaseId":
        return st.deferred(lambda: st.sampled_from(POOLS.leases or ["l"])) | plain
    if name == "sha256":
        return st.text(alphabet="0123456789abcdef", min_size=64, max_size=64) | plain
    return plain


def weighted(*choices: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """One of the strategies, each chosen in proportion to its weight."""
    strategies = [strategy for _, strategy in choices]
    return st.sampled_from([i for i, (weight, _) in enumerate(choices) for _ in range(weight)]).map(
        strategies.__getitem__).flatmap(lambda strategy: strategy)


def from_schema(schema: dict, defs: dict, name: str = "") -> st.SearchStrategy:
    """Values for one field: mostly of its type (inside and just outside its bounds), sometimes anything."""
    return weighted((9, _typed(schema, defs, name)), (1, HOSTILE))


def _typed(schema: dict, defs: dict, name: str) -> st.SearchStrategy:
    if "$ref" in schema:
        return _typed(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, name)
    if "anyOf" in schema:
        return st.one_of([_typed(s, defs, name) for s in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"]) | st.text(max_size=8)
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    if kind == "integer":
        low, high = schema.get("minimum", schema.get("ge")), schema.get("maximum", schema.get("le"))
        edges = [v for v in (low, high) if v is not None]
        edges += [v - 1 for v in edges if v == low] + [v + 1 for v in edges if v == high]
        inside = _ids(name) if name in ID_NAMES else st.integers(min_value=low, max_value=high)
        return weighted((8, inside), (1, st.sampled_from(HUGE_INTS + edges)))
    if kind == "number":
        low, high = schema.get("minimum", schema.get("ge")), schema.get("maximum", schema.get("le"))
        return weighted((6, st.floats(min_value=low, max_value=high)), (1, st.sampled_from(HOSTILE_NUMBERS)),
                        (1, st.integers(-5, 5)))
    if kind == "string":
        return weighted((8, _text_for(name, schema)), (1, st.sampled_from(HOSTILE_TEXT)))
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        item = _typed(schema.get("items", {}), defs, name)
        short = st.lists(item | HOSTILE if not name else item, max_size=min(schema.get("maxItems", 5), 5))
        if "maxItems" in schema and schema["maxItems"] <= 5000:
            short = weighted((9, short), (1, st.builds(lambda v, n: [v] * n, item, st.just(schema["maxItems"] + 1))))
        return short
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        if not props:
            return st.dictionaries(st.text(max_size=8), SCALAR, max_size=3)
        required = set(schema.get("required", []))
        return st.fixed_dictionaries({k: from_schema(v, defs, k) for k, v in props.items() if k in required},
                                     optional={k: from_schema(v, defs, k) for k, v in props.items()
                                               if k not in required})
    return HOSTILE


def body_strategy(model) -> st.SearchStrategy:
    schema = model.model_json_schema()
    body = _typed(schema, schema.get("$defs", {}), "")
    extra = weighted((3, st.just({})), (1, st.dictionaries(st.text(max_size=10), SCALAR, max_size=2)))
    return weighted((19, st.builds(lambda b, e: {**e, **b}, body, extra)), (1, HOSTILE))
