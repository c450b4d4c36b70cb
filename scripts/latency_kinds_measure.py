"""Predicted against measured speed-up of the latency model beyond convolutions (issue 23): a
MobileNetV2 (convs, depthwise convs, the classifier) and the small ViT (patch conv, linear
layers, attention), each dense against a few thinned versions built directly (untrained
weights: an f32 CPU inference's time does not depend on their values). Per family the per-op
table is built (or extended) for the dense network (`bench/latency_table.build_table`), the
speed-up predicted from it (`predict_pair`, as the bench stage does) and measured with the
paired in-process rounds (`bench/paired.measure_paired`). Prints one line per version and the
median |error| per family; `--out` writes them as CSV. Beside the table as the suite reads it
(each grid the smallest monotone one above the measured points, `spec.monotone`) the
prediction is also read from the raw measured points (`raw`), which shows what the envelope adds.

    python scripts/latency_kinds_measure.py --out /tmp/kinds.csv
    python scripts/latency_kinds_measure.py --only mobilenetv2 --input 1x28x28   # Fashion-MNIST
"""

from __future__ import annotations

import argparse
import copy
import re
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

from benchsuite.frontends.cli import input_shape


def thin_expansion(model: nn.Module, sparsity: float, step: int = 8) -> nn.Module:
    """A MobileNetV2 with `sparsity` of every block's expansion channels removed (kept counts
    rounded to multiples of `step`): expansion conv, depthwise conv and projection input."""
    from benchsuite.models.mobilenetv2 import InvertedResidual

    model = copy.deepcopy(model)
    for m in model.modules():
        if not isinstance(m, InvertedResidual) or isinstance(m.conv[0], nn.Identity):
            continue
        expand, dw, project = m.conv[0][0], m.conv[1][0], m.conv[2][0]
        keep = max(step, round(expand.out_channels * (1 - sparsity) / step) * step)
        m.conv[0][0] = nn.Conv2d(expand.in_channels, keep, 1, bias=False)
        m.conv[0][1] = nn.BatchNorm2d(keep)
        m.conv[1][0] = nn.Conv2d(keep, keep, 3, dw.stride, 1, groups=keep, bias=False)
        m.conv[1][1] = nn.BatchNorm2d(keep)
        m.conv[2][0] = nn.Conv2d(keep, project.out_channels, 1, bias=False)
    return model.eval()


def drop_heads(model: nn.Module, keep: int) -> nn.Module:
    """A ViT with `keep` heads in every block (what AttentionHeadPruner leaves)."""
    model = copy.deepcopy(model)
    for block in model.blocks:
        attn = block.attn
        dim = attn.proj.out_features
        attn.qkv = nn.Linear(dim, 3 * keep * attn.head_dim)
        attn.proj = nn.Linear(keep * attn.head_dim, dim)
    return model.eval()


def halve_mlp(model: nn.Module) -> nn.Module:
    model = copy.deepcopy(model)
    for block in model.blocks:
        hidden = block.mlp.fc1.out_features // 2
        block.mlp.fc1 = nn.Linear(block.mlp.fc1.in_features, hidden)
        block.mlp.fc2 = nn.Linear(hidden, block.mlp.fc2.out_features)
    return model.eval()


def drop_blocks(model: nn.Module, n: int) -> nn.Module:
    model = copy.deepcopy(model)
    model.blocks = nn.Sequential(*list(model.blocks)[:len(model.blocks) - n])
    return model.eval()


def drop_resnet_blocks(model: nn.Module, names: list[str]) -> nn.Module:
    """A CIFAR ResNet with the named residual blocks bypassed (what BlockRemover leaves)."""
    from benchsuite.models.blocks import bypass

    model = copy.deepcopy(model)
    for name in names:
        bypass(model, name)
    return model.eval()


