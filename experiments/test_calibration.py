"""Is the speed-up measurement itself trustworthy on this machine? `pytest -m benchmark`.

A benchmark, not a CI test: it asserts what the method promises, on a real ResNet-20 pair
(dense vs 50 % L1 filters removed, random weights; latency does not depend on weight values):

- A/A: the dense model against itself reads 1.00x within 2 %;
- repeatability: the same pair measured in 3 separate processes agrees within 2 % (max/min);
- tightness: each interval's half-width is at most 2 % of its estimate.

Run it on the machine whose figures you want to trust, idle and with load beside it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchsuite.bench.paired import PairedSettings, measure_paired

pytestmark = pytest.mark.benchmark

MEASURE = """
import json, sys
from pathlib import Path
from benchsuite.bench.paired import measure_paired
r = measure_paired({"dense": Path(sys.argv[1]), "pruned": Path(sys.argv[2])})
print(json.dumps({"speedup": r.speedup, "low": r.ci_low, "high": r.ci_high, "rounds": r.rounds}))
"""


@pytest.fixture(scope="module")
def resnet20_pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("torch_pruning", reason="building the pair needs the prune side (torch)")
    from studies.resnet_report import build_variants

    variants = build_variants(20, tmp_path_factory.mktemp("r20"), (1, 32, 32))
    return {"dense": variants["dense"]["xml"], "pruned": variants["filters50"]["xml"]}


def test_a_a_within_two_percent(resnet20_pair: dict[str, Path]) -> None:
    dense = resnet20_pair["dense"]
    result = measure_paired({"a": dense, "b": dense}, PairedSettings())
    print(f"A/A {result.speedup:.4f}x [{result.ci_low:.4f}, {result.ci_high:.4f}], "
          f"{result.rounds} rounds, {result.seconds:.1f} s")
    assert abs(result.speedup - 1) <= 0.02
    assert result.halfwidth <= 0.02


def test_speedup_repeats_across_processes(resnet20_pair: dict[str, Path]) -> None:
    runs = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", MEASURE, str(resnet20_pair["dense"]),
                              str(resnet20_pair["pruned"])], capture_output=True, text=True,
                             check=True, timeout=300)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    speedups = [r["speedup"] for r in runs]
    print("speed-ups:", ", ".join(f"{r['speedup']:.3f}x [{r['low']:.3f}, {r['high']:.3f}]"
                                  for r in runs))
    assert max(speedups) / min(speedups) <= 1.02
    assert all((r["high"] - r["low"]) / 2 / r["speedup"] <= 0.02 for r in runs)
