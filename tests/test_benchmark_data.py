"""The headline data (Fashion-MNIST), the validation split, the controls beside a pruning result
(scratch, dense zoo) and the verdict machinery around them (issue 19)."""

from __future__ import annotations

import gzip
import json
import math
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from benchsuite.core.errors import UserError
from benchsuite.core.result import CaseResult
from benchsuite.core.threshold import Threshold
from benchsuite.data import holdout, load_case_data, load_dataset
from benchsuite.data.fashion_mnist import SYSTEM_DIR, find_fashion_mnist
from benchsuite.data.split import stratified_take
from benchsuite.recipe.case import Case, CaseError, check_settings

FASHION = pytest.mark.skipif(
    not (SYSTEM_DIR / "t10k-labels-idx1-ubyte.gz").is_file(),
    reason=f"Debian's dataset-fashion-mnist is not installed ({SYSTEM_DIR} missing)")


def _idx(path: Path, magic: int, array: np.ndarray, gz: bool = True) -> Path:
    raw = struct.pack(">i", magic) + b"".join(struct.pack(">i", d) for d in array.shape)
    raw += array.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(raw)
    return path


def _fake_fashion(folder: Path, n_train: int = 40, n_test: int = 20) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("t10k", n_test)):
        _idx(folder / f"{split}-images-idx3-ubyte.gz", 2051, rng.integers(0, 256, (n, 28, 28)))
        _idx(folder / f"{split}-labels-idx1-ubyte.gz", 2049, np.arange(n) % 10)
    return folder


@FASHION
def test_the_real_fashion_mnist_files_load_whole():
    data = load_dataset("fashion-mnist")
    assert data.x_train.shape == (60000, 1, 28, 28) and data.x_test.shape == (10000, 1, 28, 28)
    assert torch.bincount(data.y_test).tolist() == [1000] * 10  # balanced classes
    assert abs(float(data.x_train.mean())) < 1e-3 and abs(float(data.x_train.std()) - 1) < 1e-3


def test_a_folder_of_the_four_files_loads_and_standardises(tmp_path):
    data = load_dataset("fashion-mnist", data_dir=_fake_fashion(tmp_path / "fm"))
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10
    assert len(data.y_train) == 40 and len(data.y_test) == 20


@pytest.mark.parametrize("damage, message", [
    ("missing", "dataset-fashion-mnist"),
    ("magic", "not an idx file"),
    ("truncated", "truncated"),
    ("not gzip", "cannot be read"),
])
def test_a_missing_or_damaged_file_says_what_and_how(tmp_path, damage, message):
    folder = _fake_fashion(tmp_path / "fm")
    labels = folder / "train-labels-idx1-ubyte.gz"
    if damage == "missing":
        labels.unlink()
    elif damage == "magic":
        _idx(labels, 2051, np.arange(40) % 10)
    elif damage == "truncated":
        raw = gzip.decompress(labels.read_bytes())
        labels.write_bytes(gzip.compress(raw[:-5]))
    else:
        labels.write_bytes(b"not a gzip file")
    with pytest.raises(UserError, match=message):
        load_dataset("fashion-mnist", data_dir=folder)


def test_the_install_hint_names_the_package_and_the_option(tmp_path):
    with pytest.raises(UserError, match=r"apt-get install -y dataset-fashion-mnist.*--data-dir"):
        find_fashion_mnist(tmp_path / "nowhere")


def test_the_validation_split_is_stratified_disjoint_and_fixed_by_the_seed(digits):
    a = holdout(digits, 180, seed=0)
    again = holdout(digits, 180, seed=0)
    other = holdout(digits, 180, seed=1)
    assert a.val_images == 180 and len(a.y_train) == len(digits.y_train) - 180
    assert torch.equal(a.x_val, again.x_val) and not torch.equal(a.x_val, other.x_val)
    counts = torch.bincount(a.y_val, minlength=10)
    share = torch.bincount(digits.y_train, minlength=10) * 180 / len(digits.y_train)
    assert (counts - share).abs().max() < 1  # within one image of each class's share
    rows = {tuple(r.flatten().tolist()) for r in a.x_val}
    assert not any(tuple(r.flatten().tolist()) in rows for r in a.x_train)
    assert torch.equal(a.x_test, digits.x_test)  # the test split is untouched


def test_the_training_subset_is_a_cap_and_stratified(digits):
    small = holdout(digits, 180, seed=0, train_images=100)
    assert len(small.y_train) == 100 and torch.bincount(small.y_train).min() >= 9
    whole = holdout(digits, 180, seed=0, train_images=10**6)  # more than there are: all
    assert len(whole.y_train) == len(digits.y_train) - 180