def families(channels: int) -> dict[str, tuple[nn.Module, dict[str, nn.Module]]]:
    from benchsuite.models import build_model
    from benchsuite.prune.budget_units import thinned

    torch.manual_seed(0)
    mnv2 = build_model("mobilenetv2", 10, channels).eval()
    vit = build_model("vit_tiny", 10, channels).eval()
    resnet = build_model("resnet20", 10, channels).eval()
    x = torch.zeros(1, channels, 28, 28)
    return {
        "resnet20": (resnet, {
            "inner widths halved, step 8 (calibration_net)": thinned(resnet, x, 8),
            "inner widths -75 %, step 8": thinned(resnet, x, 8, keep=0.25),
            "inner widths -25 %, step 8": thinned(resnet, x, 8, keep=0.75),
            "a block per stage removed": drop_resnet_blocks(
                resnet, ["layer1.1", "layer2.1", "layer3.1"]),
            "resnet20_half (every width halved)": build_model("resnet20_half", 10,
                                                              channels).eval(),
        }),
        "mobilenetv2": (mnv2, {
            "expansion channels -30 %": thin_expansion(mnv2, 0.3),
            "expansion channels -60 %": thin_expansion(mnv2, 0.6),
            "expansion channels -60 %, round_to 16": thin_expansion(mnv2, 0.6, step=16),
            "width 0.5": build_model("mobilenetv2_050", 10, channels).eval(),
            "inner widths halved, step 32 (calibration_net)": thinned(mnv2, x, 32),
        }),
        "vit_tiny": (vit, {
            "heads 3 -> 2": drop_heads(vit, 2),
            "heads 3 -> 1": drop_heads(vit, 1),
            "MLP width halved": halve_mlp(vit),
            "2 blocks removed": drop_blocks(vit, 2),
        }),
    }


