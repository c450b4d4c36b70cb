"""The JSON job/result schema: round trips, validation, no pickle."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchsuite.broker.messages import (
    SCHEMA,
    FileRef,
    Job,
    MessageError,
    Result,
    parse_job,
    parse_result,
    salvage_address,
)

SHA = "a" * 64
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=10)


def make_job(**kw) -> Job:
    base = dict(job_id="j1", stage="noop", spec={"a": 1},
                files={"x": FileRef(SHA, 3, "x.bin")}, reply_to="bs:results:s1")
    return Job(**(base | kw))


@given(spec=st.dictionaries(st.text(max_size=8), json_values, max_size=4))
def test_job_round_trip(spec: dict) -> None:
    job = make_job(spec=spec)
    assert parse_job(job.to_json()) == job


def test_result_round_trip() -> None:
    res = Result(job_id="j1", status="ok", result={"top1": 0.9},
                 files={"onnx": FileRef(SHA, 10, "m.onnx")}, stage="prune", attempts=1)
    back = parse_result(res.to_json())
    assert back.result == {"top1": 0.9} and back.files == res.files and back.ok


@pytest.mark.parametrize("mutate, reason", [
    (lambda d: d.update(schema=SCHEMA + 1), "schema version"),
    (lambda d: d.update(type="result"), "message type"),
    (lambda d: d.pop("job_id"), "'job_id'"),
    (lambda d: d.update(spec="not an object"), "'spec'"),
    (lambda d: d.update(reply_to="bs:jobs:prune"), "'reply_to'"),
    (lambda d: d.update(max_attempts=0), "'max_attempts'"),
    (lambda d: d["files"]["x"].update(sha256="nothex"), "sha256"),
    (lambda d: d["files"]["x"].update(filename="../etc/passwd"), "filename"),
])
def test_job_validation(mutate, reason: str) -> None:
    d = json.loads(make_job().to_json())
    mutate(d)
    with pytest.raises(MessageError, match=reason):
        parse_job(json.dumps(d))


@pytest.mark.parametrize("raw", [b"\x80\x04pickle", b"[1, 2]", b"{not json"])
def test_not_a_job(raw: bytes) -> None:
    with pytest.raises(MessageError):
        parse_job(raw)
    assert salvage_address(raw) == ("", "")


def test_salvage_only_result_streams() -> None:
    assert salvage_address(json.dumps({"job_id": "j", "reply_to": "bs:results:x"})) == (
        "j", "bs:results:x")
    assert salvage_address(json.dumps({"job_id": "j", "reply_to": "bs:jobs:prune"})) == ("j", "")
