"""`benchsuite sensitivity`: the command line of `pipeline/sensitivity.py` (its docstring is the
help)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchsuite.frontends.cli import HelpFormatter
from benchsuite.pipeline.sensitivity import __doc__ as sensitivity_doc
from benchsuite.pipeline.sensitivity import plot, sensitivity_analysis, write_csv


def parse_range(text: str) -> list[float]:
    """`start:stop:step` (stop included) or a comma list: '0.1:0.9:0.2' -> [0.1, 0.3, ..., 0.9]."""
    try:
        return _parse_range(text)
    except ValueError as e:  # argparse shows an ArgumentTypeError's own message
        raise RangeError(f"{e} (want START:STOP:STEP or a comma list of values in [0, 1), "
                         "e.g. 0.1:0.9:0.2)") from None


class RangeError(argparse.ArgumentTypeError, ValueError):
    """A bad --sparsities (argparse shows its message; callers may catch a ValueError)."""


def add_subcommand(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "sensitivity", help="prune each layer alone at a range of sparsities; CSV and plot",
        description=sensitivity_doc, formatter_class=HelpFormatter)
    p.add_argument("--model", default="resnet20", help="the model (a built-in name or "
                   "module:callable), trained dense first (cached)")
    p.add_argument("--dataset", default="digits", help="its dataset (as pytest's --dataset)")
    p.add_argument("--data-dir", default=None, help="the dataset's folder, where it needs one")
    p.add_argument("--sparsities", default="0.1:0.9:0.2", type=parse_range,
                   help="start:stop:step (stop included) or a comma list (default 0.1:0.9:0.2)")
    p.add_argument("--group-type", default="element", choices=("element", "Filters", "Channels"),
                   help="what each layer loses: single weights, whole filters or channels")
    p.add_argument("--dense-epochs", type=int, default=5, help="the dense model's epochs")
    p.add_argument("--seed", type=int, default=0, help="its seed")
    p.add_argument("--eval-samples", type=int, default=0,
                   help="evaluate on the first N test samples (0: all)")
    p.add_argument("--out", type=Path, required=True, help="folder for the CSV and the PNG")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import tempfile

    from benchsuite.pipeline.dense import load_checkpoint, load_data, train_stage

    spec = {"model": args.model, "dataset": args.dataset, "data_dir": args.data_dir,
            "seed": args.seed, "epochs": args.dense_epochs}
    print(f"dense {args.model}: training or loading from the cache ...", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        dense = train_stage(spec, {}, Path(tmp))
        model = load_checkpoint(dense.files["checkpoint"])
    data = load_data(spec)
    n = args.eval_samples or len(data.x_test)
    rows = sensitivity_analysis(model, data.x_test[:n], data.y_test[:n],
                                [0.0, *[s for s in args.sparsities if s > 0]],
                                group_type=args.group_type)
    csv_path = write_csv(rows, args.out / "sensitivity.csv")
    print(f"wrote {csv_path}")
    try:
        png = plot(rows, args.out / "sensitivity.png", f"{args.model} on {args.dataset}")
        print(f"wrote {png}")
    except ImportError:
        print("matplotlib is not installed: no plot (pip install 'benchsuite[report]')",
              file=sys.stderr)
    return 0


def _parse_range(text: str) -> list[float]:
    if ":" in text:
        start, stop, step = (float(v) for v in text.split(":"))
        if step <= 0:
            raise ValueError(f"step must be positive in {text!r}")
        n = int((stop - start) / step + 1e-9) + 1
        values = [round(start + i * step, 6) for i in range(n)]
    else:
        values = [float(v) for v in text.split(",") if v.strip()]
    bad = [v for v in values if not 0 <= v < 1]
    if bad or not values:
        raise ValueError(f"sparsities must be in [0, 1), got {text!r}")
    return values
