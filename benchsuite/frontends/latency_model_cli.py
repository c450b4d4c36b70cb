"""`benchsuite latency-model build|report`: the per-op latency table of a dense ONNX model
(`bench/latency_table.py`), and predicted against measured latency over the results table
(`track/latency_model.py`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchsuite.frontends.cli import HelpFormatter, input_shape


def _report(args: argparse.Namespace) -> int:
    from benchsuite.core.paths import results_dir
    from benchsuite.track.latency_model import counters_check, prediction_frame, summary_lines
    from benchsuite.track.results_table import read_results

    folder = Path(args.results) if args.results else results_dir()
    rows = read_results(folder)
    df = prediction_frame(rows)
    if not df.empty:
        df = counters_check(df, folder)
    for line in summary_lines(df, len(rows) - len(df)):
        print(line)
    if args.out and not df.empty:
        df.to_csv(args.out, index=False)
        print(f"table: {args.out}")
    return 0


def _build(args: argparse.Namespace) -> int:
    from benchsuite.bench.ir import onnx_to_ir
    from benchsuite.bench.latency_table import UNIT_SETTINGS, build_table, table_path
    from benchsuite.bench.paired import PairedSettings

    xml = onnx_to_ir(Path(args.onnx), Path(args.workdir) / "dense" / "model.xml", args.input)
    cal = None
    if args.calibration:
        cal = (onnx_to_ir(Path(args.calibration_dense or args.onnx),
                          Path(args.workdir) / "untrained" / "model.xml", args.input),
               onnx_to_ir(Path(args.calibration), Path(args.workdir) / "calibration" /
                          "model.xml", args.input))
    threads = None if args.threads == "default" else int(args.threads)
    settings = PairedSettings(device=args.device, precision=args.precision, threads=threads,
                              **UNIT_SETTINGS)
    table = build_table(xml, args.network, args.step, settings, workdir=Path(args.workdir),
                        progress=print, calibration=cal)
    net = table.networks[args.network]
    per_op = ""
    if "calibration" in net:
        c = net["calibration"]
        per_op = (f", per-op cost {net['per_op_us']:.2f} µs over {net['ops']} ops (the "
                  f"calibration network {c['speedup']:.3f}x [{c['ci_low']:.3f}, "
                  f"{c['ci_high']:.3f}] faster, table sum {c['sum_us']:.1f} µs)")
    print(f"table {table_path(settings, args.step)}: {len(table.entries)} geometries; "
          f"{args.network} measured {net['measured_us']:.1f} µs, table sum {net['sum_us']:.1f} "
          f"µs{per_op}, scale {table.scale(args.network):.3f} ({table.conditions})")
    return 0


def add_subcommand(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser("latency-model", help="per-op latency table; predicted vs measured")
    verbs = cmd.add_subparsers(dest="verb", required=True)
    report = verbs.add_parser("report", formatter_class=HelpFormatter,
                              help="predicted vs measured latency over the results "
                              "table (rows that have a prediction)")
    report.add_argument("--results", help="folder holding results.csv [experiments/results]")
    report.add_argument("--out", help="write the per-case comparison as CSV here")
    report.set_defaults(func=_report)
    build = verbs.add_parser("build", formatter_class=HelpFormatter,
                             help="measure (or extend) the table for a dense ONNX model")
    build.add_argument("--onnx", required=True, help="the dense model's ONNX file")
    build.add_argument("--input", required=True, type=input_shape, metavar="CxHxW",
                       help="one sample's shape, e.g. 1x32x32")
    build.add_argument("--network", required=True, help="name of the dense network (scale)")
    build.add_argument("--calibration", metavar="ONNX",
                       help="a narrower version of it with the same ops (what the suite's "
                       "calibration_net stage exports: its blocks' inner widths halved); its "
                       "speed-up over --calibration-dense fits the network's per-op cost")
    build.add_argument("--calibration-dense", metavar="ONNX",
                       help="the network with the calibration network's weights' origin (both "
                       "untrained from one initialisation: the weights' values move a latency "
                       "by a few %%) [--onnx]")
    build.add_argument("--step", type=int, default=8,
                       help="channel and feature grid step (round_to); heads: every count")
    build.add_argument("--device", default="CPU", help="the OpenVINO device")
    build.add_argument("--precision", default="f32", help="inference precision: f32, bf16, f16")
    build.add_argument("--threads", default="1", help="inference threads, or default")
    build.add_argument("--workdir", default="/tmp/benchsuite-latency-table",
                       help="where the per-op models are written")
    build.set_defaults(func=_build)
