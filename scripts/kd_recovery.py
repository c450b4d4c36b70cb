"""Does knowledge distillation recover an aggressive depth removal? (issue 14, item 1)

    python scripts/kd_recovery.py --model resnet56 --blocks 7 --epochs 3 --seed 0 [--out F]
    python scripts/kd_recovery.py --model resnet20 --blocks 2 --epochs 3 --dense-epochs 30

Runs `<model>/block_removal` (`--blocks` removed from every stage) on the digits twice, with
the same seed, epochs and dense model: without KD (kd_weight 0) and with the dense model as
teacher (kd_weight, kd_student_weight, kd_temperature), in-process, and prints Top-1 with its
95 % Wilson interval, the speed-up with its interval (the suite's paired method) and MACs for
both (the speed-up is only a figure on a quiet machine: see `bench_disturbed`).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from benchsuite.pipeline.executor import LocalExecutor
from benchsuite.pipeline.run import run_case
from benchsuite.recipe.case import Case


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet56", help="resnet20 ... resnet56")
    p.add_argument("--blocks", type=int, default=7, help="blocks removed from every stage")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--dense-epochs", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kd", default="0.7,0.3,4", help="kd_weight,kd_student_weight,temperature")
    p.add_argument("--precision", default="f32")
    p.add_argument("--out", help="write the two rows here (JSON)")
    args = p.parse_args()
    w, sw, t = (float(v) for v in args.kd.split(","))
    base = {"blocks": args.blocks}
    rows = {}
    with tempfile.TemporaryDirectory(prefix="bs-kd-") as work:
        ex = LocalExecutor(Path(work))
        for name, kd in (("no KD", {"kd_weight": 0}),
                         ("KD", {"kd_weight": w, "kd_student_weight": sw, "kd_temperature": t})):
            case = Case(recipe=f"{args.model}/block_removal", params=base | kd, model=args.model,
                        epochs=args.epochs, dense_epochs=args.dense_epochs, seed=args.seed,
                        precision=args.precision)
            row = run_case(case, ex, progress=lambda s: print(f"    {s}", flush=True)).to_dict()
            rows[name] = {k: row.get(k) for k in (
                "label", "top1", "top1_ci_low", "top1_ci_high", "dense_top1", "speedup",
                "speedup_ci_low", "speedup_ci_high", "macs", "dense_macs", "finetune_epochs",
                "precision", "threads", "device_name", "runtime_version", "input_shape",
                "kd_teacher_top1", "speedup_method", "bench_rounds", "streams", "batch")}
            r = rows[name]
            print(f"{name}: Top-1 {r['top1']:.4f} [{r['top1_ci_low']:.3f}, "
                  f"{r['top1_ci_high']:.3f}] (dense {r['dense_top1']:.4f}), speed-up "
                  f"{r['speedup']:.2f}x [{r['speedup_ci_low']:.2f}, {r['speedup_ci_high']:.2f}],"
                  f" MACs {r['macs'] / r['dense_macs']:.3f}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
