"""The user's account: profile, settings and the audit trail, with the names and signatures of the official
SDK's UserOperator (and rayfarm's own filters as keyword arguments)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rayfarm.sdk.connect import Connect


class UserOperator:
    """API user information operator."""

    def __init__(self, connect: Connect) -> None:
        """Initialize instance.

        Args:
            connect: The connection every call goes through.
        """
        self._connect = connect

    def query_user_profile(self) -> dict:
        """Get user profile (``userId``, ``userName``, ``platform``, ``email``, ``accountType``, ...).

        The farm records it as a sign-in (see :meth:`login_record`), as the official SDK's login calls it.
        """
        return self._connect.post(self._connect.url.queryUserProfile)

    def query_user_setting(self) -> dict:
        """Get user setting: ``taskOverTime`` (hours) and ``taskOverTimeSec``, and the account's quotas and use."""
        return self._connect.post(self._connect.url.queryUserSetting)

    def update_user_settings(self, task_over_time: int) -> None:
        """Update user settings.

        Args:
            task_over_time: The task over-time setting, in seconds (0 to 30 days).
        """
        return self._connect.post(self._connect.url.updateUserSetting, {"taskOverTimeSec": task_over_time})

    def get_transfer_bid(self) -> dict:
        """Get user transfer BID: ``{"config_bid", "output_bid", "input_bid", "parent_input_bid"}``."""
        return self._connect.post(self._connect.url.getBid)

    def task_record(self, pageNum: int = 1, pageSize: int = 10, startDate: str = "", endDate: str = "",  # noqa: N803
                    *, task_ids: list[int] | None = None, all_users: bool = False) -> dict:
        """Get the records of your calls that change something (create, submit, stop, start, abort, delete,
        priority, labels, uploads, settings, render environments ...), newest first.

        Args:
            pageNum: Page number, from 1.
            pageSize: Records per page (1..1000).
            startDate: Only records at or after this time, ``yyyy-MM-dd`` or ``yyyy-MM-dd HH:mm:ss``.
            endDate: Only records up to this day (or second), inclusive.
            task_ids: rayfarm: only records naming one of these tasks (yours; another id answers 937).
            all_users: rayfarm: every user's records (farm administrators only).

        Returns:
            A page whose items are ``{"userName", "taskType", "buttonName", "taskIds", "createTime", "channel",
            "ip", "code", "result", "message", "detail", ...}``: ``buttonName`` is the call (e.g. ``stopTask``),
            ``channel`` ``"sdk"`` or ``"dashboard"``, ``code`` 200 when it was accepted, else the refusal's code.
        """
        data: dict[str, Any] = {"platform": int(self._connect.platform), "pageNum": pageNum, "pageSize": pageSize,
                                "startDate": startDate, "endDate": endDate}
        if task_ids:
            data["taskIds"] = [int(task_id) for task_id in task_ids]
        if all_users:
            data["allUsers"] = 1
        return self._connect.post(self._connect.url.taskRecord, data)

    def iter_task_records(self, page_size: int = 100, **filters: Any) -> Iterator[dict]:
        """Every record :meth:`task_record` would page through (same keyword filters), newest first."""
        page = 1
        while True:
            items = (self.task_record(pageNum=page, pageSize=page_size, **filters) or {}).get("items") or []
            yield from items
            if len(items) < page_size:
                return
            page += 1

    def login_record(self, pageNum: int = 1, pageSize: int = 10, startDate: str = "", endDate: str = "",  # noqa: N803
                     *, all_users: bool = False) -> dict:
        """Get your sign-in records, newest first: dashboard sign-ins (refused ones too) and SDK logins.

        Args: as :meth:`task_record`, without ``task_ids``.

        Returns:
            A page whose items are ``{"userId", "loginType" ("sdk" or "dashboard"), "loginStatus" (1 signed in,
            0 refused), "loginTime", "ip", "code", "message", ...}``.
        """
        data: dict[str, Any] = {"pageNum": pageNum, "pageSize": pageSize, "startDate": startDate, "endDate": endDate}
        if all_users:
            data["allUsers"] = 1
        return self._connect.post(self._connect.url.loginRecord, data)
