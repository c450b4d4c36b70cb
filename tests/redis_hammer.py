"""A hostile local client: tries a Redis server's endpoints, without a password, over and over
while it starts (issue 21, item 0), and records every answer it gets."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

Endpoint = str | tuple[str, int]  # a unix socket path, or (host, port)

# PING, then what the attacker sent: a user of its own with every right
_COMMANDS = [["PING"], ["ACL", "SETUSER", "hostile", "on", ">hostilepw", "~*", "&*", "+@all"]]


def _resp(args: list[str]) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        out.append(f"${len(a.encode())}\r\n{a}\r\n".encode())
    return b"".join(out)


def _replies(sock: socket.socket, count: int) -> list[str]:
    data = b""
    while data.count(b"\r\n") < count:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return [line.decode(errors="replace") for line in data.split(b"\r\n")[:count] if line]


class Hammer:
    """``with Hammer(lambda: [endpoints]) as h: <start the server>``; then ``h.accepted``: the
    answers that were not a refusal (each a command run without the password)."""

    def __init__(self, endpoints: Callable[[], list[Endpoint]], pause: float = 0.001) -> None:
        self.endpoints, self.pause = endpoints, pause
        self.accepted: list[tuple[Endpoint, str]] = []
        self.refused = 0  # answers that were refusals (NOAUTH, WRONGPASS, ...)
        self.unreachable = 0  # attempts that found nothing listening
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="redis-hammer")

    def _try(self, endpoint: Endpoint) -> None:
        family = socket.AF_UNIX if isinstance(endpoint, str) else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            try:
                sock.connect(endpoint)
                sock.sendall(b"".join(_resp(c) for c in _COMMANDS))
                replies = _replies(sock, len(_COMMANDS))
            except OSError:  # not there yet, refused, reset: nothing was run
                self.unreachable += 1
                return
        for reply in replies:
            if reply.startswith("-"):
                self.refused += 1
            else:
                self.accepted.append((endpoint, reply))

    def _run(self) -> None:
        while not self._stop.is_set():
            for endpoint in self.endpoints():
                self._try(endpoint)
            time.sleep(self.pause)

    def __enter__(self) -> Hammer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def sockets_under(folder: Path) -> Callable[[], list[Endpoint]]:
    """The Redis socket files under `folder` (a TMPDIR only the test's session uses)."""
    return lambda: [str(p) for p in folder.glob("*/*.sock")]
