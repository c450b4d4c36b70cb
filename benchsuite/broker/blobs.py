"""Artifacts as content-addressed blobs in Redis, so workers on other machines need no shared disk.

A blob is named by the sha256 of its bytes and stored in chunks:

    bs:blob:<sha>:meta   hash {size, chunks, chunk_size, created}  (written last: the commit mark)
    bs:blob:<sha>:<i>    the i-th chunk (string)
    bs:blobs             sorted set: sha -> last time it was uploaded or downloaded

Every key carries the TTL (refreshed on each use); ``cleanup`` drops what expired and, with
``older_than``, blobs not used since then that no queued job or live result refers to.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from benchsuite.broker.connection import refusal
from benchsuite.broker.messages import FileRef

log = logging.getLogger(__name__)

INDEX = "bs:blobs"
DEFAULT_CHUNK = 1 << 20  # 1 MiB: well under Redis's 512 MB string limit, few round trips
DEFAULT_TTL = 7 * 24 * 3600
_PIPELINE_CHUNKS = 8


LOST_BLOB_HINT = ("a Redis restart without persistence most likely lost it (run Redis with "
                  "--appendonly yes for long runs), else it expired, was cleaned up or was "
                  "evicted (a maxmemory policy other than noeviction)")


class BlobMissing(LookupError):
    """The blob expired, was cleaned up, never finished uploading, or a Redis restart without
    persistence (no AOF) lost it."""


def _meta(sha: str) -> str:
    return f"bs:blob:{sha}:meta"


def _chunk(sha: str, i: int) -> str:
    return f"bs:blob:{sha}:{i}"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


@dataclass
class BlobStore:
    r: redis.Redis
    ttl: int | None = DEFAULT_TTL  # seconds; None keeps blobs until cleanup
    chunk_size: int = DEFAULT_CHUNK
    url: str = ""  # for messages (masked)

    def exists(self, sha: str) -> bool:
        return bool(self.r.exists(_meta(sha)))

    def put(self, path: Path, filename: str | None = None) -> FileRef:
        """Upload a file (or only refresh its TTL if the same content is already there, every
        chunk of it). The chunks go first and the meta key, the commit mark, only once all of
        them are stored: a Redis that refuses part of the upload (at its maxmemory, its disk
        full) leaves no blob that claims to be whole, and raises ``RedisRefused`` naming why."""
        path = Path(path)
        sha = file_sha256(path)
        size = path.stat().st_size
        ref = FileRef(sha, size, filename or path.name)
        meta = self.r.hgetall(_meta(sha))
        if meta and int(meta[b"size"]) == size and self._whole(sha, int(meta[b"chunks"])):
            self._touch(sha, int(meta[b"chunks"]))
            log.debug("blob %s already stored (%d bytes)", sha[:12], size)
            return ref
        chunks = 0
        try:
            pipe = self.r.pipeline(transaction=False)
            with open(path, "rb") as f:
                while True:
                    data = f.read(self.chunk_size)
                    if not data and chunks > 0:
                        break
                    pipe.set(_chunk(sha, chunks), data, ex=self.ttl)
                    chunks += 1
                    if chunks % _PIPELINE_CHUNKS == 0:
                        pipe.execute()
                    if len(data) < self.chunk_size:
                        break
            pipe.execute()
            pipe.hset(_meta(sha), mapping={"size": size, "chunks": chunks,
                                           "chunk_size": self.chunk_size, "created": time.time()})
            if self.ttl:
                pipe.expire(_meta(sha), self.ttl)
            pipe.zadd(INDEX, {sha: time.time()})
            pipe.execute()
        except redis.ResponseError as exc:
            refused = refusal(exc, self.url)
            if refused is None:
                raise
            with contextlib.suppress(redis.RedisError):  # what got in (a full disk: nothing)
                self.r.delete(_meta(sha), *(_chunk(sha, i) for i in range(chunks)))
            raise refused from None
        log.debug("blob %s stored: %d bytes in %d chunks", sha[:12], size, chunks)
        return ref

    def _whole(self, sha: str, chunks: int) -> bool:
        """Every chunk of the blob is there (an eviction or an upload cut short takes some)."""
        return self.r.exists(*(_chunk(sha, i) for i in range(chunks))) == chunks

    def get(self, ref: FileRef | str, dest: Path) -> Path:
        """Download a blob to ``dest`` (atomically, verified against its sha256)."""
        sha = ref.sha256 if isinstance(ref, FileRef) else ref
        meta = self.r.hgetall(_meta(sha))
        if not meta:
            raise BlobMissing(f"blob {sha} is not in Redis (expired, cleaned up or never stored)")
        chunks = int(meta[b"chunks"])
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
        h = hashlib.sha256()
        try:
            with open(tmp, "wb") as f:
                for start in range(0, chunks, _PIPELINE_CHUNKS):
                    pipe = self.r.pipeline(transaction=False)
                    for i in range(start, min(chunks, start + _PIPELINE_CHUNKS)):
                        pipe.get(_chunk(sha, i))
                    for i, data in enumerate(pipe.execute(), start):
                        if data is None:
                            raise BlobMissing(f"blob {sha}: chunk {i} of {chunks} is missing")
                        h.update(data)
                        f.write(data)
            if h.hexdigest() != sha:
                raise BlobMissing(f"blob {sha}: content does not match its hash")
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        self._touch(sha, chunks)
        return dest

    def _touch(self, sha: str, chunks: int) -> None:
        pipe = self.r.pipeline(transaction=False)
        if self.ttl:
            for key in [_meta(sha)] + [_chunk(sha, i) for i in range(chunks)]:
                pipe.expire(key, self.ttl)
        pipe.zadd(INDEX, {sha: time.time()})
        pipe.execute()

    def _idle(self, sha: str) -> float:
        """Seconds since any key of the blob was last touched (inf when none is left)."""
        idle = float("inf")
        for key in self.r.scan_iter(match=f"bs:blob:{sha}:*", count=1000):
            try:
                seconds = self.r.object("idletime", key)
            except redis.ResponseError:  # an LFU maxmemory policy keeps no idle times
                return float("inf")
            if seconds is not None:
                idle = min(idle, float(seconds))
        return idle

    def delete(self, sha: str) -> int:
        """Remove a blob's keys (whatever is left of them); returns the number of keys removed."""
        keys = [k for k in self.r.scan_iter(match=f"bs:blob:{sha}:*", count=1000)]
        removed = self.r.delete(*keys) if keys else 0
        self.r.zrem(INDEX, sha)
        return int(removed)

    def cleanup(self, older_than: float | None = None, referenced: set[str] | None = None,
                dry_run: bool = False, grace: float = 600.0) -> dict:
        """Drop expired blobs and, with ``older_than`` (seconds), stale unreferenced ones.

        ``referenced`` defaults to the blobs named by messages still in the job and result streams.
        Leftover chunks of a blob with no meta key are removed once untouched for ``grace``
        seconds (younger ones may belong to an upload in progress).  Messages that cannot be
        read are skipped (``report["skipped"]`` names each, and why).
        """
        skipped: list[str] = []
        if referenced is None:
            from benchsuite.broker.streams import referenced_blobs

            referenced = referenced_blobs(self.r, skipped)
        now = time.time()
        report: dict = {"expired": [], "stale": [], "kept": 0, "keys_removed": 0,
                        "skipped": skipped}
        last_use = {m.decode(): score for m, score in self.r.zrange(INDEX, 0, -1, withscores=True)}
        for key in self.r.scan_iter(match="bs:blob:*", count=1000):  # chunks not in the index
            last_use.setdefault(key.decode().split(":")[2], 0.0)
        for sha, used in sorted(last_use.items()):
            if not self.exists(sha):
                if self._idle(sha) < grace:
                    report["kept"] += 1
                    continue
                report["expired"].append(sha)
            elif older_than is not None and now - used >= older_than and sha not in referenced:
                report["stale"].append(sha)
            else:
                report["kept"] += 1
                continue
            if not dry_run:
                report["keys_removed"] += self.delete(sha)
        log.info("blob cleanup: %d expired, %d stale removed, %d kept%s",
                 len(report["expired"]), len(report["stale"]), report["kept"],
                 " (dry run)" if dry_run else "")
        return report
