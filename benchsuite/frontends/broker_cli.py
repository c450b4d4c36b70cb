"""The broker's commands, for the main ``benchsuite`` CLI (``add_subcommands``) or on their own:

    benchsuite worker prune --redis-url redis://host:6379/0 \
        [--data-root DIR] [--allow-user-code [MODULE]]
    benchsuite worker bench --redis-url ... --device CPU --benchmark-app PATH
    benchsuite blobs cleanup --redis-url ... [--older-than 86400] [--dry-run]
    benchsuite broker status --redis-url ...
    benchsuite broker server --dir DIR [--aof]

The URL defaults to $BENCHSUITE_REDIS_URL.  Exit status 2 on a connection error.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path

from benchsuite.broker.blobs import DEFAULT_TTL
from benchsuite.broker.connection import BrokerConnectionError, connect, default_url, mask_url
from benchsuite.core.trust import ANY_MODULE

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s[%(process)d] %(message)s"


def _url_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--redis-url", default=default_url(),
                   help="redis://[:password@]host:port/db, rediss://..., unix:///path.sock "
                        "[$BENCHSUITE_REDIS_URL]")


def _positive(kind: type, zero: bool = False):
    """An argparse type: a finite number > 0 (>= 0 with ``zero``), else a usage error."""
    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or value < 0 or (value == 0 and not zero):
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{what} {'>= 0' if zero else '> 0'} expected, "
                                             f"got {text!r}")
        return value
    return convert


def _data_root(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not a folder")
    return path


def _module(text: str) -> str:
    if text != ANY_MODULE and not all(part.isidentifier() for part in text.split(".")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a module name (e.g. mymodels or "
                                         "pkg.models)")
    return text


def _ttl(value: str) -> int | None:
    """Seconds > 0, or 0 / none / never: no TTL. A negative one was accepted, then Redis refused
    every upload ('invalid expire time'), each job failing after its work."""
    if value.strip().lower() in ("0", "none", "never"):
        return None
    try:
        return _positive(int)(value)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"seconds > 0, or 0 / none for no TTL, expected, got "
                                         f"{value!r}") from None


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``worker``, ``blobs`` and ``broker`` to an argparse CLI.

    Each sets ``args.func``; run the parsed command with ``run(args)``."""
    worker = subparsers.add_parser("worker", help="serve prune or bench jobs from Redis")
    worker.add_argument("kind", choices=["prune", "bench"],
                        help="prune (torch: train, prune) or bench (OpenVINO: benchmark)")
    _url_arg(worker)
    worker.add_argument("--device", default="CPU", help="bench device (its own job stream)")
    worker.add_argument("--benchmark-app", default=None, metavar="PATH",
                        help="benchmark_app executable for bench jobs [the env's own]")
    worker.add_argument("--concurrency", type=_positive(int), default=1,
                        help="jobs run at once [1]")
    worker.add_argument("--workdir", type=Path, default=None, help="scratch folder [a temp dir]")
    worker.add_argument("--claim-idle", type=_positive(float), default=60.0, metavar="S",
                        help="take over a dead worker's job after S seconds pending [60]")
    worker.add_argument("--heartbeat", type=_positive(float), default=5.0, metavar="S",
                        help="heartbeat period [5]")
    worker.add_argument("--grace", type=_positive(float, zero=True), default=30.0, metavar="S",
                        help="on SIGTERM, finish running jobs for up to S s, then hand back [30]")
    worker.add_argument("--blob-ttl", type=_ttl, default=DEFAULT_TTL, metavar="S",
                        help=f"TTL of uploaded artifacts, 0 = none [{DEFAULT_TTL}]")
    worker.add_argument("--data-root", action="append", default=[], metavar="DIR",
                        type=_data_root,
                        help="a folder prune jobs may read data from (a cifar10 job's "
                             "--data-dir, an imagefolder:PATH), symlinks resolved; repeatable. "
                             "A job naming a path outside every root is refused. [none: only "
                             "the built-in digits, or cifar10 from this worker's "
                             "$BENCHSUITE_CIFAR10_DIR]")
    worker.add_argument("--allow-user-code", action="append", nargs="?", const=ANY_MODULE,
                        default=[], metavar="MODULE", type=_module,
                        help="let jobs name --model/--dataset module:callable of MODULE (and its "
                             "submodules; without MODULE: any module this worker can import). "
                             "Such a job runs that module's code on this worker; without this "
                             "option it is refused. Repeatable. [none: built-in models only]")
    worker.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    worker.set_defaults(func=cmd_worker)

    blobs = subparsers.add_parser("blobs", help="artifact blobs in Redis")
    blob_sub = blobs.add_subparsers(dest="blobs_command", required=True)
    cleanup = blob_sub.add_parser("cleanup", help="drop expired and stale unreferenced blobs")
    _url_arg(cleanup)
    cleanup.add_argument("--older-than", type=_positive(float, zero=True), default=None,
                         metavar="S",
                         help="also drop blobs unused for S seconds that no job/result names")
    cleanup.add_argument("--dry-run", action="store_true", help="say what would go, drop nothing")
    cleanup.set_defaults(func=cmd_blobs_cleanup)

    broker = subparsers.add_parser("broker", help="inspect the broker or run a Redis for it")
    broker_sub = broker.add_subparsers(dest="broker_command", required=True)
    status = broker_sub.add_parser("status", help="workers, queue lengths, dead letters")
    _url_arg(status)
    status.set_defaults(func=cmd_status)
    server = broker_sub.add_parser("server", help="run a private redis-server on a unix socket")
    server.add_argument("--dir", type=Path, required=True, help="data folder (socket, AOF)")
    server.add_argument("--aof", action="store_true", help="append-only file (long runs)")
    server.add_argument("--executable", default=None, help="redis-server binary")
    server.set_defaults(func=cmd_server)


