"""`benchsuite frontier` (issue 19): each method beside its controls through the real pipeline,
the budget and search methods, engines compared on a common target, the found point confirmed at
every seed before it is saved."""

from __future__ import annotations

import pytest

from benchsuite.core.result import CaseResult
from benchsuite.core.threshold import Threshold
from benchsuite.recipe.case import Case


def test_the_frontier_runs_a_method_and_its_scratch_control_through_the_pipeline(tmp_path):
    """A real (tiny) frontier: the peer at one ratio, then its point again as the scratch
    control; both rows come from real training and a real paired measurement."""
    from benchsuite.pipeline.executor import LocalExecutor
    from benchsuite.sweep.frontier import Frontier
    from benchsuite.sweep.frontier_report import table

    base = Case(recipe="", model="small_cnn", dataset="digits", dense_epochs=3, epochs=1,
                train_images=None, niter=50, bench_seconds=2.0)
    said: list[str] = []
    frontier = Frontier(base, Threshold.parse("0"), LocalExecutor(tmp_path), say=said.append)
    point = frontier.uniform(0, "f32", [0.5])
    assert point.case.params == {"ratio": 0.5, "round_to": 8}
    assert point.row.case_id == point.case.case_id  # the row is the chosen case's
    assert point.row.val_top1 is not None and point.row.speedup > 0
    scratch = frontier.follow(point, "scratch", control="scratch")
    assert scratch.case.control == "scratch" and scratch.case.params == point.case.params
    assert scratch.row.scratch_epochs == 3 + 1 and 0 <= scratch.row.scratch_top1 <= 1
    text = "\n".join(table(frontier.points, frontier.threshold))
    assert "| uniform | f32 | 1/1 |" in text and "| scratch | f32 |" in text


def test_the_int8_point_carries_its_scratch_control_quantized_and_f32_reuses_the_models(
        tmp_path, monkeypatch):
    """`frontier --int8` with scratch: the int8 case trains the scratch control in its prune
    stage and the bench stage quantizes and scores it as deployed, like the pruned model; the
    f32 scratch case then takes both models from the worker's prune cache (no second training)
    and scores the scratch model at f32."""
    from benchsuite.core.paths import cache_dir
    from benchsuite.pipeline.executor import LocalExecutor
    from benchsuite.sweep.frontier import Frontier
    from benchsuite.sweep.frontier_report import margins, table

    monkeypatch.setenv("BENCHSUITE_CACHE", str(tmp_path / "cache"))
    base = Case(recipe="", model="small_cnn", dataset="digits", dense_epochs=3, epochs=1,
                train_images=None, niter=50, bench_seconds=2.0)
    frontier = Frontier(base, Threshold.parse("-100pt"), LocalExecutor(tmp_path),
                        say=lambda _m: None)
    point = frontier.uniform(0, "f32", [0.5])
    int8 = frontier.int8(point, scratch=True).row
    assert int8.precision == "int8" and "NNCF" in int8.quantization
    # the scratch model deployed in INT8, beside torch's figure of the same trained model
    assert abs(int8.scratch_top1 - int8.scratch_top1_torch) < 0.05
    entries = sorted(p.name for p in (cache_dir() / "pruned").iterdir() if p.is_dir())
    f32 = frontier.follow(point, "scratch", control="scratch").row
    assert sorted(p.name for p in (cache_dir() / "pruned").iterdir() if p.is_dir()) == entries
    assert f32.scratch_top1_torch == int8.scratch_top1_torch  # the same model, from the cache
    assert f32.scratch_seconds == int8.scratch_seconds and f32.pruned_cached
    assert not int8.pruned_cached and frontier.points[-1].epochs == 0  # nothing fine-tuned
    assert abs(f32.scratch_top1 - f32.scratch_top1_torch) <= 0.005  # OpenVINO f32 vs torch
    text = "\n".join(table(frontier.points, frontier.threshold))
    assert "| scratch | int8 | 1/1 |" in text and "| scratch | f32 | 1/1 |" in text, text
    lines = "\n".join(margins(frontier.points))
    gap = (int8.top1 - int8.scratch_top1) * 100
    assert f"scratch (int8, seed 0): pruned {gap:+.2f} pt over the same architecture trained " \
           "from scratch (deployed)" in lines, lines


def test_the_frontier_puts_each_point_beside_the_dense_zoo_and_scratch():
    from benchsuite.sweep.frontier import Point
    from benchsuite.sweep.frontier_report import margins

    def point(method, seed, **kw):
        return Point(method, seed, "f32", CaseResult(**kw), None, 1, 0)

    lines = "\n".join(margins([
        point("search", 0, speedup=2.69, passed=False),
        point("zoo", 0, speedup=3.17, passed=True, control="zoo:resnet14_half"),
        point("search", 1, speedup=3.3, passed=True),
        point("zoo", 1, speedup=3.0, passed=True, control="zoo:resnet8"),
        point("scratch", 0, speedup=2.67, top1=0.913, top1_torch=0.913, scratch_top1=0.9187)]))
    assert "margin 0.85, the dense network is as fast or faster" in lines
    assert "seed 1): 3.30x (holds on test)" in lines and "margin 1.10\n" in lines
    assert "mean margin over the dense zoo 0.97 over 2 seeds" in lines
    assert "pruned -0.57 pt over the same architecture" in lines


