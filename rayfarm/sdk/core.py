"""The entry point of the rayfarm SDK: one object per user and farm."""

from __future__ import annotations

import platform as _platform
import re
from collections.abc import Callable
from typing import Any

import httpx

from rayfarm.sdk.connect import Connect
from rayfarm.sdk.env import RenderEnvOperator
from rayfarm.sdk.files import FileOperator
from rayfarm.sdk.query import QueryOperator
from rayfarm.sdk.task import TaskOperator
from rayfarm.sdk.transmit import TransmitOperator
from rayfarm.sdk.user import UserOperator

_HUMP = re.compile(r"([a-z]|\d)([A-Z])")


def _snake(name: str) -> str:
    return _HUMP.sub(r"\1_\2", name).lower()


class RayfarmAPI:
    """A client of a rayfarm (or any Renderbus-compatible) farm, shaped like the official ``RayvisionAPI``.

    Args:
        access_id: The user's access id.
        access_key: The user's access key.
        domain: ``host:port`` of the farm.
        protocol: ``"http"`` or ``"https"``.
        platform: The platform header (rayfarm answers as platform ``"2"``).
        timeout: Seconds to wait for the farm, per attempt.
        login: Fetch the user's profile now (like the official SDK does) instead of on first use of
            :attr:`user_info`; wrong credentials then fail at once.
        **connect_options: Retry and transport options of :class:`~rayfarm.sdk.connect.Connect`
            (``retries``, ``retry_wait``, ``retry_max_wait``, ``retry_deadline``, ``transport``, ``sleep``), and
            ``ca_cert``: over https, a studio CA certificate to trust besides the system's (default
            ``$RAYFARM_CA_CERT``).

    Attributes:
        task: Task operations (:class:`~rayfarm.sdk.task.TaskOperator`).
        query: Queries (:class:`~rayfarm.sdk.query.QueryOperator`).
        files: Uploads, outputs, downloads and logs (:class:`~rayfarm.sdk.files.FileOperator`).
        user: Profile, settings and the audit trail (:class:`~rayfarm.sdk.user.UserOperator`).
        env: Render environments (:class:`~rayfarm.sdk.env.RenderEnvOperator`).
        transmit: Transfer configuration (:class:`~rayfarm.sdk.transmit.TransmitOperator`).
    """

    def __init__(self, access_id: str, access_key: str, domain: str = "127.0.0.1:8765", protocol: str = "http",
                 platform: str = "2", timeout: float = 60.0, *, login: bool = False,
                 retries: int = 3, retry_wait: float = 0.5, retry_max_wait: float = 4.0,
                 retry_deadline: float = 120.0, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] | None = None, ca_cert: str | None = None) -> None:
        extra: dict[str, Any] = {} if sleep is None else {"sleep": sleep}
        self._connect = Connect(access_id, access_key, domain=domain, protocol=protocol, platform=platform,
                                timeout=timeout, retries=retries, retry_wait=retry_wait,
                                retry_max_wait=retry_max_wait, retry_deadline=retry_deadline, transport=transport,
                                ca_cert=ca_cert, **extra)
        self.platform = str(platform)
        self.task = TaskOperator(self._connect)
        self.query = QueryOperator(self._connect)
        self.files = FileOperator(self._connect)
        self.user = UserOperator(self._connect)
        self.env = RenderEnvOperator(self._connect)
        self.transmit = TransmitOperator(self._connect)
        self._user_info: dict[str, Any] | None = None
        if login:
            self.login()

    def __repr__(self) -> str:
        return f"RayfarmAPI(domain={self._connect.domain!r}, access_id={self._connect.access_id!r})"

    @property
    def connect(self) -> Connect:
        """The connection every call goes through."""
        return self._connect

    def login(self) -> dict[str, Any]:
        """Fetch the user's profile, settings and transfer ids (as the official SDK does when it starts).

        Returns:
            The user information (see :attr:`user_info`).
        """
        profile = dict(self._connect.post(self._connect.url.queryUserProfile) or {})
        profile.update(self._connect.post(self._connect.url.queryUserSetting) or {})
        profile.update(self._connect.post(self._connect.url.getBid) or {})
        info: dict[str, Any] = {"local_os": _platform.system().lower(), "domain": self._connect.domain,
                                "platform": self.platform}
        for key, value in profile.items():
            snake = _snake(key)
            if snake != "platform":
                info[snake] = value
        self._user_info = info
        return info

    @property
    def user_info(self) -> dict[str, Any]:
        """The user's profile and settings with snake_case keys (``user_id``, ``user_name``, ...); fetched once."""
        if self._user_info is None:
            self.login()
        assert self._user_info is not None
        return self._user_info

    def get_user_id(self) -> int:
        """The id of the user these credentials belong to."""
        return int(self.user_info["user_id"])

    def close(self) -> None:
        """Close the HTTP connections."""
        self._connect.close()

    def __enter__(self) -> RayfarmAPI:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