def _setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), format=LOG_FORMAT)


def cmd_worker(args: argparse.Namespace) -> int:
    from benchsuite.broker.worker import Worker, WorkerConfig
    from benchsuite.core.trust import Trust

    _setup_logging(args.log_level)
    cfg = WorkerConfig(url=args.redis_url, kind=args.kind, device=args.device,
                       concurrency=max(1, args.concurrency), benchmark_app=args.benchmark_app,
                       workdir=args.workdir, claim_idle=args.claim_idle,
                       heartbeat=args.heartbeat, grace=args.grace, blob_ttl=args.blob_ttl,
                       trust=Trust.make(args.data_root, args.allow_user_code))
    logging.getLogger("benchsuite.worker").info(
        "jobs may read data under: %s; import user modules: %s",
        ", ".join(map(str, cfg.trust.data_roots)) or "none (digits only)",
        ", ".join(cfg.trust.user_modules) or "none (built-in models only)")
    return Worker(cfg).run()


def cmd_blobs_cleanup(args: argparse.Namespace) -> int:
    from benchsuite.broker.blobs import BlobStore

    _setup_logging()
    report = BlobStore(connect(args.redis_url)).cleanup(older_than=args.older_than,
                                                         dry_run=args.dry_run)
    for line in report["skipped"]:
        print(f"skipped (cannot be read): {line}", file=sys.stderr)
    print(json.dumps({k: (len(v) if isinstance(v, list) else v) for k, v in report.items()}))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """What the broker holds; an entry or key that cannot be read is named and skipped."""
    import redis

    from benchsuite.broker.streams import DEAD, dead_letters, iter_keys, workers

    r = connect(args.redis_url)
    print(f"redis: {mask_url(args.redis_url)}")
    skipped: list[str] = []
    for w in workers(r, skipped):
        env = w.get("env") if isinstance(w.get("env"), dict) else {}
        running = w.get("running") if isinstance(w.get("running"), list) else []
        beat = w.get("beat")
        ago = f"{time.time() - beat:.1f}s ago" if isinstance(beat, (int, float)) else "?"
        print(f"worker {w['worker_id']}: {w.get('state', '?')} on {w.get('stream', '?')}, "
              f"running {[j.get('stage') for j in running if isinstance(j, dict)]}, counts "
              f"{w.get('counts')}, python {env.get('python')} torch {env.get('torch')} "
              f"openvino {env.get('openvino')}, beat {ago}")
    for stream in sorted(iter_keys(r, "bs:jobs:*")):
        try:
            pending = r.xpending(stream, "workers")["pending"] if r.exists(stream) else 0
            print(f"{stream}: {r.xlen(stream)} queued or running, {pending} running")
        except redis.ResponseError as exc:  # not a stream, or a stream without the group
            skipped.append(f"{stream}: {exc}")
    try:
        print(f"{DEAD}: {r.xlen(DEAD)} dead letters")
        for d in dead_letters(r, count=5):
            reason = (d.get("reason") or "?").splitlines() or ["?"]
            print(f"  {d['id']} job {d.get('job_id') or '?'}: {reason[0][:200]}")
    except redis.ResponseError as exc:
        skipped.append(f"{DEAD}: {exc}")
    for line in skipped:
        print(f"skipped (cannot be read): {line}")
    return 0


def cmd_server(args: argparse.Namespace) -> int:
    import signal
    import threading

    from benchsuite.broker.server import RedisServer

    _setup_logging()
    # The handler goes in before anything else: a SIGTERM that comes while the server starts,
    # or right after the URL is printed, must still stop the server cleanly (exit 0).
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server = RedisServer(args.dir, executable=args.executable, appendonly=args.aof).start()
    try:
        print(f"redis-server running; use --redis-url {server.url}", flush=True)
        while server.running and not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def run(args: argparse.Namespace) -> int:
    """Run a parsed broker subcommand; a connection error is one line on stderr and exit 2."""
    try:
        return int(args.func(args) or 0)
    except BrokerConnectionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchsuite.frontends.broker_cli",
                                     description="benchsuite's Redis broker commands")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