def test_the_int8_point_is_put_beside_the_dense_zoo_in_int8_not_at_f32():
    from benchsuite.sweep.frontier import Point
    from benchsuite.sweep.frontier_report import margins

    def point(method, precision, **kw):
        return Point(method, 0, precision, CaseResult(**kw), None, 1, 0)

    lines = "\n".join(margins([
        point("int8", "int8", speedup=3.5, passed=True),
        point("zoo", "f32", speedup=3.2, passed=True, control="zoo:mobilenetv2_035"),
        point("zoo", "int8", speedup=5.0, passed=True, control="zoo:mobilenetv2_035")]))
    assert ("int8 (int8, seed 0): 3.50x (holds on test) against the dense zoo's "
            "mobilenetv2_035 5.00x (holds on test): margin 0.70") in lines
    assert "3.20x" not in lines


def test_with_int8_the_frontier_quantizes_the_dense_zoo_too(tmp_path, monkeypatch):
    """`benchsuite frontier --int8`: the zoo's network also in INT8 (NNCF) against dense at f32,
    through the real pipeline (a zoo of one network on digits)."""
    import pandas as pd

    from benchsuite.frontends.frontier_cli import main

    monkeypatch.setenv("BENCHSUITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("BENCHSUITE_RESULTS", str(tmp_path / "results"))
    out = tmp_path / "frontier.md"
    assert main(["--model", "small_cnn", "--dataset", "digits", "--seeds", "0", "--int8",
                 "--methods", "zoo,int8", "--zoo-models", "cnn2_bn", "--epochs", "1",
                 "--dense-epochs", "2", "--train-images", "all", "--threshold=-100pt",
                 "--out", str(out)]) == 0
    text = out.read_text()
    assert "| zoo | f32 | 1/1 |" in text and "| zoo | int8 | 1/1 |" in text, text
    rows = pd.read_csv(tmp_path / "results" / "results.csv")
    int8 = rows[rows["precision"] == "int8"]
    assert len(int8) == 1 and int8["control"].iloc[0] == "zoo:cnn2_bn"
    r = int8.iloc[0]
    assert "NNCF" in r["quantization"] and not r["int8_layers"].startswith("0/")
    assert "dense at f32" in r["speedup_method"] and r["speedup"] > 0


def test_the_frontier_budget_method_runs_the_latency_budget_recipe_at_each_target(tmp_path):
    """`budget`'s cases: the library's latency_budget recipe at each target speed-up, with the
    seed and precision of the frontier's row (the real runs: docs/measurements.md)."""
    from benchsuite.pipeline.executor import LocalExecutor
    from benchsuite.sweep.frontier import METHODS, Frontier

    assert "budget" in METHODS
    frontier = Frontier(Case(recipe="", model="resnet20"), Threshold.parse("-1pt"),
                        LocalExecutor(tmp_path))
    case = frontier._case("latency_budget", {"speedup": 2.0}, 1, "bf16")
    assert case.recipe_name == "latency_budget" and case.seed == 1 and case.precision == "bf16"
    assert case.latency_table_step() == 8  # the bench worker builds the table it needs
    assert "speedup: 2.0" in case.recipe_text()


def test_the_frontier_budget_method_prunes_mobilenetv2_in_groups_of_its_round_to(
        tmp_path, capsys):
    """MobileNetV2's budget cases pass the pre-flight check; --budget-round-to sets their
    channel group and the table's grid step; a group of 0 channels is refused before any work."""
    from benchsuite.frontends.frontier_cli import main
    from benchsuite.pipeline.executor import LocalExecutor
    from benchsuite.pipeline.run import validate
    from benchsuite.sweep.frontier import Frontier

    frontier = Frontier(Case(recipe="", model="mobilenetv2"), Threshold.parse("-1pt"),
                        LocalExecutor(tmp_path))
    case = frontier._case("latency_budget", {"speedup": 2.0, "round_to": 32}, 0, "f32")
    validate(case)  # raises a UserError when the recipe does not fit the model
    assert case.latency_table_step() == 32 and "round_to: 32" in case.recipe_text()
    with pytest.raises(SystemExit) as exc:
        main(["--model", "mobilenetv2", "--methods", "budget", "--budget-round-to", "0"])
    assert exc.value.code == 2 and "--budget-round-to" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["1", "x", "0.5,2"])