def test_stratified_take_refuses_impossible_counts():
    with pytest.raises(ValueError, match="cannot take"):
        stratified_take(torch.arange(10) % 2, 10, seed=0)


def test_the_stages_train_on_the_rest_and_report_both_splits(tmp_path):
    from benchsuite.pipeline.stages import train_stage

    spec = {"model": "small_cnn", "dataset": "digits", "seed": 0, "epochs": 1,
            "train_images": 300}
    result = train_stage(spec, {}, tmp_path).result
    assert result["train_images"] == 300 and result["val_images"] == 180
    assert result["test_images"] == 899 and 0 <= result["val_top1"] <= 1
    data = load_case_data("digits", 0, train_images=300)
    assert len(data.y_train) == 300


def test_a_damaged_dense_cache_entry_is_quarantined_and_trained_again(tmp_path, caplog):
    from benchsuite.core.paths import cache_dir
    from benchsuite.pipeline.dense import dense_key, train_stage

    spec = {"model": "small_cnn", "dataset": "digits", "seed": 5, "epochs": 1}
    first = train_stage(spec, {}, tmp_path)
    assert not first.result["cached"]
    first.files["onnx"].write_bytes(b"")  # what a full disk left
    second = train_stage(spec, {}, tmp_path)
    assert not second.result["cached"]  # not taken as a hit
    assert first.files["onnx"].stat().st_size > 0
    aside = list((cache_dir() / "dense").glob(f"{dense_key(spec)}.damaged-*"))
    assert len(aside) == 1 and "damaged" in caplog.text
    assert train_stage(spec, {}, tmp_path).result["cached"]  # the rebuilt entry is a hit


