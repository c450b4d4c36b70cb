"""The JSON messages that cross the broker: jobs and results.  No pickle, ever.

A stream entry has one field, ``data``, holding a JSON object with ``"schema": SCHEMA``.
Files travel as references to content-addressed blobs: ``{"sha256", "size", "filename"}``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA = 1
FIELD = "data"
RESULTS_PREFIX = "bs:results:"  # a job's reply_to must name a result stream, nothing else


class MessageError(ValueError):
    """A message that does not follow the schema; the text says what is wrong."""


@dataclass(frozen=True)
class FileRef:
    sha256: str
    size: int
    filename: str

    @classmethod
    def from_dict(cls, name: str, d: Any) -> FileRef:
        if not isinstance(d, dict):
            raise MessageError(f"file {name!r}: expected an object, got {type(d).__name__}")
        sha, size, filename = d.get("sha256"), d.get("size"), d.get("filename")
        if not (isinstance(sha, str) and len(sha) == 64
                and all(c in "0123456789abcdef" for c in sha)):
            raise MessageError(f"file {name!r}: sha256 must be 64 lower-case hex digits")
        if not isinstance(size, int) or size < 0:
            raise MessageError(f"file {name!r}: size must be a non-negative integer")
        if not isinstance(filename, str) or not filename or "/" in filename or filename in (
                ".", ".."):
            raise MessageError(f"file {name!r}: filename must be a plain file name")
        return cls(sha, size, filename)


@dataclass
class Job:
    job_id: str
    stage: str
    spec: dict
    files: dict[str, FileRef]
    reply_to: str
    session: str = ""
    case_id: str = ""
    max_attempts: int = 2
    submitted_at: float = field(default_factory=time.time)

    def to_json(self) -> str:
        d = asdict(self)
        return json.dumps({"schema": SCHEMA, "type": "job", **d}, sort_keys=True)


@dataclass
class Result:
    job_id: str
    status: str  # "ok" or "error" (dead-lettered)
    result: dict = field(default_factory=dict)
    files: dict[str, FileRef] = field(default_factory=dict)
    error: str = ""
    stage: str = ""
    case_id: str = ""
    worker: str = ""
    attempts: int = 0
    stage_seconds: float = 0.0
    finished_at: float = field(default_factory=time.time)
    user_error: bool = False  # dead-lettered for the user's input (errors.UserError)

    def to_json(self) -> str:
        return json.dumps({"schema": SCHEMA, "type": "result", **asdict(self)}, sort_keys=True)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _load(raw: bytes | str, kind: str) -> dict:
    try:
        d = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MessageError(f"not JSON: {exc}") from None
    if not isinstance(d, dict):
        raise MessageError(f"expected a JSON object, got {type(d).__name__}")
    if d.get("schema") != SCHEMA:
        raise MessageError(f"schema version {d.get('schema')!r} is not {SCHEMA}")
    if d.get("type") != kind:
        raise MessageError(f"message type {d.get('type')!r} is not {kind!r}")
    return d


def _str(d: dict, key: str, *, required: bool = True) -> str:
    value = d.get(key, None if required else "")
    if not isinstance(value, str) or (required and not value):
        raise MessageError(f"{key!r} must be a{' non-empty' if required else ''} string")
    return value


def _files(d: dict) -> dict[str, FileRef]:
    files = d.get("files", {})
    if not isinstance(files, dict):
        raise MessageError("'files' must be an object")
    return {str(k): FileRef.from_dict(k, v) for k, v in files.items()}


def parse_job(raw: bytes | str) -> Job:
    d = _load(raw, "job")
    spec = d.get("spec")
    if not isinstance(spec, dict):
        raise MessageError("'spec' must be a JSON object")
    attempts = d.get("max_attempts", 2)
    if not isinstance(attempts, int) or attempts < 1:
        raise MessageError("'max_attempts' must be a positive integer")
    submitted = d.get("submitted_at", 0.0)
    if not isinstance(submitted, (int, float)):
        raise MessageError("'submitted_at' must be a number")
    reply_to = _str(d, "reply_to")
    if not reply_to.startswith(RESULTS_PREFIX):
        raise MessageError(f"'reply_to' must start with {RESULTS_PREFIX!r}")
    return Job(job_id=_str(d, "job_id"), stage=_str(d, "stage"), spec=spec, files=_files(d),
               reply_to=reply_to, session=_str(d, "session", required=False),
               case_id=_str(d, "case_id", required=False), max_attempts=attempts,
               submitted_at=float(submitted))


def parse_result(raw: bytes | str) -> Result:
    d = _load(raw, "result")
    status = d.get("status")
    if status not in ("ok", "error"):
        raise MessageError(f"'status' must be 'ok' or 'error', got {status!r}")
    result = d.get("result", {})
    if not isinstance(result, dict):
        raise MessageError("'result' must be a JSON object")
    return Result(job_id=_str(d, "job_id"), status=status, result=result, files=_files(d),
                  error=str(d.get("error", "")), stage=str(d.get("stage", "")),
                  case_id=str(d.get("case_id", "")), worker=str(d.get("worker", "")),
                  attempts=int(d.get("attempts", 0)),
                  stage_seconds=float(d.get("stage_seconds", 0.0)),
                  finished_at=float(d.get("finished_at", 0.0)),
                  user_error=d.get("user_error") is True)


def salvage_address(raw: bytes | str) -> tuple[str, str]:
    """Best effort ``(job_id, reply_to)`` from a message that failed validation ("" if none)."""
    try:
        d = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return "", ""
    if not isinstance(d, dict):
        return "", ""
    job_id, reply_to = d.get("job_id"), d.get("reply_to")
    ok_reply = isinstance(reply_to, str) and reply_to.startswith(RESULTS_PREFIX)
    return (job_id if isinstance(job_id, str) else "", reply_to if ok_reply else "")
