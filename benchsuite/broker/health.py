"""What a worker reports in its heartbeat about the environment it runs in."""

from __future__ import annotations

import socket
import sys
from importlib import metadata

PACKAGES = ("torch", "torch-pruning", "openvino", "onnx", "numpy", "redis")


def environment() -> dict:
    """What this worker runs on: Python and the versions of the packages that matter ("absent")."""
    env = {"python": sys.version.split()[0], "executable": sys.executable,
           "platform": sys.platform, "host": socket.gethostname()}
    for name in PACKAGES:
        try:
            env[name.replace("-", "_")] = metadata.version(name)
        except metadata.PackageNotFoundError:
            env[name.replace("-", "_")] = "absent"
    return env
