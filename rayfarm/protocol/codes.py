"""Renderbus result codes and the error type every layer raises."""

from enum import IntEnum


class Code(IntEnum):
    OK = 200
    FAILED = 100
    FORBIDDEN = 403
    NOT_FOUND = 404
    INTERNAL = 500
    INVALID_PARAMETER = 600
    MISSING_PARAMETER = 601
    LOGIN_REQUIRED = 602
    ILLEGAL_REQUEST = 603
    SIGNATURE_EXPIRED = 610
    SIGNATURE_INVALID = 611
    NO_MORE_RECORDS = 700
    TOO_MANY_REQUESTS = 429
    PROJECT_EXISTS = 503
    TOO_MANY_FRAMES = 511
    TASK_CANNOT_OPERATE = 718
    TASK_JSON_UNREADABLE = 740
    TASK_JSON_EMPTY = 741
    TASK_SUBMITTING = 749
    ILLEGAL_TEST_FRAMES = 750
    SUBMIT_NOT_ALLOWED = 756
    TASK_NOT_FOUND = 937


class ApiError(Exception):
    """An answer that is not a success: a Renderbus code and an English sentence.

    The message is shown to the user as it is, so it says what went wrong and what to do.
    """

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = int(code)
        self.message = message

    def __repr__(self) -> str:
        return f"ApiError({self.code}, {self.message!r})"