def per_op_lines(rows: list[dict]) -> list[str]:
    """The per-op cost (`latency.spec.fit_per_op`) fitted on each version in turn, and the
    other versions' speed-ups predicted with it: what a table built with that version as its
    calibration network would have predicted."""
    import statistics

    from benchsuite.latency.spec import fit_per_op

    out = []
    for family in dict.fromkeys(r["family"] for r in rows):
        fam = [r for r in rows if r["family"] == family]
        for cal in fam:
            try:
                c = fit_per_op(cal["dense_table_sum_us"], cal["dense_ops"], cal["table_sum_us"],
                               cal["ops"], 1 / cal["speedup"])
            except ValueError:
                continue
            errs = []
            for r in fam:
                if r is cal:
                    continue
                pred = ((r["dense_table_sum_us"] + c * r["dense_ops"])
                        / (r["table_sum_us"] + c * r["ops"]))
                errs.append(pred / r["speedup"] - 1)
                out.append(f"  {family} per-op {c:.2f} µs (from {cal['version']}): "
                           f"{r['version']} predicted {pred:.3f}x ({errs[-1]:+.1%})")
            out.append(f"{family}: per-op cost {c:.2f} µs fitted on {cal['version']}: median "
                       f"|error| of the others {statistics.median(map(abs, errs)):.1%}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--step", type=int, default=32, help="the table's channel grid step")
    ap.add_argument("--seconds", type=float, default=20.0, help="paired rounds' time cap")
    ap.add_argument("--precision", default="f32", help="inference precision: f32, bf16")
    ap.add_argument("--workdir", default="/tmp/latency-kinds")
    ap.add_argument("--tables", default=None, help="table cache folder [the suite's cache]")
    ap.add_argument("--only", default="", help="one family")
    ap.add_argument("--input", type=input_shape, default=(3, 32, 32), metavar="CxHxW",
                    help="one sample's shape")
    ap.add_argument("--out", default=None, help="CSV of the per-version figures")
    ap.add_argument("--pruned", action="append", default=[], metavar="LABEL=ONNX",
                    help="another version of --only's network (e.g. a case's pruned.onnx)")
    args = ap.parse_args(argv)
    import openvino as ov

    from benchsuite.bench.ir import onnx_to_ir
    from benchsuite.bench.latency_table import (
        UNIT_SETTINGS,
        build_table,
        load_table,
        ops_from_ir,
        predict_pair,
    )
    from benchsuite.bench.paired import PairedSettings, measure_paired
    from benchsuite.export.onnx import export_onnx
    from benchsuite.latency.spec import LatencyTable

    work = Path(args.workdir)
    shape = args.input
    unit = PairedSettings(threads=1, streams=1, precision=args.precision, **UNIT_SETTINGS)
    paired = PairedSettings(threads=1, streams=1, precision=args.precision,
                            max_seconds=args.seconds)
    rows = []
    print(f"OpenVINO {ov.get_version()}; {args.precision}; step {args.step}; input "
          f"1x{'x'.join(map(str, shape))}", flush=True)
    extra = dict(p.split("=", 1) for p in args.pruned)
    if extra and not args.only:
        ap.error("--pruned needs --only (the family its versions belong to)")
    for family, (dense, versions) in families(shape[0]).items():
        if args.only and family != args.only:
            continue
        versions = versions | {label: Path(onnx) for label, onnx in extra.items()}

        def ir(model: nn.Module, name: str, family: str = family) -> Path:
            onnx = export_onnx(model, shape, work / family / f"{name}.onnx")
            return onnx_to_ir(onnx, work / family / f"{name}.xml", shape)

        dense_xml = ir(dense, "dense")
        t0 = time.time()
        table = build_table(dense_xml, family, args.step, unit,
                            folder=Path(args.tables) if args.tables else None,
                            workdir=work / "units", progress=lambda m: print(m, flush=True))
        net = table.networks[family]
        one = table.to_dict() | {"networks": {family: net}}
        dense_ops = ops_from_ir(dense_xml)
        by_kind = {k: table.sum_us([o for o in dense_ops if o.kind == k]) for k in table.kinds}
        print(f"{family}: table {time.time() - t0:.0f} s, {len(table.entries)} geometries; dense "
              f"measured {net['measured_us']:.1f} µs, table sum {net['sum_us']:.1f} µs "
              f"(" + ", ".join(f"{k} {v:.1f}" for k, v in by_kind.items() if v) + f"), scale "
              f"{table.scale(family):.3f}", flush=True)
        convs_only = LatencyTable.from_dict(one | {"kinds": ["conv"]})
        raw = load_table(unit, args.step, Path(args.tables) if args.tables else None,
                         envelope=False)
        for label, model in versions.items():
            name = re.sub(r"[^A-Za-z0-9]+", "_", label)
            pruned_xml = (onnx_to_ir(model, work / family / f"{name}.xml", shape)
                          if isinstance(model, Path) else ir(model, name))
            pruned_ops = ops_from_ir(pruned_xml)
            models = {"dense": dense_xml, "pruned": pruned_xml}
            pred = predict_pair(models, one, None)
            conv_pred = convs_only.sum_us(dense_ops) / convs_only.sum_us(ops_from_ir(pruned_xml))
            raw_pred = raw.sum_us(dense_ops) / raw.sum_us(ops_from_ir(pruned_xml))
            res = measure_paired(models, paired)
            row = {"family": family, "version": label, "speedup": res.speedup,
                   "ci_low": res.ci_low, "ci_high": res.ci_high,
                   "speedup_predicted": pred["speedup_predicted"],
                   "err": pred["speedup_predicted"] / res.speedup - 1,
                   "speedup_predicted_convs_only": conv_pred,
                   "err_convs_only": conv_pred / res.speedup - 1,
                   "speedup_predicted_raw": raw_pred, "err_raw": raw_pred / res.speedup - 1,
                   "dense_us": res.latency_median_us["dense"],
                   "pruned_us": res.latency_median_us["pruned"],
                   "cpu_share": res.conditions["cpu_share"],
                   "rounds_preempted": res.conditions["rounds_preempted"], "rounds": res.rounds,
                   "table_sum_us": table.sum_us(pruned_ops),
                   "ops": len(table.modelled(pruned_ops)),
                   "dense_table_sum_us": table.sum_us(dense_ops),
                   "dense_ops": len(table.modelled(dense_ops))}
            rows.append(row)
            print(f"{family} {label:26s} measured {res.speedup:.3f}x [{res.ci_low:.3f}, "
                  f"{res.ci_high:.3f}] predicted {row['speedup_predicted']:.3f}x "
                  f"({row['err']:+.1%}); convs only {conv_pred:.3f}x ({row['err_convs_only']:+.1%})"
                  f"; raw points {raw_pred:.3f}x ({row['err_raw']:+.1%})"
                  f"; CPU share {row['cpu_share']:.2f}, {row['rounds_preempted']} rounds "
                  f"preempted, {res.rounds} used", flush=True)
    for family in dict.fromkeys(r["family"] for r in rows):
        errs = [abs(r["err"]) for r in rows if r["family"] == family]
        conv = [abs(r["err_convs_only"]) for r in rows if r["family"] == family]
        raw_errs = [abs(r["err_raw"]) for r in rows if r["family"] == family]
        print(f"{family}: median |error| of the predicted speed-up {statistics.median(errs):.1%} "
              f"over {len(errs)} versions (convs only: {statistics.median(conv):.1%}; raw "
              f"points: {statistics.median(raw_errs):.1%})")
    for line in per_op_lines(rows):
        print(line)
    if args.out:
        import pandas as pd

        pd.DataFrame(rows).to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
