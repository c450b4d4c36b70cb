"""The issue's closing-note measurement: ResNet-20/56, dense vs 50% filters removed vs 80%
element-wise sparsity, CPU f32 and bf16, through this env's OpenVINO and the legacy 2021.4 one.

    python -m studies.resnet_report OUT_DIR [--repeats 5] [--niter 1000] [--depths 20 56]

Random weights (latency does not depend on their values; the pruned shapes are what
matters). Needs torch, torch-pruning and ``benchsuite.models.resnet_cifar`` (the prune side);
writes ``OUT_DIR/results.json``, ``OUT_DIR/results.md`` and ``OUT_DIR/layers_<depth>_<prec>.csv``.
Models of one depth and precision are measured interleaved (dense, filters, sparse, dense, ...).
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path
from typing import Any

from benchsuite.bench.devices import legacy_benchmark_app, precision_skip_reason
from benchsuite.bench.file_sizes import model_stats
from benchsuite.bench.measurement import BenchSettings
from benchsuite.bench.runner import benchmark_interleaved, paired_speedups
from benchsuite.bench.selection import classify_cases
from studies.analysis import compare_layers, model_summary

VARIANTS = ("dense", "filters50", "sparse80")


def layer_macs(model: Any, shape: tuple[int, ...]) -> dict[str, float]:
    """MACs per Conv2d/Linear module (forward hooks), keyed by module name."""
    import torch

    macs: dict[str, float] = {}
    hooks = []
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Conv2d):
            def conv_hook(m: Any, _i: Any, out: Any, name: str = name) -> None:
                k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
                macs[name] = float(out.numel() * k)
            hooks.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, torch.nn.Linear):
            def fc_hook(m: Any, _i: Any, out: Any, name: str = name) -> None:
                macs[name] = float(out.numel() * m.in_features)
            hooks.append(mod.register_forward_hook(fc_hook))
    with torch.no_grad():
        model(torch.zeros(1, *shape))
    for h in hooks:
        h.remove()
    return macs


def build_variants(depth: int, folder: Path, shape: tuple[int, ...]) -> dict[str, dict[str, Any]]:
    import openvino
    import torch
    import torch_pruning as tp

    from benchsuite.models.resnet_cifar import ResNetCifar

    torch.manual_seed(depth)
    out: dict[str, dict[str, Any]] = {}
    dense = ResNetCifar(depth, in_channels=shape[0]).eval()
    filters = ResNetCifar(depth, in_channels=shape[0]).eval()
    filters.load_state_dict(dense.state_dict())
    example = torch.zeros(1, *shape)
    importance = tp.importance.MagnitudeImportance(p=1)
    pruner = tp.pruner.MetaPruner(filters, example, importance=importance, pruning_ratio=0.5,
                                  ignored_layers=[filters.fc])
    pruner.step()
    sparse = ResNetCifar(depth, in_channels=shape[0]).eval()
    sparse.load_state_dict(dense.state_dict())
    with torch.no_grad():  # 80% global magnitude sparsity over conv weights (masks folded in)
        weights = [m.weight for m in sparse.modules() if isinstance(m, torch.nn.Conv2d)]
        cut = torch.cat([w.abs().flatten() for w in weights]).quantile(0.8)
        for w in weights:
            w.mul_((w.abs() > cut).float())
    for name, model in zip(VARIANTS, (dense, filters, sparse), strict=True):
        onnx_path = folder / f"r{depth}_{name}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (example,), str(onnx_path), dynamo=False, opset_version=13,
                              input_names=["input"], output_names=["logits"])
        xml = folder / f"r{depth}_{name}.xml"
        openvino.save_model(openvino.convert_model(str(onnx_path), input=[(1, *shape)]),
                            str(xml), compress_to_fp16=False)
        macs = layer_macs(model, shape)
        out[name] = {"onnx": onnx_path, "xml": xml, "macs": macs,
                     "macs_total": sum(macs.values()), **model_stats(onnx_path, xml)}
    return out


def measure(out_dir: Path, depths: list[int], repeats: int, niter: int,
            per_layer: bool = True, legacy_too: bool = True) -> list[dict[str, Any]]:
    shape = (3, 32, 32)
    rows: list[dict[str, Any]] = []
    legacy = legacy_benchmark_app()
    precisions = []
    for prec in ("f32", "bf16"):
        if (why := precision_skip_reason("CPU", prec)) is not None:
            warnings.warn(f"skipped: {why}", stacklevel=2)  # an f32 run under a bf16 label
        else:
            precisions.append(prec)
    for depth in depths:
        variants = build_variants(depth, out_dir / "models", shape)
        runs: list[tuple[str, str, dict[str, Path], BenchSettings]] = []
        for prec in precisions:
            settings = BenchSettings(precision=prec, niter=niter, repeats=repeats,
                                     per_layer=per_layer)
            runs.append(("2026", prec, {k: v["xml"] for k, v in variants.items()}, settings))
        if legacy.path is not None and legacy_too:
            for prec in precisions:
                settings = BenchSettings(precision=prec, niter=niter, repeats=repeats,
                                         executable=str(legacy.path), per_layer=per_layer)
                runs.append(("2021.4", prec, {k: v["onnx"] for k, v in variants.items()},
                             settings))
        for runtime, prec, models, settings in runs:
            tag = f"r{depth}_{runtime}_{prec}"
            results = benchmark_interleaved(models, out_dir / "reports" / tag, settings)
            dense = results["dense"]
            for name, res in results.items():
                v = variants[name]
                summ = model_summary(dense.latency_median_us, res.latency_median_us,
                                     variants["dense"]["macs_total"], v["macs_total"])
                paired = paired_speedups(dense, res)
                rows.append({"model": f"ResNet-{depth}", "variant": name, "runtime": runtime,
                             "runtime_version": res.runtime_version, "precision": res.precision,
                             "precision_requested": prec, "median_us": res.latency_median_us,
                             "best_us": res.latency_repeat_min_us, "cv": res.latency_cv,
                             "paired_cv": paired["cv"], "macs": v["macs_total"], **summ,
                             "onnx_bytes": v["onnx_bytes"], "ir_bytes": v["ir_bytes"]})
                if name != "dense":
                    rows[-1]["verdict"] = classify_cases(
                        [{"recipe": name, "speedup": summ["speedup"], "cv_dense": dense.latency_cv,
                          "cv_pruned": res.latency_cv}]).loc[0, "verdict"]
                if name != "dense" and runtime == "2026" and per_layer:
                    cmp = compare_layers(dense.per_layer_frame(), res.per_layer_frame(),
                                         variants["dense"]["macs"], v["macs"])
                    cmp.to_csv(out_dir / f"layers_{tag}_{name}.csv")
    return rows


def to_markdown(rows: list[dict[str, Any]]) -> str:
    head = ("| model | variant | runtime | precision used | median µs | best µs | CV | speed-up "
            "| paired CV | MACs ratio | latency efficiency | verdict |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    body = "".join(
        f"| {r['model']} | {r['variant']} | {r['runtime']} | {r['precision']} | "
        f"{r['median_us']:.1f} | {r['best_us']:.1f} | {r['cv']:.3f} | {r['speedup']:.2f} | "
        f"{r['paired_cv']:.3f} | {r['macs_ratio']:.2f} | {r['latency_efficiency']:.2f} | "
        f"{r.get('verdict', '')} |\n" for r in rows)
    return head + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--niter", type=int, default=1000)
    parser.add_argument("--depths", type=int, nargs="+", default=[20, 56])
    parser.add_argument("--no-per-layer", action="store_true",
                        help="latency only: no performance counters")
    parser.add_argument("--no-legacy", action="store_true", help="skip the 2021.4 runtime")
    args = parser.parse_args(argv)
    (args.out_dir / "models").mkdir(parents=True, exist_ok=True)
    rows = measure(args.out_dir, args.depths, args.repeats, args.niter,
                   per_layer=not args.no_per_layer, legacy_too=not args.no_legacy)
    (args.out_dir / "results.json").write_text(json.dumps(rows, indent=1))
    md = to_markdown(rows)
    (args.out_dir / "results.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
