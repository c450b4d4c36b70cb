"""The JSON job/result schema: round trips, validation, no pickle."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchsuite.broker.messages import (
    MAX_DEPTH,
    MAX_MESSAGE_BYTES,
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


DEEP = "[" * 200000 + "]" * 200000  # issue 21 item 2: RecursionError in json.loads


def test_deeply_nested_data_is_a_malformed_message() -> None:
    raw = ('{"schema": 1, "type": "job", "job_id": "deep-1", "stage": "noop", "spec": {"data": '
           + DEEP + '}, "reply_to": "bs:results:s1"}')
    with pytest.raises(MessageError, match="nested more than"):
        parse_job(raw)
    assert salvage_address(raw) == ("deep-1", "bs:results:s1")  # its sender hears of it


def test_nesting_under_the_recursion_limit_is_still_refused() -> None:
    spec: dict = {"data": 0}
    for _ in range(MAX_DEPTH + 5):
        spec = {"data": [spec]}
    with pytest.raises(MessageError, match=f"nested more than {MAX_DEPTH}"):
        parse_job(json.dumps({**json.loads(make_job().to_json()), "spec": spec}))
    with pytest.raises(MessageError, match="the job's spec is nested"):  # the submitting side
        make_job(spec=spec).to_json()


def test_an_oversized_message_is_refused_on_both_sides() -> None:
    big = {"data": "x" * (MAX_MESSAGE_BYTES + 1)}
    with pytest.raises(MessageError, match="over the limit"):
        make_job(spec=big).to_json()
    raw = json.dumps({**json.loads(make_job().to_json()), "spec": big})
    with pytest.raises(MessageError, match="over the limit"):
        parse_job(raw)


@pytest.mark.parametrize("field, value", [("attempts", "x"), ("stage_seconds", [1]),
                                          ("finished_at", {"a": 1})])
def test_any_error_reading_a_result_is_a_message_error(field: str, value: object) -> None:
    """These were ValueError/TypeError out of the executor's result reader."""
    d = json.loads(Result(job_id="j1", status="ok").to_json())
    d[field] = value
    with pytest.raises(MessageError, match="cannot read the message"):
        parse_result(json.dumps(d))
