"""Fuzzing the real server: thousands of generated requests over every route of both APIs.

Bodies are generated (hypothesis) from the routes' own pydantic models (their JSON schema), with values
inside and outside each field's bounds, ids of the caller's and of other users' tasks, frames, nodes and
leases, and hostile values anywhere (NaN, 2**70, NUL, lone surrogates, '..', huge strings, wrong
types). Most requests are properly signed (or carry the worker token, or a dashboard session) so that
they reach the handlers; the rest are unsigned or malformed. The server must never answer HTTP 5xx, a
code-500 envelope or a traceback, and its log must have no traceback.

CI sends FUZZ_REQUESTS (1,500) requests; `RAYFARM_FULL=1` sends 12,000 (see BENCHMARKS.md, "Security
fuzzing"); `RAYFARM_FUZZ_REQUESTS=N` sends N.
"""

import json
import os
import queue
import secrets
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from rayfarm.protocol import nodes as native
from rayfarm.protocol import signing
from rayfarm.server.table import TABLE
from tests.integration.support import Raw
from tests.security.support import (
    SCENE,
    Node,
    blender_task_json,
    command_task,
    make_users,
    ok,
    start_farm,
    submitted_task,
)

FULL = os.environ.get("RAYFARM_FULL") == "1"
FUZZ_REQUESTS = int(os.environ.get("RAYFARM_FUZZ_REQUESTS") or (12_000 if FULL else 1_500))
SENDERS = 8
NATIVE_JSON = {"/v1/worker/register": native.Register, "/v1/worker/lease": native.LeaseRequest,
               "/v1/worker/heartbeat": native.Heartbeat, "/v1/worker/complete": native.Complete}
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


# ------------------------------------------------------------------ values from a route's JSON schema


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
        task = st.builds(lambda frames, scene, per: json.dumps(blender_task_json(scene, frames, frames_per_task=per)),
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


# ------------------------------------------------------------------ requests


@dataclass
class Spec:
    kind: str  # signed | web | native | output | fetch | raw
    path: str
    body: object = None
    who: int = 0
    method: str = "POST"
    headers: dict = field(default_factory=dict)
    content: bytes | None = None


HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40).map(str.strip)
BODIES = {path: body_strategy(route.model) for path, route in TABLE.items()}
NATIVE_SPEC = st.one_of([st.builds(lambda body, path=path: Spec("native", path, body), body_strategy(model))
                         for path, model in sorted(NATIVE_JSON.items())])
SIGNED_SPEC = st.one_of([st.builds(lambda body, who, path=path: Spec("signed", path, body, who), BODIES[path],
                                   st.integers(0, 2)) for path in sorted(TABLE)])
WEB_SPEC = st.one_of([st.builds(lambda body, path=path: Spec("web", path, body), BODIES[path]) for path in sorted(TABLE)])


WORKER_HEADER = st.deferred(lambda: st.sampled_from([str(w) for w in POOLS.workers] or ["1"])) | \
    st.sampled_from([str(v) for v in HUGE_INTS] + ["x", "", "-1", "1_0"])
OUTPUT_SPEC = st.builds(
    lambda lease, name, worker, content: Spec("output", f"/v1/worker/output/{quote(lease, safe='')}/"
                                                        f"{quote(name, safe='')}",
                                              method="PUT", headers={"X-Worker-Id": worker}, content=content),
    st.deferred(lambda: st.sampled_from(POOLS.leases or ["l"])) | st.text(min_size=1, max_size=70),
    st.sampled_from(["out.png", "..", ".x", "a b.png", "%2e%2e"]) | st.text(min_size=1, max_size=30),
    WORKER_HEADER, st.binary(max_size=64))
FETCH_SPEC = st.builds(
    lambda what, frame, index, worker: Spec("fetch", f"/v1/worker/{what}/{frame}" + (f"/{index}" if what == "input"
                                                                                        else ""),
                                            method="GET", headers={"X-Worker-Id": worker}),
    st.sampled_from(["scene", "input"]), st.deferred(lambda: st.sampled_from(POOLS.frames or [1])) |
    st.sampled_from([0, 2**31, 2**64, 10**30]), st.sampled_from([0, 1, 2**63, 10**25]), WORKER_HEADER)
