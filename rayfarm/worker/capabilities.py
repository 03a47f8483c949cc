"""What this node tells the server when it registers."""

import os
import socket
from collections.abc import Sequence
from typing import Any

import psutil

import rayfarm
from rayfarm.worker.renderers import software_versions


def capabilities(name: str, slots: int, tags: Sequence[str]) -> dict[str, Any]:
    return {
        "name": name,
        "hostname": socket.gethostname(),
        "slots": slots,
        "cores": os.cpu_count() or 1,
        "memory": psutil.virtual_memory().total,
        "gpu": "",
        "software": software_versions(),
        "tags": [tag for tag in tags if tag],
        "version": rayfarm.__version__,
    }
