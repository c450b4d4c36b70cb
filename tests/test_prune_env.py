"""The train and prune stages run in the prune worker's own env (torch, no openvino, no pandas:
the tox env `prune`, which CI builds). A bench-side module the train stage reaches once imported
pandas through `benchsuite.bench`'s package init, and every Redis case failed in that env."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from benchsuite.core.paths import project_root

TRAIN = """
import json, sys
from pathlib import Path
from benchsuite.pipeline.stages import train_stage
spec = {"model": "small_cnn", "dataset": "digits", "data_dir": None, "seed": 0, "epochs": 1}
out = train_stage(spec, {}, Path(sys.argv[1]))
print(json.dumps({"files": sorted(out.files), "top1": out.result["top1"],
                  "loaded": sorted(m for m in ("pandas", "openvino") if m in sys.modules)}))
"""


def test_the_train_stage_runs_in_the_prune_env(tmp_path: Path) -> None:
    python = project_root() / ".tox" / "prune" / "bin" / "python"
    if not python.is_file():
        pytest.skip("tox env 'prune' not built (tox -e prune --notest)")
    proc = subprocess.run(
        [str(python), "-c", TRAIN, str(tmp_path / "work")], capture_output=True, text=True,
        timeout=600, check=False,
        env={"PYTHONPATH": str(project_root()), "PATH": "/usr/bin:/bin",
             "BENCHSUITE_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"checkpoint", "onnx", "eval_data"} <= set(out["files"])
    assert out["loaded"] == []  # neither is installed there, nor needed
