"""The session's private redis-server, as a pytest-redis executor that dies with its parent.

Imported by the fixtures only when a private Redis is needed (pytest-redis is the broker extra).
"""

from __future__ import annotations

import os
from pathlib import Path

import port_for
from pytest_redis.executor import RedisExecutor as PytestRedisExecutor

from ..children import die_with_parent
from .server import RedisServerError, find_redis_server


def redis_server_executable() -> str | None:
    try:
        return find_redis_server()
    except RedisServerError:
        return None  # pytest-redis falls back to its own --redis-exec / redis_exec


def _own_session_dying_with_parent() -> None:
    os.setsid()  # what mirakuru does: the server gets its own process group ...
    die_with_parent()  # ... so a SIGKILLed pytest (or an OOM kill) would leave it running


class OrphanFreeRedisExecutor(PytestRedisExecutor):
    """pytest-redis's executor whose redis-server dies with the process that started it, even
    when that process is killed and its clean-up never runs."""

    @property
    def _popen_kwargs(self) -> dict:
        kwargs = super()._popen_kwargs
        kwargs["preexec_fn"] = _own_session_dying_with_parent
        return kwargs


def private_redis_executor(executable: str, datadir: Path) -> OrphanFreeRedisExecutor:
    """A redis-server on 127.0.0.1 (random port) and a unix socket in `datadir`, no RDB/AOF,
    no client idle timeout (a waiting executor may be idle for long)."""
    return OrphanFreeRedisExecutor(
        executable=executable, databases=1, redis_timeout=0, loglevel="notice",
        host="127.0.0.1", port=port_for.select_random(), save="", datadir=datadir,
        startup_timeout=60)
