"""Render environments, with the names and signatures of the official SDK's RenderEnvOperator."""

from __future__ import annotations

from typing import Any

from rayfarm.sdk.connect import Connect

DCC_ID_MAPPINGS = {"blender": "2007", "command": "0"}  # the software a rayfarm farm renders, by name


class RenderEnvOperator:
    """The rendering environment configuration: your named software versions, one of them the default.

    On submit, a task.json whose ``software_config`` names no ``cg_version`` takes the version of your default
    environment when it is for the task's software.
    """

    def __init__(self, connect: Connect) -> None:
        """Initialize instance.

        Args:
            connect: The connection every call goes through.
        """
        self._connect = connect

    def add_render_env(self, data: dict[str, Any]) -> dict:
        """Add a render environment.

        Args:
            data: e.g. ``{"cgId": 2007, "cgName": "Blender", "cgVersion": "3.4", "editName": "lookdev",
                "renderSystem": 0, "pluginIds": []}`` (``renderSystem`` 0 Linux, 1 Windows; the farm has no
                plugin catalogue, so ``pluginIds`` is empty).

        Returns:
            ``{"editName": name}``.
        """
        return self._connect.post(self._connect.url.addUserPluginConfig, data)

    def update_render_env(self, data: dict[str, Any]) -> None:
        """Change the render environment named ``data["editName"]`` (same fields as :meth:`add_render_env`)."""
        return self._connect.post(self._connect.url.editUserPluginConfig, data)

    def delete_render_env(self, edit_name: str) -> None:
        """Delete a render environment.

        Args:
            edit_name: The environment's name.
        """
        return self._connect.post(self._connect.url.deleteUserPluginConfig, {"editName": edit_name})

    def set_default_render_env(self, edit_name: str) -> None:
        """Make a render environment your default (the one default: any other stops being it).

        Args:
            edit_name: The environment's name.
        """
        return self._connect.post(self._connect.url.setDefaultUserPluginConfig, {"editName": edit_name})

    def get_render_env(self, name: str | None = None, cg_names: list[str] | None = None, os_name: int | None = 1) -> list:
        """Get your render environments.

        Args:
            name: Only this software (``"blender"``).
            cg_names: Only these software names.
            os_name: Only environments for this OS: 0 Linux, 1 Windows (the official default), None: both.

        Returns:
            ``[{"cgId", "editName", "cgName", "cgVersion", "osName", "renderLayerType", "isDefault",
            "respUserPluginInfoVos": []}, ...]``, by name.
        """
        data: dict[str, Any] = {}
        if name:
            data["cgId"] = int(DCC_ID_MAPPINGS[name.lower()])
        if cg_names:
            if not isinstance(cg_names, list):
                raise TypeError("cg_names is must list.")
            data["cgIds"] = [DCC_ID_MAPPINGS[cg.lower()] for cg in cg_names]
        if os_name is not None:
            data["osName"] = os_name
        return self._connect.post(self._connect.url.getUserPluginConfig, data)
