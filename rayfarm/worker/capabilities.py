"""What this node tells the server when it registers."""

import os
import socket
from collections.abc import Callable, Sequence
from typing import Any

import psutil

import rayfarm
from rayfarm.worker.renderers import software_versions


def capabilities(name: str, slots: int, tags: Sequence[str], offers: Callable[[str], bool]) -> dict[str, Any]:
    """`offers`: whether the node takes tasks of an installed software (command tasks need confinement)."""
    return {
        "name": name,
        "hostname": socket.gethostname(),
        "slots": slots,
        "cores": os.cpu_count() or 1,
        "memory": psutil.virtual_memory().total,
        "gpu": "",
        "software": {software: version for software, version in software_versions().items() if offers(software)},
        "tags": [tag for tag in tags if tag],
        "version": rayfarm.__version__,
    }
