"""Every setting is typed and range-checked when the session starts, before any work: a bad
value is a usage error (exit 4) naming the option, never a traceback after a dense training."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


@pytest.mark.parametrize(("args", "message"), [
    (["--epochs", "0"], "--epochs: an integer >= 1 expected, got '0'"),
    (["--epochs", "-1"], "--epochs: an integer >= 1 expected, got '-1'"),
    (["--epochs", "abc"], "--epochs: an integer >= 1 expected, got 'abc'"),
    (["--dense-epochs", "0"], "--dense-epochs: an integer >= 1 expected"),
    (["--niter", "0"], "--niter: an integer >= 1 expected, got '0'"),
    (["--precision", "int3"], "--precision: 'int3' is not one of f32, bf16, f16, default"),
    (["--bench-seconds", "0"], "--bench-seconds: a number > 0 expected, got '0'"),
    (["--bench-threads", "two"], "--bench-threads: a positive integer or 'default', got 'two'"),
    (["--paired-mode", "solo"], "--paired-mode: 'solo' is not one of alternate, duet"),
    (["--latency-tolerance", "x"], "--latency-tolerance: a number >= 0 expected, got 'x'"),
    # was a traceback of the tracker fixture once Redis and both workers had started
    (["--wandb", "offlne"], "--wandb: 'offlne' is not one of offline, online, disabled"),
    # hostile round 4: numpy's 'Seed must be between 0 and 2**32 - 1' traceback, per stage
    (["--seed", "4294967296"], "--seed: an integer from 0 to 4294967295 expected, got "
                               "'4294967296'"),
])
def test_bad_settings_are_usage_errors(pytester: pytest.Pytester, args: list[str],
                                       message: str) -> None:
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", *args, "--co")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}*"])
    assert "Traceback" not in result.stderr.str()


@pytest.mark.parametrize(("ini", "message"), [
    ("benchsuite_epochs = abc", "benchsuite_epochs: invalid literal for int() with base 10: "
                                "'abc'"),
    ("benchsuite_dense_epochs = 1.5", "benchsuite_dense_epochs: invalid literal for int()"),
    ("benchsuite_seed = 4294967296", "benchsuite_seed: an integer from 0 to 4294967295"),
])
def test_a_bad_ini_value_names_its_key(pytester: pytest.Pytester, ini: str, message: str):
    """Hostile round 4: `benchsuite_epochs = abc` in pytest.ini said only "ERROR: invalid
    literal for int() with base 10: 'abc'" (pytest 9's getini raises a UsageError)."""
    pytester.makeini(f"[pytest]\n{ini}\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--co")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}*"])


def test_an_absolute_path_in_the_space_form_is_an_option(pytester: pytest.Pytester,
                                                         tmp_path) -> None:
    """`--data-dir /x` (space form, a path outside the rootdir) used to move pytest's rootdir
    and leave every benchsuite option unrecognized (the plugin now loads by entry point)."""
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--data-dir",
                                           str(tmp_path), "--latency-baseline", "/tmp", "--co")
    assert "unrecognized arguments" not in result.stderr.str()
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_absolute_paths_in_the_space_form_collect_each_case_once(tmp_path) -> None:
    """`--schedules /abs/dir` (and --recipes, --latency-baseline, --data-dir with absolute
    paths, space-separated) moved pytest's rootdir to that folder: the checkout's pytest.ini
    was not read and both benchsuite/experiments/test_latency.py and experiments/test_latency.py
    were collected, every case twice. Run from the checkout, as the README writes it."""
    import subprocess
    import sys

    from benchsuite.broker.local import PACKAGE_ROOT
    from benchsuite.core.paths import in_checkout

    if not in_checkout():
        pytest.skip("needs the source checkout (its pytest.ini and experiments/)")
    schedules = tmp_path / "mine"
    schedules.mkdir()
    recipe = (PACKAGE_ROOT / "schedules" / "l1_filters.yaml").read_text()
    (schedules / "own.yaml").write_text(recipe)
    (tmp_path / "other.yaml").write_text(recipe)
    (tmp_path / "data").mkdir()
    (tmp_path / "base.json").write_text('{"version": 2, "cases": {}}')
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
         "-m", "latency", "--model", "small_cnn", "--schedules", str(schedules),
         "--recipes", f"own,{tmp_path / 'other.yaml'}", "--latency-baseline",
         str(tmp_path / "base.json"), "--data-dir", str(tmp_path / "data")],
        cwd=PACKAGE_ROOT, capture_output=True, text=True, timeout=300)
    ids = [line for line in out.stdout.splitlines() if "::test_latency[" in line]
    assert out.returncode == 0, out.stdout + out.stderr
    assert sorted(i.split("::", 1)[1] for i in ids) == [
        "test_latency[small_cnn-other-default-CPU-f32]",
        "test_latency[small_cnn-own-default-CPU-f32]"], ids
    assert all(i.startswith("experiments/test_latency.py::") for i in ids), ids


def test_the_session_configuration_from_any_mapping() -> None:
    """The same table and readers as the command line, without pytest: option names to
    strings or typed values, defaults for the rest, a bad value named."""
    from benchsuite.pipeline.settings import SessionConfig

    cfg = SessionConfig.from_mapping({"epochs": "2", "dense_epochs": 4, "train-images": "all",
                                      "control": "scratch,zoo", "precision": "f32,int8",
                                      "accuracy-threshold": "0.9"})
    assert (cfg.base.epochs, cfg.base.dense_epochs, cfg.base.train_images) == (2, 4, None)
    assert cfg.base.control == "scratch" and cfg.zoo and cfg.precisions == ["f32", "int8"]
    assert cfg.threshold.floor(0.95) == 0.9 and cfg.latency_tolerance == 0.05
    default = SessionConfig.from_mapping({})
    assert default.base.dataset == "fashion-mnist" and default.calibration is True
    with pytest.raises(ValueError, match=r"^epochs: an integer >= 1 expected, got '0'$"):
        SessionConfig.from_mapping({"epochs": 0})
    with pytest.raises(ValueError, match=r"unknown setting\(s\) epohcs"):
        SessionConfig.from_mapping({"epohcs": 3})


def test_an_ini_value_is_read_and_named_like_a_flag(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nbenchsuite_epochs = 0\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--co")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: benchsuite_epochs: an integer >= 1 expected, got '0'*"])


def test_a_hand_built_case_that_contradicts_the_options_is_named(pytester: pytest.Pytester):
    """A `Case` built by hand in a test does not follow the options: each one the user gave (a
    flag, an ini key) that it contradicts is a line, and nothing else is (not the defaults the
    user did not give; not through pytest 9's deprecated `config.inicfg`, which warned once
    per case)."""
    pytester.makeini("[pytest]\nbenchsuite_seed = 3\n")
    pytester.makepyfile(test_hand="""
        import warnings

        from benchsuite.frontends.plugin.options import contradictions
        from benchsuite.recipe.case import Case

        def test_lines(pytestconfig, base_case):
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                lines = contradictions(pytestconfig, Case("dense", epochs=2, model="resnet20"))
                assert contradictions(pytestconfig, base_case) == []
            assert len(lines) == 2, lines
            assert "--epochs 5 was given, but this case has epochs=2" in lines[0]
            assert "--seed 3 was given, but this case has seed=0" in lines[1]
    """)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--epochs", "5",
                                          "--model", "resnet20")
    result.assert_outcomes(passed=1)
