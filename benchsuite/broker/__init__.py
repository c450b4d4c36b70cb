"""The Redis broker: jobs and results as JSON on Redis Streams, artifacts as blobs in Redis.

The pytest side (``RedisExecutor``), the prune workers and the bench workers share nothing but a
Redis server.  Modules:

- ``connection``: URL parsing and masking, connecting with a short timeout and a clear error.
- ``messages``: the JSON job / result schema (versioned; no pickle).
- ``blobs``: content-addressed, chunked artifact blobs with a TTL and a cleanup.
- ``streams``: stream and key names, consumer groups, reclaim, dead letters, idempotent results.
- ``worker``: the worker loop (``benchsuite worker prune|bench``).
- ``executor``: ``RedisExecutor``, the same ``run()`` as ``LocalExecutor`` over Redis.
- ``server``: start and stop a private redis-server (knows nothing of pytest).
- ``local``: start and stop worker subprocesses (used by the fixtures and the tests).
- ``cli``: the ``worker`` / ``blobs`` / ``broker`` subcommands.
- ``fixtures``: the pytest fixtures (a session Redis, local workers, the executor).

Nothing here imports torch or openvino: a worker's stages import what they need. The names
below are imported on first use, so `benchsuite.frontends.plugin.broker_fixtures` loads
without redis (the broker extra) installed.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"BrokerConnectionError": "connection", "connect": "connection", "mask_url": "connection",
         "JobFailed": "redis_executor", "JobTimeout": "redis_executor",
         "RedisExecutor": "redis_executor"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)


__all__ = [
    "BrokerConnectionError",
    "JobFailed",
    "JobTimeout",
    "RedisExecutor",
    "connect",
    "mask_url",
]
