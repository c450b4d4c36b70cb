"""`benchsuite sweep show [SWEEP_ID] [--sweep-redis URL]`: the sweeps kept in Redis and their
trials, without a sweep running. With no --sweep-redis it opens the private sweep store the
pytest sessions keep (`.cache/benchsuite/sweeps/redis`, its AOF), with a redis-server of its own
for as long as it reads, and closes it again."""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Iterator

PREFIX = "benchsuite:sweep:"


@contextlib.contextmanager
def _store_url(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from benchsuite.core.paths import cache_dir
    from benchsuite.sweep.store import private_store

    folder = cache_dir() / "sweeps" / "redis"
    if not folder.is_dir():
        raise FileNotFoundError(f"no sweep store at {folder} (no sweep ran here yet; pass "
                                "--sweep-redis URL for a shared one)")
    with private_store(folder) as url:
        yield url


def sweep_ids(r) -> list[str]:
    """The ids of the sweeps in a Redis (each has a trials hash)."""
    ids = {k.decode() if isinstance(k, bytes) else k for k in r.scan_iter(f"{PREFIX}*:trials")}
    return sorted(k[len(PREFIX):-len(":trials")] for k in ids)


def show_lines(url: str, wanted: str | None = None) -> list[str]:
    from benchsuite.broker.connection import connect
    from benchsuite.recipe.case import shown
    from benchsuite.sweep.store import DAMAGED, RedisStore

    r = connect(url)
    ids = sweep_ids(r)
    if wanted is not None and wanted not in ids:
        raise ValueError(f"no sweep {wanted!r} in that store (it holds: "
                         f"{', '.join(ids) or 'none'})")
    lines = []
    for sweep_id in ([wanted] if wanted else ids):
        store = RedisStore(url, sweep_id)
        trials = store.trials()
        try:
            config = json.loads(r.get(store.key("config")) or "{}")
            config = config if isinstance(config, dict) else {}
        except ValueError:
            lines.append(f"sweep {sweep_id}: its config ({store.key('config')}) is not JSON")
            config = {}
        metric = (config.get("metric") or {}).get("name", "objective")
        lines.append(f"sweep {sweep_id}: {len(trials)} trial(s), method "
                     f"{config.get('method', '?')}, metric {metric}")
        for t in trials:
            value = ("" if t.objective is None else f"{metric} {shown(t.objective)}") \
                or t.metrics.get(DAMAGED, "")
            top1 = t.metrics.get("val_top1", t.metrics.get("top1"))
            figures = ", ".join(x for x in (value, f"Top-1 {shown(top1)}" if top1 else "") if x)
            params = {k: float(shown(v)) if isinstance(v, float) else v
                      for k, v in t.params.items()}
            lines.append(f"  trial {t.number:3d} {t.status:10s} {figures}  "
                         f"{json.dumps(params, sort_keys=True)}")
    return lines or ["no sweep in that store"]


def _show(args: argparse.Namespace) -> int:
    with _store_url(args.sweep_redis) as url:
        print("\n".join(show_lines(url, args.sweep_id)))
    return 0


def add_subcommand(sweep_sub: argparse._SubParsersAction) -> None:
    show = sweep_sub.add_parser("show", help="the sweeps in Redis and their trials",
                                description=__doc__)
    show.add_argument("sweep_id", nargs="?", help="one sweep (default: every sweep there)")
    show.add_argument("--sweep-redis", metavar="URL", help="the store's Redis (default: the "
                      "private one under .cache/benchsuite/sweeps/redis)")
    show.set_defaults(func=_show)