RAW_SPEC = st.builds(
    lambda path, method, headers, content: Spec("raw", path, method=method, headers=headers, content=content),
    st.sampled_from(sorted(TABLE) + list(NATIVE_JSON) + ["/v1/upload/x", "/web/api/render/handle/queryTaskInfo/v2",
                                                        "/web/signin", "/web/me"])
    | st.text(alphabet="abcdefghijklmnopqrstuvwxyz/._-%0123456789", max_size=40).map(lambda p: "/api/" + p)
    | st.text(alphabet="abcdefghijklmnopqrstuvwxyz/._-%0123456789", max_size=40).map(lambda p: "/v1/worker/" + p),
    st.sampled_from(["POST", "GET", "PUT", "DELETE", "PATCH"]),
    st.dictionaries(st.sampled_from(["accessId", "signature", "nonce", "UTCTimestamp", "platform", "channel",
                                     "version", "Authorization", "Content-Type", "X-Worker-Id", "X-Worker-Session",
                                     "X-Rayfarm-Web", "Origin"]), HEADER_TEXT, max_size=7),
    st.binary(max_size=200) | st.sampled_from([b"{", b"[]", b"null", b"{\"taskIds\": [1,", b"\xff\xfe", b"{}" * 50,
                                               b"[" * 5000, b'{"a": NaN}', b'{"taskIds": [1e999]}']))

# one_of over these would weigh each route alike (it flattens): pick the kind of request first
KINDS = {"signed": SIGNED_SPEC, "web": WEB_SPEC, "native": NATIVE_SPEC, "output": OUTPUT_SPEC, "fetch": FETCH_SPEC,
         "raw": RAW_SPEC}
SPEC = st.sampled_from(["signed"] * 5 + ["native"] * 2 + ["web", "output", "fetch", "raw"]).flatmap(KINDS.get)


# ------------------------------------------------------------------ the farm and the senders


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    yield from start_farm(tmp_path_factory, "fuzz", "--rate-limit", "0")


@pytest.fixture(scope="module")
def callers(farm):
    users = make_users(farm, "fuzz-admin", "fuzz-a", "fuzz-b", commands=("fuzz-a",), admins=("fuzz-admin",))
    raws = [Raw(farm, user) for user in users]
    for user in users:
        farm.input_file(user, SCENE)
    for raw in raws:
        submitted = [submitted_task(raw, "1-3")] + ([command_task(raw, "1-4")] if raw is raws[1] else [])
        for task_id in submitted:
            items = ok(raw, "/api/render/handle/queryTaskFrames", {"taskId": task_id})["items"]
            POOLS.frames += [item["id"] for item in items]
        POOLS.tasks += submitted + ok(raw, "/api/render/submit/createTask", {"count": 1})["taskIdList"]
    nodes = [Node(farm, "fuzz-node-1", ("command", "blender")), Node(farm, "fuzz-node-2")]
    for node in nodes:
        POOLS.workers.append(node.id)
        POOLS.sessions.append(node.session)
        POOLS.leases += [lease["leaseId"] for lease in node.lease(2)]
    web = httpx.Client(base_url=farm.url, timeout=60)
    signin = web.post("/web/signin", json={"accessId": users[1].access_id, "accessKey": users[1].access_key},
                      headers={"X-Rayfarm-Web": "1"})
    assert signin.json()["code"] == 200
    yield {"users": users, "raws": raws, "nodes": nodes, "web": web}
    web.close()
    for item in raws + nodes:
        item.close()


