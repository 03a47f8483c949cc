"""Request bodies of the Renderbus routes, and how a validation error becomes a code and a sentence."""

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from rayfarm.domain.states import FrameStatus
from rayfarm.protocol.codes import ApiError, Code
from rayfarm.protocol.text import unstorable


def _no_bool(value):
    if isinstance(value, bool):
        raise ValueError("a number is expected, not true/false")
    return value


Int = Annotated[int, BeforeValidator(_no_bool)]
Id = Annotated[int, BeforeValidator(_no_bool), Field(ge=1, le=2**31 - 1)]  # a row id (32-bit integer column)
TaskId = Id
TaskIds = Annotated[list[TaskId], Field(min_length=1, max_length=1000)]
Name = Annotated[str, Field(min_length=1, max_length=128)]
PageNum = Annotated[int, BeforeValidator(_no_bool), Field(ge=1, le=10**7)]
PageSize = Annotated[int, BeforeValidator(_no_bool), Field(ge=1, le=1000)]
Level = Annotated[int, BeforeValidator(_no_bool), Field(ge=0, le=100)]
# a task or frame status code (the database stores 64-bit integers: bound what reaches a query)
StatusCode = Annotated[int, BeforeValidator(_no_bool), Field(ge=0, le=1000)]
FRAME_STATUS_CODES = tuple(sorted(int(s) for s in FrameStatus))


def _frame_status(value: int) -> int:
    if value not in FRAME_STATUS_CODES:
        raise ValueError(f"{value} is not a frame status; use one of {', '.join(map(str, FRAME_STATUS_CODES))}")
    return value


FrameStatusCode = Annotated[int, BeforeValidator(_no_bool), AfterValidator(_frame_status)]


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class Empty(Body):
    pass


class CreateTask(Body):
    count: Annotated[int, BeforeValidator(_no_bool), Field(ge=1, le=1000)]
    taskUserLevel: Level = 50
    outUserId: Annotated[int, BeforeValidator(_no_bool), Field(ge=0, le=2**63 - 1)] | None = None
    labels: Annotated[list[Name], Field(max_length=50)] | None = None
    cloneOriginalId: TaskId | None = None
    artist: Annotated[str, Field(max_length=255)] | None = None


class TaskJsonFile(Body):
    model_config = ConfigDict(extra="ignore")
    taskId: TaskId
    fileName: Literal["task.json", "upload.json", "asset.json", "tips.json"]
    content: Annotated[str, Field(max_length=4 * 1024 * 1024)]


class SubmitTask(Body):
    taskId: TaskId
    producer: Annotated[str, Field(max_length=255)] | None = None


class TaskIdList(Body):
    taskIds: TaskIds


class OverTime(Body):
    taskIds: TaskIds
    overTime: Annotated[float, BeforeValidator(_no_bool), Field(ge=0, le=30 * 24 * 3600)]


class UserLevel(Body):
    taskId: TaskId
    taskUserLevel: Level


class TaskLimit(Body):
    taskId: TaskId
    taskLimit: Annotated[int, BeforeValidator(_no_bool), Field(ge=0, le=100_000)] | None = None


class AddLabel(Body):
    taskIds: TaskIds
    label: Name


class DeleteLabel(Body):
    taskIds: TaskIds
    labelNames: Annotated[list[Name], Field(min_length=1, max_length=50)]


class TaskList(Body):
    pageNum: PageNum = 1
    pageSize: PageSize = 100
    statusList: Annotated[list[StatusCode], Field(max_length=20)] | None = None
    searchKeyword: Annotated[str, Field(max_length=255)] | None = None
    startTime: Annotated[str, Field(max_length=32)] | None = None
    endTime: Annotated[str, Field(max_length=32)] | None = None
    recycleFlag: Annotated[int, BeforeValidator(_no_bool), Field(ge=0, le=1)] | None = None


class TaskFrames(Body):
    taskId: TaskId
    pageNum: PageNum = 1
    pageSize: PageSize = 100
    searchKeyword: Annotated[str, Field(max_length=64)] | None = None
    status: Annotated[list[FrameStatusCode], Field(max_length=20)] | None = None  # only frames in these statuses


class Platforms(Body):
    zone: Int | None = None


class ProjectAdd(Body):
    newName: Annotated[str, Field(min_length=1, max_length=255)]
    status: Annotated[int, BeforeValidator(_no_bool), Field(ge=0, le=1)] = 1


class ProjectDelete(Body):
    delName: Annotated[str, Field(min_length=1, max_length=255)]


def _where(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def _nul_at(body: dict) -> tuple | None:
    """Where the first NUL character (or lone surrogate) sits in the body's keys or strings, or None."""
    stack: list[tuple[tuple, object]] = [((), body)]
    while stack:
        loc, value = stack.pop()
        if isinstance(value, str):
            if unstorable(value):
                return loc
        elif isinstance(value, dict):
            for key, item in value.items():
                if unstorable(str(key)):
                    return loc + (str(key).encode("utf-8", "replace").decode().replace("\x00", "?"),)
                stack.append((loc + (key,), item))
        elif isinstance(value, list):
            stack.extend((loc + (index,), item) for index, item in enumerate(value))
    return None


def parse(model: type[Body], body: dict) -> Body:
    """Validate a body; 601 for a missing parameter, 600 for a wrong one, with the field named."""
    nul = _nul_at(body)
    if nul is not None:
        raise ApiError(Code.INVALID_PARAMETER, f"The parameter {_where(nul)!r} contains a NUL character (\\u0000) or "
                                               f"text that is not valid Unicode; remove it and send the request again.")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = _where(error["loc"])
        if error["type"] == "missing":
            raise ApiError(Code.MISSING_PARAMETER,
                           f"The parameter {where!r} is missing; add it to the request.") from None
        message = error["msg"].removeprefix("Value error, ")
        raise ApiError(Code.INVALID_PARAMETER, f"The parameter {where!r} is not valid: {message}. "
                                               f"Correct it and send the request again.") from None
