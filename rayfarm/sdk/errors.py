"""Errors raised by the rayfarm SDK."""

from __future__ import annotations


class RayfarmError(Exception):
    """Base class of every error the rayfarm SDK raises."""


class RayfarmAPIError(RayfarmError):
    """The farm answered, but not with success (the envelope's ``code`` is not 200).

    Attributes:
        code: The Renderbus result code (e.g. 600 invalid parameter, 718 task cannot be operated,
            937 task does not exist). For an answer that is not a Renderbus envelope at all (an HTTP
            error from a proxy, say), the HTTP status.
        message: The farm's English explanation, meant to be shown to the user.
        url: The URL the request was sent to.
    """

    def __init__(self, code: int, message: str, url: str):
        super().__init__(code, message, url)
        self.code = int(code)
        self.message = message
        self.url = url

    def __str__(self) -> str:
        return f"Error code: {self.code}, Error message: {self.message}, URL: {self.url}"


class RayfarmConnectionError(RayfarmError):
    """The farm could not be reached, or the answer was lost (no result code to report).

    Attributes:
        url: The URL the request was sent to.
        attempts: How many times the request was tried.
        may_have_reached: True when the request may have reached the farm (the answer was lost),
            so its effect may have happened even though no answer came back.
    """

    def __init__(self, message: str, url: str, attempts: int = 1, may_have_reached: bool = False):
        super().__init__(message)
        self.message = message
        self.url = url
        self.attempts = attempts
        self.may_have_reached = may_have_reached

    def __str__(self) -> str:
        return self.message