class Sender:
    """Threads that send the generated requests concurrently and keep every wrong answer."""

    def __init__(self, farm, callers):
        self.farm, self.callers = farm, callers
        self.work: queue.Queue = queue.Queue(maxsize=4 * SENDERS)
        self.wrong: list[tuple] = []
        self.sent = 0
        self.by_kind: dict[str, int] = {}
        self.answers: Counter = Counter()  # (kind, Renderbus code or HTTP status)
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(SENDERS)]
        for thread in self.threads:
            thread.start()

    def run(self) -> None:
        with httpx.Client(base_url=self.farm.url, timeout=120) as http:
            while (spec := self.work.get()) is not None:
                try:
                    response = self.send(http, spec)
                    problem = self.check(spec, response)
                except httpx.HTTPError as exc:
                    problem = f"transport error {exc!r}"
                with self.lock:
                    self.sent += 1
                    self.by_kind[spec.kind] = self.by_kind.get(spec.kind, 0) + 1
                    self.answers[(spec.kind, self.outcome(spec, response) if not problem else "wrong")] += 1
                    if problem:
                        self.wrong.append((problem, spec))

    def send(self, http: httpx.Client, spec: Spec) -> httpx.Response:
        token = self.farm.worker_token()
        if spec.kind in ("signed", "web"):
            content = json.dumps(spec.body).encode("utf-8", "surrogatepass")
            if spec.kind == "web":
                cookie = "; ".join(f"{k}={v}" for k, v in self.callers["web"].cookies.items())
                headers = {"X-Rayfarm-Web": "1", "Content-Type": "application/json", "Cookie": cookie}
                return http.post("/web/api/" + spec.path.removeprefix("/api/"), content=content, headers=headers)
            raw = self.callers["raws"][spec.who]
            try:
                headers = raw.headers(spec.path, spec.body if isinstance(spec.body, dict) else {})
            except signing.CanonicalError:
                headers = raw.headers(spec.path, {})
            return http.post(spec.path, content=content, headers=headers)
        headers = {"Authorization": f"Bearer {token}", **spec.headers}
        if spec.kind == "native":
            node = self.callers["nodes"][0]
            body = spec.body
            if isinstance(body, dict) and body.get("workerId") in POOLS.workers and secrets.randbelow(2):
                body = {**body, "session": node.session, "workerId": node.id}
            content = json.dumps(body).encode("utf-8", "surrogatepass")
            return http.post(spec.path, content=content, headers={**headers, "Content-Type": "application/json"})
        if spec.kind in ("output", "fetch"):
            node = self.callers["nodes"][secrets.randbelow(2)]
            headers.setdefault("X-Worker-Session", node.session)
            return http.request(spec.method, spec.path, headers=headers, content=spec.content)
        return http.request(spec.method, spec.path, headers=spec.headers, content=spec.content)

    @staticmethod
    def outcome(spec: Spec, response: httpx.Response):
        if spec.kind in ("signed", "web") and response.headers.get("content-type", "").startswith("application/json"):
            return response.json().get("code")
        return response.status_code

    @staticmethod
    def check(spec: Spec, response: httpx.Response) -> str | None:
        text = response.text
        if response.status_code >= 500:
            return f"HTTP {response.status_code}: {text[:300]}"
        if "Traceback" in text or 'File "' in text:
            return f"traceback in the answer: {text[:300]}"
        api = spec.kind in ("signed", "web") or (spec.kind == "raw" and spec.path.startswith(("/api/", "/web/api/")))
        if api and response.headers.get("content-type", "").startswith("application/json"):
            payload = response.json()
            if not isinstance(payload, dict) or payload.get("code") == 500:
                return f"code 500 envelope: {text[:300]}"
            if payload.get("code") != 200 and not (isinstance(payload.get("message"), str) and " " in payload["message"]):
                return f"error without a sentence: {text[:300]}"
        elif spec.kind in ("signed", "web") and response.status_code == 200 and spec.path != "/api/rayfarm/file/download":
            return f"not an envelope: {response.headers.get('content-type')} {text[:200]}"
        return None

    def finish(self) -> None:
        for _ in self.threads:
            self.work.put(None)
        for thread in self.threads:
            thread.join(timeout=600)


def test_generated_requests_never_get_a_500_or_a_traceback(farm, callers):
    sender = Sender(farm, callers)

    # CI draws the same requests every run (a red CI is a bug, not luck); the full run explores anew
    @settings(max_examples=FUZZ_REQUESTS, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), derandomize=not FULL)
    @given(spec=SPEC)
    def generate(spec):
        sender.work.put(spec)

    try:
        generate()
    finally:
        sender.finish()
    shown = "\n".join(f"{problem}\n    {spec}"[:1500] for problem, spec in sender.wrong[:15])
    assert not sender.wrong, f"{len(sender.wrong)} wrong answers of {sender.sent}:\n{shown}"
    assert sender.sent >= FUZZ_REQUESTS * 0.95, (sender.sent, sender.by_kind)
    assert min(sender.by_kind.values()) > FUZZ_REQUESTS // 100, sender.by_kind  # every kind of request was sent
    assert "Traceback" not in farm.log(), farm.log()[-5000:]
    print(f"\n{sender.sent} requests; answers by kind and code: {sorted(sender.answers.items(), key=str)}")
    # most signed requests reach the handlers (they are refused for their content, not their signature)
    signed = {code: n for (kind, code), n in sender.answers.items() if kind == "signed"}
    assert sum(n for code, n in signed.items() if code not in (602, 603, 610, 611)) > 0.8 * sum(signed.values())
    assert sum(n for code, n in signed.items() if code == 200) > 0.1 * sum(signed.values())


