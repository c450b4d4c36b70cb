"""Cross-check of a speed-up on the latency table's clock: dense and pruned IRs timed in paired
random-order rounds in CPU time per inference (benchsuite/bench/cpu_rounds.py), 1 thread, f32.
On an oversubscribed machine the wall-clock paired speed-up of a long dense round against a short
pruned one is biased (the longer round is preempted more); CPU time is not.
Usage: cpu_clock_check.py BENCH_WORKDIR [...] (folders holding dense/model.xml, pruned/model.xml)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from benchsuite.bench.paired import PairedSettings, cpu_paired, ratio_estimate


def main(folders: list[str]) -> int:
    settings = PairedSettings(round_size=10, warmup=20, min_rounds=20, max_seconds=15,
                              target_halfwidth=0.01)
    for folder in map(Path, folders):
        res = cpu_paired({"dense": folder / "dense" / "model.xml",
                          "pruned": folder / "pruned" / "model.xml"}, settings)
        cpu, per = res["cpu_us"], res["round_cpu_us"]
        logs = list(np.log(np.divide(per["dense"], per["pruned"])))
        mid, low, high = ratio_estimate(logs, settings)
        print(f"{folder}: dense {cpu['dense']:.1f} µs, pruned {cpu['pruned']:.1f} µs (CPU time per "
              f"inference), speed-up {mid:.2f}x [{low:.2f}, {high:.2f}] (median of per-round "
              f"ratios, bootstrap 95 %); {res['rounds']} rounds, "
              f"CPU share {res['cpu_share']:.2f}, {res['precision']}, threads {res['threads']}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
