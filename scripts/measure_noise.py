"""How repeatable is a speed-up? The old method (benchmark_app processes) vs the paired one.

    python scripts/measure_noise.py OUT_DIR [--sessions 6] [--load]

Builds two pairs of static IRs with random weights (latency depends on shapes, not values):
ResNet-20 dense vs 50 % L1 filters removed (torch-pruning), and ResNet-56 dense vs the found
depth x width recipe `resnet56/blocks_and_filters` at the sweep's point (4 blocks removed per
stage + 45 % L1 filters, round_to 8; applied without training). Then, for each pair, runs each
method in `--sessions` separate processes (a new process = a new "session"), in alternation:

- old: `benchmark_interleaved`, 3 repeats x 500 iterations per model, default threads
  (per-layer counters on, as the suite ran it),
  speed-up = dense median / pruned median (the suite's method before the paired one);
- new: `measure_paired` with its defaults (1 thread, random-order rounds, bootstrap interval);
- A/A: the dense model against itself with the new method.

`--load` runs a CPU-bound process beside the measurements. Writes OUT_DIR/noise.json and
prints a markdown table: speed-ups, CV, max/min, mean interval half-width, mean time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

SHAPE = (1, 32, 32)
RUN = """
import json, sys, time
from pathlib import Path
method, dense, pruned = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
t0 = time.perf_counter()
if method == "old":
    from benchsuite.bench import BenchSettings, benchmark_interleaved, speedup
    s = BenchSettings(precision="f32", niter=500, repeats=3)
    r = benchmark_interleaved({"dense": dense, "pruned": pruned}, Path(sys.argv[4]), s)
    out = {"speedup": speedup(r["dense"], r["pruned"]), "low": None, "high": None}
else:
    from benchsuite.bench.paired import measure_paired
    r = measure_paired({"dense": dense, "pruned": pruned})
    out = {"speedup": r.speedup, "low": r.ci_low, "high": r.ci_high, "rounds": r.rounds}
print(json.dumps(out | {"seconds": time.perf_counter() - t0}))
"""


def _export(model, folder: Path, name: str) -> Path:
    import warnings

    import openvino
    import torch

    onnx_path = folder / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.zeros(1, *SHAPE),), str(onnx_path), dynamo=False,
                          opset_version=13, input_names=["input"], output_names=["logits"])
    xml = folder / f"{name}.xml"
    openvino.save_model(openvino.convert_model(str(onnx_path), input=[(1, *SHAPE)]), str(xml),
                        compress_to_fp16=False)
    return xml


def build_pairs(folder: Path) -> dict[str, dict[str, Path]]:
    import torch

    from benchsuite.models.resnet_cifar import ResNetCifar
    from benchsuite.prune import CompressionScheduler
    from benchsuite.recipe import parse_recipe
    from studies.resnet_report import build_variants

    folder.mkdir(parents=True, exist_ok=True)
    r20 = build_variants(20, folder, SHAPE)
    torch.manual_seed(56)
    dense = ResNetCifar(56, in_channels=SHAPE[0]).eval()
    pruned = ResNetCifar(56, in_channels=SHAPE[0])
    pruned.load_state_dict(dense.state_dict())
    from benchsuite.recipe.case import Case

    found = Case("resnet56/blocks_and_filters", {"blocks": 4, "sparsity": 0.45, "round_to": 8})
    recipe = parse_recipe(found.recipe_text(), source=found.recipe_name)
    calib = (torch.randn(64, *SHAPE), torch.randint(0, 10, (64,)))
    scheduler = CompressionScheduler(recipe, pruned, torch.zeros(1, *SHAPE), calibration=calib)
    optimizer = torch.optim.SGD(pruned.parameters(), lr=0.0)
    for epoch in range(recipe.last_epoch() + 1):
        if scheduler.on_epoch_begin(epoch, optimizer):
            optimizer = torch.optim.SGD(pruned.parameters(), lr=0.0)
        scheduler.on_epoch_end(epoch, optimizer)
    return {
        "resnet20 l1_filters 0.5": {"dense": r20["dense"]["xml"],
                                    "pruned": r20["filters50"]["xml"]},
        "resnet56 found depth x width": {"dense": _export(dense, folder, "r56_dense"),
                                         "pruned": _export(pruned, folder, "r56_found")},
    }


def run(method: str, dense: Path, pruned: Path, workdir: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", RUN, method, str(dense), str(pruned),
                          str(workdir)], capture_output=True, text=True, check=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarise(runs: list[dict]) -> dict:
    s = [r["speedup"] for r in runs]
    halves = [(r["high"] - r["low"]) / 2 / r["speedup"] for r in runs if r.get("low") is not None]
    return {
        "speedups": [round(v, 4) for v in s],
        "cv": statistics.stdev(s) / statistics.fmean(s) if len(s) > 1 else 0.0,
        "max_over_min": max(s) / min(s),
        "mean_halfwidth": statistics.fmean(halves) if halves else None,
        "mean_seconds": statistics.fmean(r["seconds"] for r in runs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--sessions", type=int, default=6)
    parser.add_argument("--load", action="store_true", help="a CPU-bound process beside")
    args = parser.parse_args(argv)
    pairs = build_pairs(args.out / "models")
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.load else None
    results: dict[str, dict] = {}
    try:
        for name, pair in pairs.items():
            runs: dict[str, list[dict]] = {"old": [], "new": [], "A/A": []}
            for i in range(args.sessions):
                work = args.out / "reports" / f"{name.split()[0]}-{i}"
                runs["old"].append(run("old", pair["dense"], pair["pruned"], work))
                runs["new"].append(run("new", pair["dense"], pair["pruned"], work))
                runs["A/A"].append(run("new", pair["dense"], pair["dense"], work))
                print(f"{name} session {i + 1}: " + ", ".join(
                    f"{k} {v[-1]['speedup']:.3f}x" for k, v in runs.items()), flush=True)
            results[name] = {k: summarise(v) | {"runs": v} for k, v in runs.items()}
    finally:
        if hog is not None:
            hog.kill()
    doc = {"load": args.load, "sessions": args.sessions, "date": time.strftime("%Y-%m-%d"),
           "results": results}
    (args.out / "noise.json").write_text(json.dumps(doc, indent=1))
    print(f"\n| pair | method | speed-ups | CV | max/min | mean half-width | s each |"
          f"\n|---|---|---|---|---|---|---|  load: {args.load}")
    for name, by_method in results.items():
        for method, r in by_method.items():
            half = f"{r['mean_halfwidth']:.2%}" if r["mean_halfwidth"] is not None else "-"
            print(f"| {name} | {method} | {min(r['speedups']):.3f}-{max(r['speedups']):.3f} | "
                  f"{r['cv']:.2%} | {r['max_over_min']:.3f} | {half} | {r['mean_seconds']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