def test_a_worker_killed_while_producing_leaves_nothing_behind(tmp_path):
    """A worker killed by a signal mid-entry (no Python cleanup runs) leaves its temporary
    folder; the next producer of the key removes it, and a hit never sees it."""
    import signal
    import subprocess
    import sys
    import textwrap
    import time

    from benchsuite.pipeline.folder_cache import cached_folder

    started = tmp_path / "started"
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import pathlib, time
        from benchsuite.pipeline.folder_cache import cached_folder
        def produce(tmp):
            (tmp / "a.bin").write_bytes(b"x" * 1000)
            pathlib.Path({str(started)!r}).touch()
            time.sleep(60)
            return {{}}
        cached_folder(pathlib.Path({str(tmp_path / "cache")!r}), "k", ("a.bin",), produce)
        """)])
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert child.poll() is None and time.monotonic() < deadline, "the child never started"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert len(list((tmp_path / "cache").glob(".k.*.tmp"))) == 1  # what the kill left

    def produce(tmp: Path) -> dict:
        (tmp / "a.bin").write_bytes(b"y")
        return {"n": 1}

    meta, files, hit = cached_folder(tmp_path / "cache", "k", ("a.bin",), produce)
    assert not hit and files["a.bin"].read_bytes() == b"y" and meta["n"] == 1
    assert list((tmp_path / "cache").glob(".k.*.tmp")) == []
    assert cached_folder(tmp_path / "cache", "k", ("a.bin",), produce)[2]


def test_nan_logits_are_an_error_that_says_so(digits):
    from benchsuite.models import build_model
    from benchsuite.pipeline.dense import scores

    model = build_model("small_cnn", 10, 1)
    with torch.no_grad():
        model.fc.weight.fill_(float("nan"))
    data = holdout(digits, 180, seed=0)
    with pytest.raises(UserError, match="NaN or infinite"):
        scores(model, data)


def test_reinitialise_keeps_shapes_and_masks_and_draws_new_weights():
    from benchsuite.models import build_model
    from benchsuite.pipeline.stages import reinitialise
    from benchsuite.prune.masks import set_mask

    model = build_model("small_cnn", 10, 1)
    mask = (torch.rand_like(model.conv2.weight) > 0.5).float()
    set_mask(model, "conv2.weight", mask)
    before = model.conv1.weight.detach().clone()
    reinitialise(model, seed=1)
    model(torch.zeros(1, 1, 32, 32))  # the mask is applied again on the forward
    assert model.conv1.weight.shape == before.shape and not torch.equal(model.conv1.weight,
                                                                         before)
    assert torch.all(model.conv2.weight[mask == 0] == 0)
    assert model.conv2.weight_orig.abs().sum() > 0


def test_the_scratch_control_trains_the_pruned_architecture_for_the_whole_budget(
        tmp_path, monkeypatch):
    from benchsuite.pipeline.stages import prune_stage, train_stage

    monkeypatch.setenv("BENCHSUITE_CACHE", str(tmp_path / "cache"))

    dense_spec = {"model": "small_cnn", "dataset": "digits", "seed": 0, "epochs": 1}
    dense = train_stage(dense_spec, {}, tmp_path)
    recipe = Case("tp_uniform", {"ratio": 0.5}).recipe_text()
    spec = dense_spec | {"epochs": 1, "recipe_text": recipe, "recipe_name": "tp_uniform",
                         "control": "scratch", "dense_epochs": 1}
    first = prune_stage(spec, {"checkpoint": dense.files["checkpoint"]}, tmp_path)
    result = first.result
    assert result["scratch_epochs"] == 2  # dense 1 + fine-tuning 1
    assert 0 <= result["scratch_top1"] <= 1 and result["scratch_seconds"] > 0
    # the scratch model goes to the bench stage too (scored as deployed), as an ONNX file
    assert first.files["scratch_onnx"].stat().st_size > 0 and not result["cached"]
    again = prune_stage(spec, {"checkpoint": dense.files["checkpoint"]}, tmp_path)
    assert again.result["cached"] and again.files == first.files
    assert again.result["scratch_top1"] == result["scratch_top1"]


def test_the_prune_stage_cache_keys_on_the_spec_and_the_input_files(tmp_path, monkeypatch):
    """Another recipe, another dense checkpoint: a miss; the same spec and files: a hit; a
    stage that fails leaves no entry."""
    from benchsuite.core.paths import cache_dir
    from benchsuite.pipeline.stages import prune_stage, pruned_key, train_stage

    monkeypatch.setenv("BENCHSUITE_CACHE", str(tmp_path / "cache"))
    dense_spec = {"model": "small_cnn", "dataset": "digits", "seed": 0, "epochs": 1}
    dense = train_stage(dense_spec, {}, tmp_path)
    other = train_stage(dense_spec | {"seed": 1}, {}, tmp_path)
    spec = dense_spec | {"epochs": 1, "recipe_text": Case("tp_uniform", {"ratio": 0.5})
                         .recipe_text(), "recipe_name": "tp_uniform"}
    files = {"checkpoint": dense.files["checkpoint"]}
    key = pruned_key(spec, files)
    assert key != pruned_key(spec, {"checkpoint": other.files["checkpoint"]})
    assert key != pruned_key(spec | {"recipe_text": Case("tp_uniform", {"ratio": 0.25})
                                     .recipe_text()}, files)
    assert not prune_stage(spec, files, tmp_path).result["cached"]
    assert prune_stage(spec, files, tmp_path).result["cached"]
    bad = spec | {"model": "cnn2_bn"}  # the checkpoint names another model: refused
    with pytest.raises(Exception, match="checkpoint is of model"):
        prune_stage(bad, files, tmp_path)
    assert not (cache_dir() / "pruned" / pruned_key(bad, files)).exists()


def test_zoo_cases_are_the_family_less_the_reference_timed_against_it():
    from benchsuite.models import DENSE_FAMILY
    from benchsuite.pipeline.grid import zoo_cases

    base = Case("l1_filters", {"sparsity": 0.5}, model="resnet20", seed=2)
    cases = zoo_cases([base, replace(base, params={"sparsity": 0.3})])
    assert [c.zoo_model for c in cases] == [m for m in DENSE_FAMILY if m != "resnet20"]
    assert all(c.model == "resnet20" and c.seed == 2 and c.recipe_name == "dense"
               for c in cases)
    assert cases[0].zoo_spec()["epochs"] == base.dense_epochs + base.epochs


@pytest.mark.parametrize("change, field", [
    ({"epochs": 0}, "epochs"), ({"dense_epochs": -1}, "dense_epochs"),
    ({"train_images": 0}, "train_images"), ({"control": "scratchy"}, "control"),
    ({"control": "zoo:"}, "control"), ({"control": "zoo:mymod:f"}, "control"),
])
def test_a_case_refuses_bad_settings_wherever_it_was_built(change, field):
    with pytest.raises(CaseError, match=field):
        check_settings(replace(Case("l1_filters"), **change))


def _row(**kw) -> CaseResult:
    base = dict(label="resnet20-x", model="resnet20", dataset="fashion-mnist", seed=0,
                device="CPU", precision="f32", top1=0.91, top1_torch=0.91, dense_top1=0.92,
                val_top1=0.90, dense_val_top1=0.92, threshold=0.91, passed=True, speedup=2.0,
                speedup_ci_low=1.95, speedup_ci_high=2.05)
    return CaseResult(**(base | kw))


def test_the_search_chooses_on_the_validation_split():
    row = _row(top1=0.95, val_top1=0.905)  # the test split alone would pass it
    top1, floor, holds = row.on_validation(Threshold.parse("-1pt"))
    assert (top1, holds) == (0.905, False) and math.isclose(floor, 0.91)
    old = _row(val_top1=None, dense_val_top1=None)  # a row from before the split
    assert old.on_validation(Threshold.parse("-1pt"))[0] == 0.91


def test_the_summary_says_plainly_when_a_control_is_as_good():
    from benchsuite.track.summary import control_lines

    pruned = _row(scratch_top1=0.93, scratch_top1_ci_low=0.92, scratch_top1_ci_high=0.94,
                  scratch_epochs=9)
    zoo = _row(label="resnet20-zoo", control="zoo:resnet8", speedup=3.0, speedup_ci_low=2.9,
               speedup_ci_high=3.1)
    slow_zoo = _row(label="resnet20-zoo2", control="zoo:resnet14", speedup=1.2,
                    speedup_ci_low=1.1, speedup_ci_high=1.3)
    lines = "\n".join(control_lines([pruned, zoo, slow_zoo]))
    assert "as good or better" in lines and "fastest at the floor is resnet8" in lines
    assert "prefer it" in lines
    better = "\n".join(control_lines([_row(scratch_top1=0.88), slow_zoo]))
    assert "pruning keeps 3.00 pt" in better and "the pruning beats the dense zoo" in better


def test_select_writes_a_sweep_the_search_accepts(tmp_path):
    import pandas as pd

    from benchsuite.bench.selection import classify_interval
    from benchsuite.frontends.select_cli import main
    from benchsuite.sweep.config import load_sweep

    assert [classify_interval(*ci) for ci in ((1.1, 1.3), (0.8, 0.95), (0.9, 1.1))] == [
        "gain", "detrimental", "no_gain"]
    rows = [{"case_id": f"c{i}", "recipe": recipe, "speedup": s, "speedup_ci_low": s * 0.98,
             "speedup_ci_high": s * 1.02, "model": "resnet20", "control": control,
             "recipe_params": json.dumps(params)}
            for i, (recipe, s, params, control) in enumerate([
                ("resnet20/per_stage", 2.5, {"blocks1": 1, "width1": 0.3}, ""),
                ("resnet20/per_stage", 3.1, {"blocks1": 2, "width1": 0.5}, ""),
                ("level_elementwise", 0.97, {"sparsity": 0.5}, ""),
                ("dense", 5.0, {}, "zoo:resnet8")])]
    table = tmp_path / "results.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    base = Path(__file__).resolve().parents[1] / "schedules/sweeps/resnet20_per_stage.yaml"
    out = tmp_path / "narrowed.yaml"
    assert main([str(table), "--out", str(out), "--base", str(base)]) == 0
    text = out.read_text()
    assert "level_elementwise: detrimental" in text and "resnet20/per_stage: gain" in text
    spec = load_sweep(out)
    params = spec.config["parameters"]
    assert params["recipe"] == {"values": ["resnet20/per_stage"]}
    assert params["blocks1"] == {"min": 1, "max": 2} and params["width1"]["max"] == 0.5


def test_the_summary_table_puts_the_verdict_first_and_says_what_an_interval_covers():
    from benchsuite.track.summary import BETWEEN_SESSIONS, format_table

    long_label = "resnet20-per_stage-" + "-".join(["0.45"] * 30) + "-CPU-f32-seed2"
    text = format_table([_row(label=long_label, runtime_version="2026.4.1", macs=1,
                              dense_macs=2)])
    head, _, row, *rest = text.splitlines()
    assert head.startswith("result ") and row.startswith("pass ")
    shown = row.split()[1]
    assert shown.startswith("resnet20-per_stage-0.45") and shown.endswith("-CPU-f32-seed2")
    assert "…" in shown and len(shown) <= 90  # start and end kept, not cut at 44
    assert BETWEEN_SESSIONS in rest


def test_the_summary_says_when_no_control_ran():
    from benchsuite.track.summary import control_lines

    (line,) = control_lines([_row(), _row(label="resnet20-y")])
    assert "none ran" in line and "--control scratch,zoo" in line
    assert control_lines([]) == []
