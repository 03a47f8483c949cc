"""The render nodes' protocol (docs/worker-protocol.md): every message shape in one place.

Requests are pydantic models: the server validates what nodes send with them, and nodes, the bench's
fake nodes and tests build their bodies with them (``body(Model, ...)``). Answers are TypedDicts: the
server builds them, nodes read them. Paths are under ``API``.
"""

from typing import Annotated, Any, TypedDict

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from rayfarm.protocol.text import unstorable

VERSION = 1  # the worker protocol this code speaks (a node sends it at register, the server answers its own)
OLDEST = 1  # the oldest protocol a server of this code still serves (older nodes are refused with 426)
API = "/v1/worker"
TOKEN_HEADER = "Authorization"  # "Bearer <farm worker token>"
ID_HEADER, SESSION_HEADER = "X-Worker-Id", "X-Worker-Session"  # on the calls without a JSON body
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_LOG_LINES = 2000
MAX_ID = 2**31 - 1  # ids are 32-bit integer columns
RESULTS = ("done", "failed", "timeout")


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


def _storable(text: str) -> str:
    if unstorable(text):
        raise ValueError("text must not contain NUL characters or lone surrogates")
    return text


def Text(max_length: int, **more) -> type[str]:  # noqa: N802 - a type
    """A string the database can store: bounded, without NUL characters."""
    return Annotated[str, AfterValidator(_storable), Field(max_length=max_length, **more)]


WorkerId = Annotated[int, Field(ge=1, le=MAX_ID)]
Bytes = Annotated[int, Field(ge=0, le=2**62)]  # a memory size (64-bit integer column)
Sample = Annotated[float, Field(ge=0, le=1e15, allow_inf_nan=False)]  # cpu %, memory, seconds
LogLines = Annotated[list[Annotated[str, Field(max_length=8192)]], Field(max_length=MAX_LOG_LINES)]


class Register(Body):
    """``POST register``: who the node is and what it can render (``software``: name -> version)."""
    name: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._@-]+$")]
    hostname: Text(255) = ""
    slots: Annotated[int, Field(ge=1, le=256)] = 1
    cores: Annotated[int, Field(ge=1, le=4096)] = 1
    memory: Bytes = 0
    gpu: Text(255) = ""
    software: Annotated[dict[Text(64), Text(64)], Field(max_length=64)] = {}
    tags: Annotated[list[Text(64)], Field(max_length=64)] = []
    version: Text(32) = ""  # the node's rayfarm version
    protocol: Annotated[int, Field(ge=1, le=10_000)] = 1  # nodes from before the field existed speak 1


class Session(Body):
    """Every call after register names the node and its current session."""
    workerId: WorkerId
    session: Text(64)


class LeaseRequest(Session):
    """``POST lease``: up to ``max`` chunks, waiting up to ``wait`` seconds for work."""
    max: Annotated[int, Field(ge=1, le=256)] = 1
    wait: Annotated[float, Field(ge=0, le=20)] = 0


class Running(Body):
    """One leased chunk in a heartbeat: its progress, samples and new log lines."""
    leaseId: Text(64)
    progress: Annotated[float, Field(ge=0, le=100)] = 0
    cpu: Sample | None = None
    memory: Sample | None = None
    log: LogLines = []


class Heartbeat(Session):
    """``POST heartbeat``: the node is alive; its leases are extended."""
    cpu: Sample | None = None
    memUsed: Bytes | None = None
    running: Annotated[list[Running], Field(max_length=256)] = []


class Complete(Session):
    """``POST complete``: a chunk's result; with ``next`` > 0 also lease that many next chunks in one call."""
    leaseId: Text(64)
    result: Annotated[str, Field(pattern="^(done|failed|timeout)$")]
    error: Text(20000) | None = None
    executeSeconds: Sample | None = None
    avgCpu: Sample | None = None
    avgMemory: Sample | None = None
    outputs: Annotated[list[Annotated[str, Field(max_length=255)]], Field(max_length=10000)] = []
    log: LogLines = []
    next: Annotated[int, Field(ge=0, le=256)] = 0


def body(model: type[Body], **values: Any) -> dict[str, Any]:
    """A request body as a node sends it: the model's fields (checked by name, not validated: the server does)."""
    unknown = set(values) - set(model.model_fields)
    if unknown:
        raise TypeError(f"{model.__name__} has no field {sorted(unknown)}")
    return values


# ---------------------------------------------------------------- answers

class Intervals(TypedDict):
    heartbeatSeconds: float  # while idle
    busyHeartbeatSeconds: float  # while rendering


class Registered(Intervals):
    workerId: int
    session: str
    leaseSeconds: float
    protocol: int  # the server's VERSION


class FileRef(TypedDict):
    url: str | None  # GET it with the token (None: nothing to fetch)
    sha256: str | None
    size: int | None
    path: str | None  # set when the node may read it in place (a shared root)
    root: str | None  # that shared root (a confined render may read all of it)


class Lease(TypedDict):
    leaseId: str
    frameId: int
    taskId: int
    userId: int
    frameIndex: str
    start: int
    end: int
    step: int
    attempt: int
    jobStopTime: int | None
    stallTimeout: int
    leaseExpires: float
    render: dict[str, Any]  # software, scene, scene_root, camera, width, height, format, command, cg_version, ...
    scene: FileRef
    inputs: list[dict[str, Any]]  # {"path" (storage path), "url", "sha256", "size"}
    outputName: str


class Leases(TypedDict):
    leases: list[Lease]


class Beat(Intervals):
    stop: list[str]  # leases no longer valid: kill their renders, report nothing more
    leaseExpires: float
    disabled: bool
    draining: bool


class Completed(TypedDict, total=False):
    accepted: bool  # False: the lease was no longer valid, the result was dropped
    leases: list[Lease]  # with ``next``


class Stored(TypedDict, total=False):
    accepted: bool
    size: int
    sha256: str


class Refusal(TypedDict):
    error: str  # an English sentence; HTTP 401, 404, 409, 413, 422, 426, 429 or 507
