"""`benchsuite select RESULTS --out SWEEP.yaml`: the command line of `bench/selection.py`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas
import yaml

from benchsuite.bench.selection import (
    INTERVAL_RULE,
    classify_rows,
    layer_types,
    narrowed_search_space,
    sweep_from_space,
)
from benchsuite.recipe import RecipeError
from benchsuite.recipe.yamltext import load_yaml_file


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="benchsuite select",
        description="The detrimental-pruner filter: classify each measured case of a results "
                    "table by its paired speed-up interval (gain / no gain / detrimental), drop "
                    "the recipes that never gain, and write the narrowed space as a sweep file "
                    "(the space `benchsuite frontier --space` and `pytest -m sweep` search).")
    ap.add_argument("results", help="a results table (results.csv or results.parquet)")
    ap.add_argument("--out", required=True, help="the sweep file to write")
    ap.add_argument("--base", help="a sweep file whose method, metric, early_terminate and case "
                                   "constants the written one keeps")
    ap.add_argument("--model", help="only the rows of this model")
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    path = Path(args.results)
    if not path.is_file():
        ap.error(f"no results table {path} (run `pytest -m latency` first)")
    try:
        rows = (pandas.read_parquet(path) if path.suffix == ".parquet"
                else pandas.read_csv(path))
    except (ValueError, OSError) as e:
        ap.error(f"{path}: not a readable results table ({e})")
    needed = {"recipe", "speedup"}
    if missing := sorted(needed - set(rows.columns)):
        ap.error(f"{path}: not a results table (no column {', '.join(missing)})")
    if args.model:
        rows = rows[rows["model"] == args.model]
    if rows.empty:
        ap.error(f"{path}: no measured case{' of ' + args.model if args.model else ''}")
    classified = classify_rows(rows)
    space = narrowed_search_space(classified)
    base = None
    if args.base:
        try:
            base = load_yaml_file(Path(args.base))
        except RecipeError as e:
            ap.error(str(e))
    config = sweep_from_space(space, base)
    per_layer = path.parent / "per_layer"
    kinds = layer_types(per_layer, classified["case_id"]) if "case_id" in classified else {}
    header = [f"written by benchsuite select from {path} ({len(classified)} cases)",
              f"rule: {INTERVAL_RULE}"]
    for name, entry in {**space["keep"], **space["dropped"]}.items():
        header.append(f"{name}: {entry['verdict']} ({entry['cases']} cases, best "
                      f"{entry['best_speedup']}x)")
    for kind, entry in kinds.items():
        header.append(f"layer type {kind}: {entry['verdict']} (dense {entry['dense_us']} us, "
                      f"pruned {entry['pruned_us']} us over the cases)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(f"# {line}\n" for line in header)
                   + yaml.safe_dump(config, sort_keys=False))
    print("\n".join(header))
    if not space["keep"]:
        print(f"no recipe gained: {out} searches nothing", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0
