"""What this node tells the server when it registers: its name, slots, cores, memory, GPUs, software and
versions, tags (pools), and the worker protocol it speaks."""

import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psutil

import rayfarm
from rayfarm.protocol.nodes import VERSION
from rayfarm.worker.renderers import software_versions

# PCI vendors of display devices (/sys/class/drm/*/device/vendor)
VENDORS = {"0x10de": "NVIDIA", "0x1002": "AMD", "0x8086": "Intel"}
NVIDIA_QUERY = ["--query-gpu=name,memory.total", "--format=csv,noheader"]


def nvidia_gpus(program: str = "nvidia-smi") -> list[str]:
    """NVIDIA GPUs as `nvidia-smi` names them ("NVIDIA RTX A5000 24564 MiB"); [] without the driver."""
    found = shutil.which(program)
    if not found:
        return []
    try:
        done = subprocess.run([found, *NVIDIA_QUERY], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    if done.returncode != 0:
        return []
    return [" ".join(part.strip() for part in line.split(",")) for line in done.stdout.splitlines() if line.strip()]


def drm_gpus(root: Path = Path("/sys/class/drm")) -> list[str]:
    """Display devices the kernel knows (one per render node, /dev/dri/renderD*), by vendor: "AMD (renderD128)"."""
    found = []
    for node in sorted(root.glob("renderD*")):
        try:
            vendor = (node / "device" / "vendor").read_text().strip().lower()
        except OSError:
            continue
        found.append(f"{VENDORS.get(vendor, 'GPU vendor ' + vendor)} ({node.name})")
    return found


def gpus() -> str:
    """The node's GPUs in one line ("" when it has none): NVIDIA ones by name, others by vendor."""
    named = nvidia_gpus()
    others = [gpu for gpu in drm_gpus() if not (named and gpu.startswith("NVIDIA"))]
    return "; ".join(named + others)[:255]


def capabilities(name: str, slots: int, tags: Sequence[str], offers: Callable[[str], bool]) -> dict[str, Any]:
    """`offers`: whether the node takes tasks of an installed software (command tasks need confinement)."""
    return {
        "name": name,
        "hostname": socket.gethostname(),
        "slots": slots,
        "cores": os.cpu_count() or 1,
        "memory": psutil.virtual_memory().total,
        "gpu": gpus(),
        "software": {software: version for software, version in software_versions().items() if offers(software)},
        "tags": [tag for tag in tags if tag],
        "version": rayfarm.__version__,
        "protocol": VERSION,
    }
