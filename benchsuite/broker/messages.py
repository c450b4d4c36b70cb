"""The JSON messages that cross the broker: jobs and results.  No pickle, ever.

A stream entry has one field, ``data``, holding a JSON object with ``"schema": SCHEMA``.
Files travel as references to content-addressed blobs: ``{"sha256", "size", "filename"}``.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA = 1
FIELD = "data"
RESULTS_PREFIX = "bs:results:"  # a job's reply_to must name a result stream, nothing else
# limits of a message (jobs and results): its files travel as blobs, so its JSON is small
MAX_MESSAGE_BYTES = 8 << 20
MAX_DEPTH = 64  # JSON nesting (objects and lists); a stage spec needs a handful


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
        """The job as a message; a spec past the limits (``check_data``) raises MessageError
        here, on the submitting side, instead of dead-lettering on a worker."""
        check_data(self.spec, "the job's spec")
        d = asdict(self)
        text = json.dumps({"schema": SCHEMA, "type": "job", **d}, sort_keys=True)
        _check_size(text)
        return text


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
    missing_input: bool = False  # dead-lettered: an input blob is gone (its sender may re-send)

    def to_json(self) -> str:
        return json.dumps({"schema": SCHEMA, "type": "result", **asdict(self)}, sort_keys=True)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _check_size(raw: bytes | str) -> None:
    if len(raw) > MAX_MESSAGE_BYTES:
        raise MessageError(f"message of {len(raw)} bytes, over the limit of "
                           f"{MAX_MESSAGE_BYTES} (files travel as blobs, not in the message)")


def depth(value: Any) -> int:
    """JSON nesting depth of `value` (0 for a scalar), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if level > MAX_DEPTH:  # enough to refuse it: no need to walk the rest
            return level
        stack.extend((child, level + 1) for child in children)
    return deepest


def check_data(value: Any, what: str) -> None:
    """Refuse data nested deeper than MAX_DEPTH (a poison message for every JSON parser)."""
    if depth(value) > MAX_DEPTH:
        raise MessageError(f"{what} is nested more than {MAX_DEPTH} levels deep")


def _load(raw: bytes | str, kind: str) -> dict:
    _check_size(raw)
    try:
        d = json.loads(raw)
    except RecursionError:
        raise MessageError(f"not JSON this worker can read: nested more than {MAX_DEPTH} "
                           "levels deep") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MessageError(f"not JSON: {exc}") from None
    check_data(d, "the message")
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


def _parsing(parse):
    """Any exception while parsing a message is a MessageError: a malformed message, to be
    dead-lettered once with its reason, never a crash that leaves it to be claimed again."""
    def wrapped(raw: bytes | str):
        try:
            return parse(raw)
        except MessageError:
            raise
        except Exception as exc:
            raise MessageError(f"cannot read the message: {type(exc).__name__}: "
                               f"{str(exc)[:300]}") from None
    wrapped.__name__, wrapped.__doc__ = parse.__name__, parse.__doc__
    return wrapped


@_parsing
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


@_parsing
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
                  user_error=d.get("user_error") is True,
                  missing_input=d.get("missing_input") is True)


_ADDRESS_JOB = re.compile(r'"job_id"\s*:\s*"([0-9A-Za-z_-]{1,100})"')
_ADDRESS_REPLY = re.compile(r'"reply_to"\s*:\s*"(' + re.escape(RESULTS_PREFIX)
                            + r'[0-9A-Za-z_:.-]{1,200})"')


def salvage_address(raw: bytes | str) -> tuple[str, str]:
    """Best effort ``(job_id, reply_to)`` from a message that failed validation ("" if none)."""
    try:
        _check_size(raw)
        d = json.loads(raw)
    except Exception:  # too big, not JSON, nested too deep: look for the two fields as text
        text = raw[:MAX_MESSAGE_BYTES].decode(errors="replace") if isinstance(
            raw, bytes) else raw[:MAX_MESSAGE_BYTES]
        job_id, reply_to = _ADDRESS_JOB.search(text), _ADDRESS_REPLY.search(text)
        return (job_id.group(1) if job_id else "", reply_to.group(1) if reply_to else "")
    if not isinstance(d, dict):
        return "", ""
    job_id, reply_to = d.get("job_id"), d.get("reply_to")
    ok_reply = isinstance(reply_to, str) and reply_to.startswith(RESULTS_PREFIX)
    return (job_id if isinstance(job_id, str) else "", reply_to if ok_reply else "")
