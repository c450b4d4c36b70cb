"""Child processes die with their parent: a killed worker or session leaves no benchmark_app
or redis-server behind to load the machine the next measurement runs on.

``die_with_parent`` is a ``preexec_fn``: it sets PR_SET_PDEATHSIG in the child, so the kernel
sends the child SIGTERM when the thread that started it dies (Linux; elsewhere a no-op). The
libc function is looked up here, in the parent: the child, forked from a threaded process,
only makes the one call.
"""

from __future__ import annotations

import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1

try:
    _prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl if sys.platform.startswith(
        "linux") else None
except OSError:
    _prctl = None


def die_with_parent() -> None:
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
