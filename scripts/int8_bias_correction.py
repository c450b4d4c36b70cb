"""NNCF's fast vs full bias correction on a trained model: deployed Top-1 of f32, bf16 (where
the CPU has it) and both INT8s.

    python scripts/int8_bias_correction.py DENSE_DIR [DENSE_DIR ...]

DENSE_DIR: a cached dense model folder (`.cache/benchsuite/dense/<key>/`, holding model.onnx,
eval_data.npz and meta.json). Runs in the bench env (openvino, nncf, numpy). Prints one line per
model and variant: Top-1 [95 % Wilson interval] on the test split, quantization seconds.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchsuite.bench.accuracy import deployed_accuracy
from benchsuite.bench.devices import precision_skip_reason
from benchsuite.bench.evaldata import read_eval_data
from benchsuite.bench.ir import onnx_to_ir
from benchsuite.core.stats import wilson_interval


def _line(name: str, acc: dict, seconds: float | None = None) -> str:
    low, high = wilson_interval(acc["top1"], acc["test_images"])
    took = f", quantized in {seconds:.1f} s" if seconds is not None else ""
    return f"  {name:<22} Top-1 {acc['top1']:.4f} [{low:.3f}, {high:.3f}]{took}"


def main() -> None:
    import nncf
    import openvino as ov

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dense_dirs", nargs="+", type=Path)
    args = parser.parse_args()
    for folder in args.dense_dirs:
        meta = json.loads((folder / "meta.json").read_text())
        data = read_eval_data(folder / "eval_data.npz")
        with tempfile.TemporaryDirectory() as tmp:
            ir = onnx_to_ir(folder / "model.onnx", Path(tmp) / "f32.xml",
                            tuple(meta["input_shape"]))
            print(f"{folder.name}: torch Top-1 {meta['top1']:.4f}")
            print(_line("OpenVINO f32", deployed_accuracy(ir, data.x_test, data.y_test)))
            if precision_skip_reason("CPU", "bf16") is None:  # bf16 where the CPU has it
                print(_line("OpenVINO bf16", deployed_accuracy(ir, data.x_test, data.y_test,
                                                               precision="bf16")))
            samples = [x[None] for x in data.x_calib]
            for name, fast in (("INT8 fast bias corr.", True), ("INT8 full bias corr.", False)):
                t0 = time.perf_counter()
                q = nncf.quantize(ov.Core().read_model(str(ir)), nncf.Dataset(samples),
                                  subset_size=len(samples), target_device=nncf.TargetDevice.CPU,
                                  fast_bias_correction=fast)
                seconds = time.perf_counter() - t0
                out = Path(tmp) / f"{fast}.xml"
                ov.save_model(q, str(out))
                print(_line(name, deployed_accuracy(out, data.x_test, data.y_test), seconds))


if __name__ == "__main__":
    main()
