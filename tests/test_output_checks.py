"""The outputs are checked before any work and a row is recorded once (issue 21, items 4-6):
a broken results table is named with its line at start, the Parquet copy cannot fail a CSV
append that was made, the results table's files and the W&B folder are written to (a full
disk, an unreadable file) before any training, and a W&B folder moved to the system temp
folder is said in the session header."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from benchsuite.broker.local import PACKAGE_ROOT
from benchsuite.track.recording import output_problems
from benchsuite.track.results_table import ResultsTableError, append_row, table_problem

pytest_plugins = ["pytester"]


def _row(i: int) -> dict:
    return {"case_id": f"c{i}", "label": f"resnet20-l1_filters-{i}-CPU-f32", "recipe": "l1",
            "recipe_params": json.dumps({"sparsity": 0.5}), "model": "resnet20",
            "dataset": "digits", "seed": 0, "device": "CPU", "precision": "f32", "top1": 0.98,
            "dense_top1": 0.99, "latency_median_us": 300.0, "dense_latency_median_us": 700.0,
            "speedup": 700.0 / 300.0, "passed": True, "timestamp": "2026-11-30T10:00:00+00:00"}


GARBAGE = "this is,not,a,row,of,the,table,at all\n"  # its 7th field lands in `seed`


def _broken_table(folder: Path) -> Path:
    """Two rows with a garbage line between them (line 3)."""
    append_row(_row(0), folder)
    append_row(_row(1), folder)
    path = folder / "results.csv"
    header, first, second = path.read_text().splitlines(keepends=True)
    path.write_text(header + first + GARBAGE + second)
    return path


def test_a_garbage_line_is_named_and_nothing_is_appended(tmp_path: Path):
    """It used to append the row to the CSV, then fail in to_parquet (ArrowTypeError), so the
    case stayed unrecorded and every re-run appended it once more (16 -> 18 -> 19 -> 20 lines)."""
    path = _broken_table(tmp_path)
    before, parquet = path.read_bytes(), (tmp_path / "results.parquet").read_bytes()
    message = (rf"results table {path}, line 3: column seed: 'table' is not a number; fix or "
               r"delete that line")
    assert table_problem(path) == (f"results table {path}, line 3: column seed: 'table' is not "
                                   "a number")
    for _ in range(3):
        with pytest.raises(ResultsTableError, match=message):
            append_row(_row(2), tmp_path)
    assert path.read_bytes() == before
    assert (tmp_path / "results.parquet").read_bytes() == parquet


def test_a_line_with_too_many_fields_is_named(tmp_path: Path):
    append_row(_row(0), tmp_path)
    path = tmp_path / "results.csv"
    n = len(path.read_text().splitlines()[0].split(","))
    with open(path, "a") as f:
        f.write(",".join(["x"] * (n + 3)) + "\n")
    assert f"line 3: {n + 3} fields where the header has {n}" in table_problem(path)


def test_a_good_table_and_a_cut_last_line_are_no_problem(tmp_path: Path):
    append_row(_row(0), tmp_path)
    path = tmp_path / "results.csv"
    assert table_problem(path) is None
    with open(path, "a") as f:
        f.write('c9,resnet20-x,l1,"{""sparsity"": 0.')  # a killed writer: repaired on append
    assert table_problem(path) is None


def test_the_parquet_copy_cannot_fail_an_append_that_was_made(tmp_path: Path, monkeypatch):
    append_row(_row(0), tmp_path)
    path = tmp_path / "results.csv"
    before = path.read_bytes()

    def full_disk(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full_disk)
    with pytest.raises(OSError, match="No space left"):
        append_row(_row(1), tmp_path)
    assert path.read_bytes() == before  # not appended: the next run records it, once
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    monkeypatch.undo()
    append_row(_row(1), tmp_path)
    assert pd.read_csv(path)["case_id"].tolist() == ["c0", "c1"]
    assert pd.read_parquet(tmp_path / "results.parquet")["case_id"].tolist() == ["c0", "c1"]


def test_a_broken_table_stops_the_session_before_any_work(pytester: pytest.Pytester,
                                                          tmp_path: Path, monkeypatch):
    path = _broken_table(tmp_path / "results")
    monkeypatch.setenv("BENCHSUITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("BENCHSUITE_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("PYTHONPATH", str(PACKAGE_ROOT))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--pyargs", "benchsuite.experiments", "-m", "latency",
        "--executor", "local", "--wandb", "disabled", "--recipes", "level_elementwise",
        "--model", "small_cnn", "--dense-epochs", "1", "--epochs", "1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()[-2000:]
    err = result.stderr.str()
    assert f"results table {path}, line 3: column seed: 'table' is not a number" in err
    assert "Traceback" not in err
    assert not (tmp_path / "cache" / "dense").exists()  # no training started


def test_a_results_table_that_cannot_be_opened_for_append_is_found(tmp_path: Path,
                                                                   monkeypatch):
    """The old check only made a temporary file in the folder."""
    monkeypatch.setenv("BENCHSUITE_RESULTS", str(tmp_path / "results"))
    (tmp_path / "results" / "results.csv").mkdir(parents=True)
    (problem,) = output_problems()
    assert problem.startswith(f"the results table's file {tmp_path / 'results' / 'results.csv'}"
                              " cannot be opened for append (Is a directory)")


def test_a_latency_baseline_that_cannot_be_saved_is_found_before_any_work(tmp_path: Path,
                                                                         monkeypatch):
    """--save-latency-baseline to a path that cannot be written failed only at the end of the
    session, after every case had run."""
    monkeypatch.setenv("BENCHSUITE_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("BENCHSUITE_CACHE", str(tmp_path / "cache"))
    blocked = tmp_path / "a-file"
    blocked.write_text("x")
    (problem,) = output_problems(baseline=str(blocked / "baseline.json"))
    assert problem.startswith(f"--save-latency-baseline {blocked / 'baseline.json'}: cannot be "
                              "written (File exists")
    (tmp_path / "a-folder").mkdir()
    (problem,) = output_problems(baseline=str(tmp_path / "a-folder"))
    assert "a folder, not a file" in problem
    assert output_problems(baseline=str(tmp_path / "new" / "baseline.json")) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file of mode 0o200")
def test_an_unreadable_results_table_is_found(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("BENCHSUITE_RESULTS", str(tmp_path))
    append_row(_row(0), tmp_path)
    (tmp_path / "results.csv").chmod(0o200)
    try:
        (problem,) = output_problems()
    finally:
        (tmp_path / "results.csv").chmod(0o600)
    assert f"results table {tmp_path / 'results.csv'} cannot be read (Permission denied)" in problem


def _namespace_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode == 0


needs_namespace = pytest.mark.skipif(not _namespace_works(),
                                     reason="needs `unshare -rm` (user + mount namespaces)")


def _in_namespace(script: str, env: dict[str, str], timeout: float = 120) -> str:
    """Run a shell script in its own user and mount namespace (its mounts vanish with it)."""
    out = subprocess.run(["unshare", "-rm", "sh", "-ec", script], capture_output=True,
                         text=True, env=env, timeout=timeout)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out.stdout


@needs_namespace
def test_a_full_results_disk_is_found_before_any_work(tmp_path: Path):
    """A full results filesystem failed only after prune + fine-tune + benchmark
    (OSError: [Errno 28]): making an empty temporary file there still worked."""
    disk = tmp_path / "disk"
    disk.mkdir()
    env = os.environ | {"BENCHSUITE_RESULTS": str(disk / "results"),
                        "BENCHSUITE_CACHE": str(tmp_path / "cache"),
                        "PYTHONPATH": str(PACKAGE_ROOT)}
    code = "from benchsuite.track.recording import output_problems; print(output_problems())"
    out = _in_namespace(
        f"mount -t tmpfs -o size=256k tmpfs {disk}; mkdir {disk}/results; "
        f"dd if=/dev/zero of={disk}/fill bs=4k 2>/dev/null || true; "
        f"{sys.executable} -c '{code}'", env)
    assert ("the results folder cannot be written (No space left on device); fix it or set "
            "$BENCHSUITE_RESULTS to another folder") in out, out


def test_a_w_and_b_folder_that_cannot_be_written_is_a_usage_error(pytester: pytest.Pytester,
                                                                   tmp_path: Path, monkeypatch):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("x")
    monkeypatch.setenv("BENCHSUITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("BENCHSUITE_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("WANDB_DIR", str(blocked))
    monkeypatch.setenv("PYTHONPATH", str(PACKAGE_ROOT))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--pyargs", "benchsuite.experiments", "-m", "latency",
        "--executor", "local", "--wandb", "offline", "--recipes", "level_elementwise",
        "--model", "small_cnn", "--dense-epochs", "1", "--epochs", "1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()[-2000:]
    assert (f"the W&B folder cannot be written (File exists: {blocked}); fix it, set "
            "$WANDB_DIR to another folder or pass --wandb disabled") in result.stderr.str()


@needs_namespace
def test_a_w_and_b_folder_moved_to_the_temp_folder_is_in_the_header(tmp_path: Path):
    """With the project read-only (results and cache redirected), the W&B runs went to the
    system temp folder and nothing said so."""
    import tempfile

    experiments = PACKAGE_ROOT / "experiments"
    env = {k: v for k, v in os.environ.items() if k != "WANDB_DIR"} | {
        "BENCHSUITE_RESULTS": str(tmp_path / "results"),
        "BENCHSUITE_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(PACKAGE_ROOT),
        "WANDB_MODE": "offline"}
    out = _in_namespace(
        f"mount --bind {experiments} {experiments}; "
        f"mount -o remount,bind,ro {experiments}; cd {tmp_path}; "
        f"{sys.executable} -m pytest -p no:cacheprovider --pyargs benchsuite.experiments "
        "-m latency --executor local --recipes level_elementwise --model small_cnn --co", env)
    assert (f"benchsuite: W&B writes to {Path(tempfile.gettempdir()) / 'wandb'}: "
            f"{experiments / 'wandb'} cannot be written (read-only file system)") in out, out


def test_a_long_recipe_or_model_name_still_gets_its_w_and_b_run(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch):
    """Hostile round 4: a recipe named with 245 characters ran its case, then failed in
    wandb.init (pydantic: 'Tags must be between 1 and 64 characters'), so the row was never
    recorded, again on every re-run. Tags are cut to W&B's 64 characters."""
    pytest.importorskip("wandb")
    from benchsuite.track.wandb_log import WandbTracker

    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    recipe, model = "l" * 245, "mycompany.research.models.efficientnet_variants:efficientnet_b0"
    tracker = WandbTracker(group="long", mode="offline")
    try:
        folder = tracker.log_case({"case_id": "c0", "label": f"{model}-{recipe}-CPU-f32",
                                   "recipe": recipe, "model": model, "recipe_params": "{}",
                                   "speedup": 2.0, "top1": 0.98})
    finally:
        tracker.close()
    assert folder is not None and Path(folder).is_dir()


def test_a_baseline_write_that_fails_at_the_end_is_a_summary_line(tmp_path: Path):
    from benchsuite.track.session_end import write_outputs

    folder = tmp_path / "baselines"
    folder.mkdir()
    out = write_outputs([_row(0)], str(folder), None)  # a folder where the file goes
    assert out.failed and out.errors[0].startswith(f"latency baseline not written to {folder}")
