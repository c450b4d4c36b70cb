"""Connecting to Redis: URL validation, password masking, a short timeout, a clear error.

Every URL that appears in a log line or an error message goes through ``mask_url`` first.
Supported schemes: ``redis://``, ``rediss://`` (TLS) and ``unix://`` (a socket path; a password
goes in the query string, ``unix:///run/redis.sock?password=...``).
"""

from __future__ import annotations

import logging
import os
import time
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

from benchsuite.core.errors import OperatorError

log = logging.getLogger(__name__)

URL_ENV = "BENCHSUITE_REDIS_URL"
SCHEMES = ("redis", "rediss", "unix")
DEFAULT_CONNECT_TIMEOUT = 3.0


class BrokerConnectionError(ConnectionError):
    """Redis cannot be reached or refuses us; the message names the (masked) URL."""


def mask_url(url: str) -> str:
    """The URL with any password (userinfo or ``?password=``) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable redis url>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        netloc = f"{user}{':***' if sep else ''}@{hostport}"
        if not sep and user and parts.scheme in ("redis", "rediss"):
            # redis://secret@host: some clients read a lone userinfo as the password; mask it
            netloc = f"***@{hostport}"
    query = parts.query
    if query:
        pairs = [(k, "***" if k.lower() == "password" else v)
                 for k, v in parse_qsl(query, keep_blank_values=True)]
        query = urlencode(pairs, safe="*/")
    text = f"{parts.scheme}://{netloc}{parts.path}"
    return text + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")


def check_url(url: str) -> None:
    """Raise ``BrokerConnectionError`` if the URL is not one redis-py can use."""
    if not url:
        raise BrokerConnectionError(f"no Redis URL given (use --redis-url or ${URL_ENV})")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (parsing the port raises on a bad one)
    except ValueError as exc:  # the URL itself is not echoed: it may hold a password
        raise BrokerConnectionError(f"malformed Redis URL: {exc} (expected e.g. "
                                    "redis://:PASSWORD@host:6379/0)") from None
    scheme = parts.scheme
    if scheme not in SCHEMES:
        raise BrokerConnectionError(
            f"unsupported Redis URL {mask_url(url)!r}: scheme must be one of "
            f"{', '.join(s + '://' for s in SCHEMES)}")
    if scheme == "unix" and not urlsplit(url).path:
        raise BrokerConnectionError(f"Redis URL {mask_url(url)!r} names no socket path")


def default_url() -> str:
    return os.environ.get(URL_ENV, "")


def client(url: str, *, timeout: float = DEFAULT_CONNECT_TIMEOUT,
           socket_timeout: float | None = 30.0) -> redis.Redis:
    """A client that does not retry by itself (callers decide) and connects within ``timeout``."""
    check_url(url)
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=socket_timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )


def connect(url: str, *, timeout: float = DEFAULT_CONNECT_TIMEOUT,
            socket_timeout: float | None = 30.0, retries: int = 1) -> redis.Redis:
    """Connect and PING; any failure becomes a ``BrokerConnectionError`` naming the masked URL.

    The first PING is not retried (a wrong URL fails within ``timeout``); afterwards each
    command is retried ``retries`` times on a dropped connection (an idle connection the server
    closed, a restart).  Commands that may run twice are harmless here: job results are
    written once per job id.
    """
    # the first PING waits at most `timeout` for every step (a TLS handshake against a plain
    # server would otherwise hang for `socket_timeout`); later commands get `socket_timeout`
    r = client(url, timeout=timeout, socket_timeout=timeout)
    try:
        r.execute_command("PING")
    except redis.AuthenticationError as exc:
        r.close()
        raise BrokerConnectionError(
            f"Redis at {mask_url(url)} refused the credentials: {exc}") from None
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        r.close()
        hint = isinstance(exc, redis.TimeoutError) or "ssl" in str(exc).lower()
        tls = (" (a rediss:// URL against a server without TLS, or redis:// against a TLS "
               "port, fails like this)") if hint and urlsplit(url).scheme != "unix" else ""
        raise BrokerConnectionError(
            f"cannot connect to Redis at {mask_url(url)} within {timeout:g} s: "
            f"{_scrub(str(exc), url)}{tls}") from None
    except redis.ResponseError as exc:
        r.close()
        text = str(exc)
        kind = "refused the credentials" if "auth" in text.lower() else "answered with an error"
        raise BrokerConnectionError(f"Redis at {mask_url(url)} {kind}: {text}") from None
    if socket_timeout != timeout:  # reachable: later commands get their own timeout
        r.close()
        r = client(url, timeout=timeout, socket_timeout=socket_timeout)
    if retries:
        r.set_retry(Retry(ExponentialBackoff(cap=0.5, base=0.05), retries))
    return r


def _scrub(text: str, url: str) -> str:
    """Make sure an error text carries no password from the URL."""
    parts = urlsplit(url)
    secrets = [parts.password] + [v for k, v in parse_qsl(parts.query) if k.lower() == "password"]
    for secret in filter(None, secrets):
        text = text.replace(secret, "***")
    return text


def is_connection_error(exc: BaseException) -> bool:
    """True for errors that a reconnect may cure (server restarting, network blip)."""
    if isinstance(exc, redis.AuthenticationError):
        return False
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, ConnectionError, TimeoutError)):
        return True
    return isinstance(exc, redis.ResponseError) and str(exc).startswith(("LOADING", "BUSY"))


class RedisRefused(OperatorError):
    """Redis is up but refuses to store: at its `maxmemory` (OOM), or unable to write its
    append-only file or snapshot (MISCONF: most often its disk is full), or a read-only
    replica. The message names the (masked) URL, the cause and what to do."""


def refusal(exc: BaseException, url: str = "") -> RedisRefused | None:
    """The `RedisRefused` that `exc` (an error reply of Redis) amounts to, or None. The reply's
    own text is not quoted: in a pipeline redis-py puts the refused command, blob bytes and
    all, into it."""
    if not isinstance(exc, redis.ResponseError):
        return None
    text, where = str(exc), f"Redis at {mask_url(url)}" if url else "Redis"
    if isinstance(exc, redis.OutOfMemoryError) or "OOM command not allowed" in text:
        return RedisRefused(
            f"{where} is at its maxmemory and refuses to store more (OOM): raise its "
            "maxmemory (CONFIG SET maxmemory), or drop old artifacts (benchsuite blobs cleanup "
            "--older-than SECONDS)")
    if "MISCONF" in text:
        return RedisRefused(
            f"{where} cannot write its append-only file or snapshot and refuses "
            "writes (MISCONF; most often the disk under its data folder is full): free space "
            "there (its log names the error), then run again")
    if isinstance(exc, redis.ReadOnlyError):
        return RedisRefused(f"{where} is a read-only replica: point --redis-url at "
                            "its primary")
    return None


def call_until_available(op, *args, give_up=lambda waited: False, **kwargs):
    """``op(*args, **kwargs)``, retried with backoff while Redis is unreachable (a restart).

    ``give_up(seconds_waited)`` ends the wait by re-raising the connection error.
    """
    backoff, waited = 0.1, 0.0
    while True:
        try:
            return op(*args, **kwargs)
        except Exception as exc:
            if not is_connection_error(exc) or give_up(waited):
                raise
            log.warning("Redis unavailable (%s); retrying %s in %.1fs", exc,
                        getattr(op, "__name__", "operation"), backoff)
            time.sleep(backoff)
            waited += backoff
            backoff = min(backoff * 2, 2.0)
