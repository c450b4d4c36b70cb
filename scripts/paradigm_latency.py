"""What each pruning paradigm does to latency, per model family and precision (issue 23).

Latency depends on the weights' values by a few % at most (a dense kernel multiplies zeros as
fast as anything else; a trained MobileNetV2 and ViT ran 3.0-3.4 % slower than untrained at f32
on an AMD EPYC, docs/measurements.md), and otherwise only on the architecture, the precision and,
for OpenVINO's sparse INT8 kernels, on how many weights are exactly zero. So each paradigm's
*latency* effect is measured here on untrained networks built directly, at the suite's
conditions (CPU, batch 1, one inference thread, one stream, input 1x1x28x28 as Fashion-MNIST,
the paired in-process rounds); what each costs in Top-1 needs training and is measured by the
cases themselves.

Per family (ResNet-20, MobileNetV2, the small ViT at width 96, the ViT at DeiT-Tiny's width
192): dense; element-wise masks at 50 % and 90 % (L1, every conv and linear weight, folded in
as zeros); the structured versions that thin the network (filters or channels, heads, MLP
width, whole blocks). For each:

- f32 and bf16: the version against dense at the same precision;
- int8: the version quantized by NNCF against dense at f32 (the suite's INT8 cases);
- sparse kernels: the masked version in INT8 against dense in INT8, both compiled with
  CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE 0.5 and without it (on a CPU without AMX, or where the
  layers' dimensions are not multiples of 64, the property changes nothing).

    python scripts/paradigm_latency.py --out /tmp/paradigms.csv [--only vit_tiny_w192]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency_kinds_measure import drop_blocks, drop_heads, halve_mlp, thin_expansion

SHAPE = (1, 28, 28)
RATE = 0.5


def masked(model: nn.Module, sparsity: float) -> nn.Module:
    """`sparsity` of every conv and linear weight zeroed by magnitude (L1), folded in."""
    model = copy.deepcopy(model)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            torch_prune.l1_unstructured(m, "weight", sparsity)
            torch_prune.remove(m, "weight")
    return model.eval()


def families(only: str) -> dict[str, tuple[nn.Module, dict[str, nn.Module]]]:
    from benchsuite.models import build_model

    def build(name: str) -> nn.Module:
        torch.manual_seed(0)
        return build_model(name, 10, 1).eval()

    out: dict[str, tuple[nn.Module, dict[str, nn.Module]]] = {}
    for family in ("resnet20", "mobilenetv2", "vit_tiny", "vit_tiny_w192"):
        if only and family not in only.split(","):
            continue
        dense = build(family)
        versions = {"element-wise 50 %": masked(dense, 0.5),
                    "element-wise 90 %": masked(dense, 0.9)}
        if family == "resnet20":
            versions |= {"width 0.5 (filters 50 %, thinned)": build("resnet20_half"),
                         "one block per stage removed": build("resnet14")}
        elif family == "mobilenetv2":
            versions |= {"expansion channels -60 %": thin_expansion(dense, 0.6),
                         "width 0.5": build("mobilenetv2_050")}
        else:
            versions |= {"heads 3 -> 2": drop_heads(dense, 2), "MLP width halved":
                         halve_mlp(dense), "2 of 6 blocks removed": drop_blocks(dense, 2)}
        out[family] = (dense, versions)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="paired rounds' time cap")
    ap.add_argument("--workdir", default="/tmp/paradigm-latency")
    ap.add_argument("--only", default="", help="families, comma-separated")
    ap.add_argument("--precisions", default="f32,bf16,int8,sparse")
    ap.add_argument("--out", default=None, help="CSV of the figures")
    args = ap.parse_args(argv)
    import openvino as ov

    from benchsuite.bench.devices import device_name
    from benchsuite.bench.int8 import int8_layers, quantize_ir
    from benchsuite.bench.ir import onnx_to_ir
    from benchsuite.bench.paired import PairedSettings, measure_paired
    from benchsuite.export.onnx import export_onnx

    work = Path(args.workdir)
    calibration = np.random.default_rng(0).standard_normal((64, *SHAPE)).astype(np.float32)
    kinds = args.precisions.split(",")
    rows: list[dict] = []
    print(f"OpenVINO {ov.get_version()}; {device_name('CPU')}; input 1x{'x'.join(map(str, SHAPE))}"
          "; batch 1, 1 thread, 1 stream; paired in-process rounds", flush=True)

    def measure(family: str, version: str, kind: str, models: dict[str, Path],
                precision: str, rate: float | None = None, note: str = "") -> None:
        settings = PairedSettings(threads=1, streams=1, precision=precision,
                                  max_seconds=args.seconds, sparse_weights_rate=rate)
        res = measure_paired(models, settings)
        ref, other = list(models)
        row = {"family": family, "version": version, "kind": kind, "speedup": res.speedup,
               "ci_low": res.ci_low, "ci_high": res.ci_high,
               "reference_us": res.latency_median_us[ref], "us": res.latency_median_us[other],
               "precision": res.conditions["precision"], "rate": rate, "note": note,
               "cpu_share": res.conditions["cpu_share"], "rounds": res.rounds,
               "preempted": res.conditions["rounds_preempted"], "converged": res.converged}
        rows.append(row)
        print(f"{family:14s} {version:34s} {kind:12s} {res.speedup:6.3f}x [{res.ci_low:.3f}, "
              f"{res.ci_high:.3f}]  {row['reference_us']:8.1f} -> {row['us']:8.1f} µs"
              f"  share {row['cpu_share']:.2f}{'  ' + note if note else ''}", flush=True)

    for family, (dense, versions) in families(args.only).items():
        def ir(model: nn.Module, name: str, family: str = family) -> Path:
            slug = "".join(c if c.isalnum() else "_" for c in name)
            onnx = export_onnx(model, SHAPE, work / family / slug / "model.onnx")
            return onnx_to_ir(onnx, work / family / slug / "model.xml", SHAPE)

        def int8(xml: Path) -> Path:
            if not (q := xml.parent / "int8" / "model.xml").exists():
                quantize_ir(xml, calibration, q)
            return q

        t0 = time.time()
        dense_xml = ir(dense, "dense")
        irs = {v: ir(m, v) for v, m in versions.items()}
        for version, xml in irs.items():
            pair = {"dense": dense_xml, "version": xml}
            for precision in ("f32", "bf16"):
                if precision in kinds:
                    measure(family, version, precision, pair, precision)
            if "int8" in kinds:
                measure(family, version, "int8", {"dense": dense_xml, "version": int8(xml)},
                        "f32", note="INT8 against dense at f32")
        if "int8" in kinds:
            measure(family, "dense", "int8", {"dense": dense_xml, "version": int8(dense_xml)},
                    "f32", note="INT8 against dense at f32")
        if "sparse" in kinds:
            for version, xml in irs.items():
                if not version.startswith("element-wise"):
                    continue
                pair = {"dense int8": int8(dense_xml), "masked int8": int8(xml)}
                layers = int8_layers(pair["masked int8"], sparse_weights_rate=RATE)
                note = (f"{layers.sparse}/{layers.fully_connected} fc layers sparse kernels")
                measure(family, version, "int8 vs int8", pair, "f32", note="no rate")
                measure(family, version, f"int8 rate {RATE:g}", pair, "f32", rate=RATE,
                        note=note)
        print(f"{family}: {time.time() - t0:.0f} s", flush=True)
    if args.out:
        import pandas as pd

        pd.DataFrame(rows).to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
