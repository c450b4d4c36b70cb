"""bayes vs random at equal budget, on a surrogate objective (a table of "measured" cases)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from toy_recipes import toy_sweep

from benchsuite.core.threshold import Threshold
from benchsuite.frontends.sweep_bench_cli import main
from benchsuite.sweep import load_sweep
from benchsuite.sweep.search import TableObjective, best_curve, compare, space_points, within

RECIPE = "version: 1\npruners:\n  p: {class: L1RankedStructureParameterPruner, group_type: " \
         "Filters, desired_sparsity: '${sparsity=0.5}', round_to: '${round_to=1}', " \
         "weights: [conv1.weight]}\npolicies:\n  - pruner: {instance_name: p}\n    epochs: [0]\n"


@pytest.fixture
def surrogate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    spec = toy_sweep(tmp_path, monkeypatch, RECIPE.replace("'", ""), {
        "sparsity": {"distribution": "q_uniform", "min": 0.1, "max": 0.9, "q": 0.05},
        "round_to": {"values": [1, 8]}, "accuracy_threshold": {"value": 0.85}})
    sweep = tmp_path / "toy_sweep.yaml"
    rows = []
    for point in space_points(spec):  # speed-up grows, Top-1 falls with sparsity
        s, r = point["sparsity"], point["round_to"]
        rows.append({"sweep_params": json.dumps(point), "recipe": "toy",
                     "speedup": 1 + 2 * s + (0.2 if r == 8 else 0.0),
                     "top1": 0.99 - 0.3 * s * s - (0.01 if r == 8 else 0.0), "dense_top1": 0.99})
    table = tmp_path / "table.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    return sweep, table


def test_table_objective_and_curves(surrogate):
    sweep, table = surrogate
    spec = load_sweep(sweep)
    objective = TableObjective(spec, table, Threshold.parse("-1pt"))
    value, feasible, metrics = objective({"recipe": "toy", "sparsity": 0.5, "round_to": 8,
                                          "accuracy_threshold": 0.85})
    assert value == pytest.approx(2.2) and feasible and metrics["threshold"] == 0.85
    assert not objective({"recipe": "toy", "sparsity": 0.9, "round_to": 1,
                          "accuracy_threshold": 0.85})[1]
    curve = best_curve([(1.5, True), (3.0, False), (2.0, True), (2.05, True)], "maximize")
    assert curve == [1.5, 1.5, 2.0, 2.05] and within(curve, "maximize") == 3
    assert math.isnan(best_curve([(1.0, False)], "maximize")[0])


def test_bayes_vs_random_same_budget_and_seeds(surrogate, tmp_path: Path, capsys):
    sweep, table = surrogate
    spec = load_sweep(sweep)
    objective = TableObjective(spec, table, Threshold.parse("-1pt"))
    results = compare(spec, objective, budget=8, seeds=(0, 1), checkpoints=(4, 8))
    true_best = 1 + 2 * 0.65 + 0.2  # the largest feasible sparsity, round_to 8
    for method in ("bayes", "random"):
        r = results["methods"][method]
        assert len(r["final_best"]) == 2 and set(r["mean_best_at"]) == {4, 8}
        assert all(v <= true_best + 1e-9 for v in r["final_best"])
    again = compare(spec, objective, budget=8, seeds=(0, 1), checkpoints=(4, 8))
    assert again == results  # seeded: reproducible
    out = tmp_path / "bench.json"
    assert main(["compare", "--sweep", str(sweep), "--table", str(table), "--budget", "6",
                 "--seeds", "0", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "bayes" in printed and json.loads(out.read_text())["budget"] == 6
    # every trial is shown as it ends and kept in the JSON, with its parameters
    assert "[bayes seed 0 6/6; 6/12]" in printed and "[random seed 0 1/6; 7/12]" in printed
    kept = json.loads(out.read_text())["trials"]
    assert [len(kept[m][0]) for m in ("bayes", "random")] == [6, 6]
    assert set(kept["bayes"][0][0]) == {"params", "value", "feasible", "epochs"}
    seen = []
    results = compare(spec, objective, ("random",), budget=3, seeds=(1,),
                      on_trial=lambda *a: seen.append(a[:3]))
    assert seen == [("random", 1, 1), ("random", 1, 2), ("random", 1, 3)]
    trials = [(t["value"], t["feasible"]) for t in results["trials"]["random"][0]]
    assert best_curve(trials, "maximize")[-1] == results["methods"]["random"]["final_best"][0]