# ------------------------------------------------------------------ what fuzzing found, pinned down


def test_found_out_of_range_ids_and_codes_are_refused_not_crashed(farm, callers):
    admin, user = callers["raws"][0], callers["raws"][1]
    for raw, path, body in [(admin, "/api/rayfarm/worker/setMode", {"workerIds": [10**30], "mode": "enable"}),
                            (user, "/api/render/handle/recommitTasks", {"taskIds": [POOLS.tasks[0]], "status": [2**70]}),
                            (user, "/api/render/handle/stopTaskFrames", {"taskId": 1, "selectAll": 1, "status": [2**64]}),
                            (user, "/api/render/handle/loadingFrameThumbnail", {"id": 1, "frameStatus": 2**63})]:
        answer = raw.call(path, body)
        assert answer["code"] == 600, (path, answer)


def test_found_native_values_the_database_cannot_hold_are_refused(farm, callers):
    node = callers["nodes"][1]
    for path, body in [("register", {"name": "n1", "hostname": "a\x00b"}), ("register", {"name": "n1", "memory": 2**64}),
                       ("heartbeat", {"workerId": node.id, "session": node.session, "cpu": float("nan")}),
                       ("heartbeat", {"workerId": node.id, "session": node.session, "memUsed": 2**63}),
                       ("heartbeat", {"workerId": 2**63, "session": node.session}),
                       ("complete", {"workerId": node.id, "session": node.session, "leaseId": "l\x00",
                                     "result": "done"}),
                       ("complete", {"workerId": node.id, "session": node.session, "leaseId": "l", "result": "done",
                                     "executeSeconds": float("inf")})]:
        response = node.http.post(f"/v1/worker/{path}", content=json.dumps(body), headers={"Content-Type": "application/json"})
        assert response.status_code == 422, (path, body, response.text)
    for url, headers in [("/v1/worker/scene/100000000000000000000", {}), ("/v1/worker/input/1/10000000000000000000", {}),
                         ("/v1/worker/scene/1", {"X-Worker-Id": str(2**64)})]:
        response = node.http.get(url, headers=headers)
        assert response.status_code in (404, 422), (url, response.text)
    assert node.http.put("/v1/worker/output/%00/a.png", content=b"x").json() == {"accepted": False}
    assert node.http.put("/v1/upload/%00?offset=0", content=b"x").status_code == 404


def test_found_text_that_is_not_unicode_is_refused_on_the_dashboard_api(farm, callers):
    """The dashboard API has no signature (which refuses such text first): validation must."""
    web = callers["web"]
    for path, body in [("rayfarm/file/download", {"path": "\ud800.png"}),
                       ("render/file/operate/getOutputUserDirFile", {"treePath": "/\udfff"}),
                       ("render/submit/createTask", {"count": 1, "artist": "\ud800"}),
                       ("render/handle/getTaskList/v2", {"searchKeyword": "\ud800"}),
                       ("render/project/add", {"newName": "a\udc80"}),
                       ("render/submit/createTask", {"count": 1, "\ud800": 1})]:
        response = web.post("/web/api/" + path, content=json.dumps(body), headers={"X-Rayfarm-Web": "1",
                                                                                  "Content-Type": "application/json"})
        answer = response.json()
        assert response.status_code == 200 and answer["code"] == 600, (path, answer)
    node = callers["nodes"][1]
    response = node.http.post("/v1/worker/register", content=json.dumps({"name": "n2", "hostname": "\ud800"}),
                              headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text


def test_found_one_name_given_twice_at_the_same_moment_is_one_node_or_project(farm, callers):
    token = farm.worker_token()

    def register(_):
        with httpx.Client(base_url=farm.url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as http:
            response = http.post("/v1/worker/register", json={"name": "twin"})
            assert response.status_code == 200, response.text
            return response.json()["workerId"]

    def add_project(index):
        raw = Raw(farm, callers["users"][2])
        try:
            return raw.call("/api/render/project/add", {"newName": "same-moment"})["code"]
        finally:
            raw.close()

    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(register, range(16)))
        codes = sorted(pool.map(add_project, range(16)))
    assert len(ids) == 1
    assert codes == [200] + [503] * 15, codes
    assert "Traceback" not in farm.log()
