"""Content-addressed, chunked artifact blobs in a real Redis."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest
import redis

from benchsuite.broker.blobs import INDEX, BlobMissing, BlobStore
from benchsuite.broker.messages import Job
from benchsuite.broker.server import RedisServer
from benchsuite.broker.streams import ensure_group
from benchsuite.frontends.broker_cli import main as cli_main

pytest_plugins = ["broker_support"]


def _file(path: Path, size: int, seed: int = 0) -> Path:
    path.write_bytes(os.urandom(size) if seed == 0 else bytes([seed % 256]) * size)
    return path


def test_multi_chunk_round_trip(r: redis.Redis, tmp_path: Path) -> None:
    store = BlobStore(r, ttl=60, chunk_size=64 * 1024)
    src = _file(tmp_path / "model.onnx", 5 * 64 * 1024 + 123)
    ref = store.put(src)
    assert ref.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    assert int(r.hget(f"bs:blob:{ref.sha256}:meta", "chunks")) == 6
    out = store.get(ref, tmp_path / "back" / "model.onnx")
    assert out.read_bytes() == src.read_bytes()


@pytest.mark.parametrize("size", [0, 1024, 2048])
def test_edge_sizes(r: redis.Redis, tmp_path: Path, size: int) -> None:
    store = BlobStore(r, ttl=60, chunk_size=1024)
    src = _file(tmp_path / "f", size, seed=7)
    assert store.get(store.put(src), tmp_path / "g").read_bytes() == src.read_bytes()


def test_dedup(r: redis.Redis, tmp_path: Path) -> None:
    store = BlobStore(r, ttl=60, chunk_size=1000)
    a = _file(tmp_path / "a.bin", 5000, seed=3)
    b = tmp_path / "b.bin"
    b.write_bytes(a.read_bytes())
    ref_a, ref_b = store.put(a), store.put(b)
    assert ref_a.sha256 == ref_b.sha256 and ref_b.filename == "b.bin"
    assert len(list(r.scan_iter(match="bs:blob:*"))) == 1 + 5  # one meta, five chunks
    assert r.zcard(INDEX) == 1


def test_ttl_applied_and_refreshed(r: redis.Redis, tmp_path: Path) -> None:
    store = BlobStore(r, ttl=100, chunk_size=1000)
    ref = store.put(_file(tmp_path / "a", 2500))
    keys = list(r.scan_iter(match=f"bs:blob:{ref.sha256}:*"))
    assert len(keys) == 4 and all(0 < r.ttl(k) <= 100 for k in keys)
    for k in keys:
        r.expire(k, 10)
    store.get(ref, tmp_path / "b")  # use refreshes the TTL
    assert all(r.ttl(k) > 10 for k in keys)
    assert r.ttl(f"bs:blob:{BlobStore(r, ttl=None).put(_file(tmp_path / 'c', 10)).sha256}:meta") \
        == -1


def test_expired_blob_is_missing_and_cleaned(r: redis.Redis, tmp_path: Path) -> None:
    store = BlobStore(r, ttl=60, chunk_size=1000)
    ref = store.put(_file(tmp_path / "a", 3000))
    r.delete(f"bs:blob:{ref.sha256}:meta")  # as if the meta key had expired first
    with pytest.raises(BlobMissing):
        store.get(ref, tmp_path / "x")
    assert store.cleanup()["expired"] == []  # young leftovers: maybe an upload in progress
    report = store.cleanup(grace=0)
    assert report["expired"] == [ref.sha256]
    assert not list(r.scan_iter(match="bs:blob:*")) and r.zcard(INDEX) == 0


def test_real_ttl_expiry(r: redis.Redis, tmp_path: Path) -> None:
    store = BlobStore(r, ttl=1, chunk_size=1000)
    ref = store.put(_file(tmp_path / "a", 1500))
    time.sleep(1.2)
    assert not store.exists(ref.sha256)
    assert store.cleanup(grace=0)["expired"] == [ref.sha256]


def test_cleanup_stale_keeps_referenced(r: redis.Redis, tmp_path: Path) -> None:
    store = BlobStore(r, ttl=None, chunk_size=1000)
    used = store.put(_file(tmp_path / "used", 100))
    stale = store.put(_file(tmp_path / "stale", 100))
    ensure_group(r, "bs:jobs:prune")
    job = Job(job_id="j", stage="noop", spec={}, files={"x": used}, reply_to="bs:results:s")
    r.xadd("bs:jobs:prune", {"data": job.to_json()})
    assert store.cleanup(older_than=3600)["stale"] == []  # nothing old enough
    dry = store.cleanup(older_than=0, dry_run=True)
    assert dry["stale"] == [stale.sha256] and store.exists(stale.sha256)
    report = store.cleanup(older_than=0)
    assert report["stale"] == [stale.sha256] and report["kept"] == 1
    assert store.exists(used.sha256) and not store.exists(stale.sha256)


def test_cleanup_command(redis_server: RedisServer, r: redis.Redis, tmp_path: Path,
                         capsys: pytest.CaptureFixture) -> None:
    store = BlobStore(r, ttl=None)
    store.put(_file(tmp_path / "a", 10))
    assert cli_main(["blobs", "cleanup", "--redis-url", redis_server.url,
                     "--older-than", "0"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["stale"] == 1
    assert r.zcard(INDEX) == 0