def test_the_frontier_refuses_budgets_that_are_no_speed_up(bad, capsys):
    from benchsuite.frontends.frontier_cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--methods", "budget", "--budget-speedups", bad])
    assert exc.value.code == 2 and "--budget-speedups" in capsys.readouterr().err


def test_the_frontier_says_before_any_work_when_the_budget_recipe_does_not_fit(capsys):
    from benchsuite.frontends.frontier_cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--model", "small_cnn", "--dataset", "digits", "--methods", "budget"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--methods budget:" in err and "without budget" in err


def test_the_search_curve_says_when_a_seed_has_no_feasible_point_yet():
    from benchsuite.sweep.frontier_report import search_lines

    # seed A feasible from trial 1; seed B infeasible at trial 1, then feasible
    runs = [[(1.39, True, 3), (1.2, True, 3)], [(2.4, False, 3), (1.31, True, 3)]]
    (line,) = search_lines({"bayes bf16": runs})
    assert "1.39 (1 of 2 seeds) 1.35;" in line, line


def test_engines_are_compared_on_the_best_point_any_of_them_found():
    """Bayes settling at once on a poor point is not "fast to converge": each seed's target is
    the best feasible point of either engine; epochs count up to the trial that reached it."""
    from benchsuite.sweep.frontier_report import reach_lines

    bayes = [[(1.5, True, 3), (1.5, True, 0), (1.6, True, 3)],  # seed 0: never near 2.0
             [(2.0, True, 3), (1.0, False, 2), (1.1, True, 3)]]  # seed 1: at once
    random = [[(1.2, True, 3), (2.0, True, 3), (1.0, True, 0)],
              [(1.9, True, 1), (1.0, True, 3), (1.0, True, 3)]]
    lines = reach_lines({"bayes bf16": bayes, "random bf16": random})
    assert lines[0].startswith("engines at bf16") and "(2.00, 2.00)" in lines[0], lines
    assert lines[1] == "  bayes: trials - 1; epochs - 3 (mean 1.0 trials over the 1 seed(s) " \
                       "that reached it)", lines
    assert lines[2].startswith("  random: trials 2 1; epochs 6 1 (mean 1.5"), lines
    # one engine alone has nothing to be compared with
    assert reach_lines({"bayes bf16": bayes}) == []


@pytest.mark.parametrize("argv, says", [
    (["--engines", "bayes,grid"], "--engines: unknown grid"),
    (["--engines", ","], "--engines: unknown none given"),
    (["--seeds", "0,one"], "--seeds: comma-separated integers expected"),
])
def test_the_frontier_refuses_bad_engines_and_seeds_before_any_work(argv, says, capsys):
    from benchsuite.frontends.frontier_cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--methods", "search", *argv])
    assert exc.value.code == 2 and says in capsys.readouterr().err


def test_a_found_point_is_saved_only_if_it_holds_at_every_seed(tmp_path, monkeypatch, capsys):
    """--save-found runs the fastest search point again at the other seeds (real training,
    real paired measurement) and saves it only if each seed's test verdict holds."""
    import argparse

    import benchsuite.core.paths
    from benchsuite.frontends.frontier_cli import _save_found
    from benchsuite.pipeline.executor import LocalExecutor
    from benchsuite.pipeline.grid import found_recipe_info
    from benchsuite.sweep.frontier import Frontier

    monkeypatch.setattr(benchsuite.core.paths, "found_dir", lambda: tmp_path / "found")
    base = Case(recipe="", model="small_cnn", dataset="digits", dense_epochs=2, epochs=1,
                train_images=None, niter=50, bench_seconds=2.0)
    frontier = Frontier(base, Threshold.parse("0.05"), LocalExecutor(tmp_path / "work"),
                        say=lambda m: None)
    point = frontier.uniform(0, "f32", [0.5])
    point.method = "search (random)"  # as the search's point, from whichever engine
    args = argparse.Namespace(precisions="f32", model="small_cnn", dataset="digits")
    _save_found(frontier, args, [0, 1])
    out = capsys.readouterr().out
    saved = tmp_path / "found" / "small_cnn-digits-frontier-f32.yaml"
    assert "confirming" in out and "at seeds 1" in out and f"saved {saved}" in out, out
    header = found_recipe_info(saved)
    per_seed = header["result"]["per_seed"]
    assert sorted(per_seed) == [0, 1] and all(r["passed"] for r in per_seed.values())
    assert per_seed[1]["top1"] != per_seed[0]["top1"] or per_seed[1]["speedup"] != \
        per_seed[0]["speedup"]  # seed 1 was measured, not copied
    saved.unlink()
    # a floor no digits network holds at seed 2: the verdict there fails, nothing is saved
    # (the candidate, this time, as the budget's point: a frontier without the search)
    frontier.threshold = Threshold.parse("0.9999")
    point.method = "budget"
    _save_found(frontier, args, [0, 2], leader="budget")
    out = capsys.readouterr().out
    assert "not saved (f32)" in out and "at seed(s) 2" in out and not saved.exists(), out
