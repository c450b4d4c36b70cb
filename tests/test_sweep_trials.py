"""Sweeps end to end: real Redis (the broker's server module), real cases on the small CNN.

Each pytest run is a subprocess of `pytest -m sweep` on `experiments/test_sweep.py` with a
recipe folder of its own; the trials are read back from Redis.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sweeps.bayes_search  # noqa: F401  (imported once, before pytester snapshots sys.modules)
import yaml

from benchsuite.broker.server import RedisServer
from benchsuite.core.paths import project_root
from benchsuite.sweep import SweepConfigError, load_sweep
from benchsuite.sweep.store import RedisStore
from benchsuite.sweep.trials import found_recipe_info

sys.path.insert(0, str(Path(__file__).parent))

from toy_recipes import thin_filters

pytest_plugins = ["pytester"]

RECIPE = thin_filters(["conv1.weight", "conv2.weight"])
CASE = {"model": {"value": "small_cnn"}, "epochs": {"value": 1}, "dense_epochs": {"value": 1},
        "niter": {"value": 50}, "repeats": {"value": 1}}
FAST = ["-p", "benchsuite.frontends.plugin", "-p", "benchsuite.frontends.plugin.sweep_items",
        "-m", "sweep", "-v", "-ra", "-p", "no:cacheprovider"]


def sweep_file(folder: Path, name: str, **overrides) -> Path:
    config = {"name": name, "program": "benchsuite/frontends/agent.py", "method": "random",
              "metric": {"name": "speedup", "goal": "maximize"},
              "parameters": {"recipe": {"value": "small_filters"},
                             "sparsity": {"values": [0.25, 0.5]},  # cases of the first test
                             "accuracy_threshold": {"value": 0.1}, **CASE}}
    config.update(overrides)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def redis_url():
    with RedisServer() as server:
        yield server.url


@pytest.fixture
def project(pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    schedules = tmp_path / "schedules"
    schedules.mkdir()
    (schedules / "small_filters.yaml").write_text(RECIPE)
    monkeypatch.setenv("BENCHSUITE_SCHEDULES", str(schedules))
    shutil.copy(project_root() / "experiments" / "test_sweep.py", pytester.path)
    # the subprocess imports this checkout's benchsuite (not another install of it)
    monkeypatch.setenv("PYTHONPATH", str(project_root()))
    pytester.makeini("[pytest]\nmarkers =\n    sweep: sweep trial\n")
    return pytester


def trials(url: str, sweep_id: str):
    store = RedisStore(url, sweep_id)
    try:
        return store.trials()
    finally:
        store.close()


def test_four_trials_one_infeasible(project: pytest.Pytester, redis_url: str, tmp_path: Path):
    # a grid over accuracy floors: the 1.0 floor is out of reach (infeasible), the others not
    path = sweep_file(tmp_path, "four", method="grid", parameters={
        "recipe": {"value": "small_filters"}, "sparsity": {"values": [0.25, 0.5]},
        "accuracy_threshold": {"values": [0.1, 1.0]}, **CASE})
    result = project.runpytest_subprocess(*FAST, "--sweep", str(path), "--sweep-count", "4",
                                          "--sweep-redis", redis_url, "--sweep-id", "four")
    result.assert_outcomes(passed=2, xfailed=2)
    result.stdout.fnmatch_lines(["*test_sweep*four-01*", "*benchsuite: sweep*",
                                 "*best feasible: trial*", "*found recipe:*four.yaml*",
                                 "XFAIL*four-0* - infeasible: trial * INFEASIBLE*"
                                 "Top-1 * vs floor 1.0000*"])
    result.stdout.fnmatch_lines(["*benchsuite: latency cases*", "infeasible *small_cnn-*"])
    got = trials(redis_url, "four")
    assert [t.number for t in got] == [1, 2, 3, 4]
    assert sorted(t.status for t in got) == ["finished", "finished", "infeasible", "infeasible"]
    assert all(t.objective and t.objective > 0 for t in got)  # every trial told, with figures
    assert {(t.params["sparsity"], t.params["accuracy_threshold"]) for t in got} == {
        (0.25, 0.1), (0.25, 1.0), (0.5, 0.1), (0.5, 1.0)}
    for t in got:
        assert (t.metrics["top1"] >= t.metrics["threshold"]) == (t.status == "finished")
    found = tmp_path / "schedules" / "found" / "four.yaml"
    text = found.read_text()
    assert "${" not in text and "desired_sparsity: 0." in text
    assert "found_by: sweep four" in text
    info = found_recipe_info(found)
    assert info["case"]["model"] == "small_cnn" and info["trial"] in (1, 2, 3, 4)
    assert info["result"]["top1"] >= info["result"]["threshold"]


def test_two_agents_share_one_sweep(project: pytest.Pytester, redis_url: str, tmp_path: Path):
    path = sweep_file(tmp_path, "shared")
    args = [sys.executable, "-m", "pytest", *FAST, "--sweep", str(path), "--sweep-count", "4",
            "--sweep-redis", redis_url, "--sweep-id", "shared", "-p", "no:randomly"]
    env = os.environ | {"PYTHONPATH": str(project_root())}
    agents = [subprocess.Popen(args, cwd=project.path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [a.communicate(timeout=300)[0] for a in agents]
    assert all(a.returncode == 0 for a in agents), outs
    got = trials(redis_url, "shared")
    assert [t.number for t in got] == [1, 2, 3, 4]  # total = requested, no number twice
    assert all(t.status == "finished" and t.attempts == 1 for t in got)
    owners = {t.owner for t in got}
    ran = [out.count("PASSED") for out in outs]
    assert sum(ran) == 4 and len(owners) == sum(1 for n in ran if n)  # each trial ran once


def test_killed_sweep_resumes(project: pytest.Pytester, redis_url: str, tmp_path: Path):
    # grid: trial 2 (0.6) is a new case, so the agent is killed while it trains
    path = sweep_file(tmp_path, "resume", method="grid", parameters={
        "recipe": {"value": "small_filters"}, "sparsity": {"values": [0.25, 0.6, 0.5]},
        "accuracy_threshold": {"value": 0.1}, **CASE})
    common = [*FAST, "--sweep", str(path), "--sweep-count", "3", "--sweep-redis", redis_url,
              "--sweep-id", "resume", "--sweep-lease", "2"]
    env = os.environ | {"PYTHONPATH": str(project_root())}
    agent = subprocess.Popen([sys.executable, "-m", "pytest", *common], cwd=project.path,
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # kill it once trial 1 is done and trial 2 claimed
        got = trials(redis_url, "resume")
        if len(got) >= 2 and got[0].status == "finished":
            break
        time.sleep(0.05)
    os.killpg(agent.pid, signal.SIGKILL)
    agent.wait()
    before = trials(redis_url, "resume")
    assert len(before) == 2 and before[0].status == "finished"
    interrupted = before[1]
    time.sleep(2.5)  # the killed agent's lease runs out
    result = project.runpytest_subprocess(*common)
    got = trials(redis_url, "resume")
    assert [t.number for t in got] == [1, 2, 3]  # continued at the right trial count
    assert all(t.status == "finished" for t in got)
    assert got[0].attempts == 1 and got[0].objective == before[0].objective
    assert [t.params["sparsity"] for t in got] == [0.25, 0.6, 0.5]
    if interrupted.status == "running":  # killed mid-trial: re-run with the same parameters
        assert got[1].attempts == 2 and got[1].params == interrupted.params
        result.assert_outcomes(passed=2, skipped=1)
    else:  # killed between trial 2's end and the claim of trial 3
        result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*budget of 3 trials reached*"])


@pytest.mark.parametrize("change, message", [
    ({"method": "annealing"}, "method: unknown method 'annealing'"),
    ({"parameters": {"recipe": {"value": "small_filters"}, "blocks_per_stage": {"values": [2]}}},
     "parameters.blocks_per_stage: not a template parameter of the recipe (small_filters: "
     "sparsity)"),
    ({"parameters": {"recipe": {"value": "small_filters"}, "sparsity": {"min": 0.9, "max": 0.1}}},
     "parameters.sparsity: min 0.9 must be less than max 0.1"),
    ({"parameters": {"recipe": {"value": "small_filters"},
                     "sparsity": {"min": 0.1, "max": 0.9, "distribution": "gamma"}}},
     "parameters.sparsity.distribution: unknown distribution 'gamma'"),
    ({"parameters": {"recipe": {"value": "no_such_recipe"}}}, "no recipe file"),
    # a case setting out of range is refused at load, not after a dense training
    ({"parameters": {"recipe": {"value": "small_filters"}, "epochs": {"value": 0}}},
     "parameters.epochs: an integer >= 1 expected, got '0'"),
    ({"parameters": {"recipe": {"value": "small_filters"}, "precision": {"values": ["f33"]}}},
     "parameters.precision: 'f33' is not one of"),
])
def test_bad_sweep_config(project: pytest.Pytester, tmp_path: Path, change, message):
    path = sweep_file(tmp_path, "bad", **change)
    with pytest.raises(SweepConfigError) as e:
        load_sweep(path)
    assert message in str(e.value) and str(path) in str(e.value)
    if change.get("method"):  # through pytest: a usage error at start-up, nothing trained
        result = project.runpytest_subprocess(*FAST, "--sweep", str(path))
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"*bad sweep config*{message}*"])
        result.stdout.no_fnmatch_line("*dense baseline*")


def test_sweep_configs_in_schedules_are_valid():
    folder = project_root() / "schedules" / "sweeps"
    files = sorted(folder.glob("*.yaml"))
    assert files
    for f in files:
        spec = load_sweep(f)
        assert spec.config["command"][-1] == "${args}"
        # what `wandb sweep` (wandb.wandb_controller) checks and builds before creating it
        import sweeps

        assert sweeps.schema_violations_from_proposed_config(spec.config) == []
        sweeps.SweepConfig(spec.config)


def test_online_path_as_wandb_agent_runs_it(project: pytest.Pytester, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch):
    """W&B's own Agent builds the command line and environment of a trial and starts it."""
    from wandb.wandb_agent import Agent
    from wandb_records import run_contents

    config = yaml.safe_load((project_root() / "schedules" / "sweeps" /
                             "resnet20_width.yaml").read_text())
    params = {"recipe": "small_filters", "sparsity": 0.5, "round_to": 4,
              "accuracy_threshold": 0.1, **{k: v["value"] for k, v in CASE.items()}}
    venv_bin = str(Path(sys.executable).parent)
    for key in ("WANDB_RUN_ID", "WANDB_SWEEP_PARAM_PATH"):  # the agent sets them: restore
        monkeypatch.setenv(key, "")
    monkeypatch.setenv("WANDB_SWEEP_ID", "offline-sweep")
    monkeypatch.setenv("PATH", venv_bin + os.pathsep + os.environ["PATH"])  # ${interpreter}
    monkeypatch.setenv("PYTHONPATH", str(project_root()))
    monkeypatch.chdir(tmp_path)
    agent = Agent(api=None, queue=None, sweep_id="offline-sweep")
    agent._sweep_command = config["command"]  # what the agent reads from the sweep
    agent._command_run({"type": "run", "run_id": "trial0001", "program": config["program"],
                        "args": {k: {"value": v} for k, v in params.items()}})
    proc = agent._run_processes["trial0001"]
    assert proc.wait(timeout=300) == 0

    (run_dir,) = (Path(os.environ["WANDB_DIR"]) / "wandb").glob("offline-run-*-trial0001")
    contents = run_contents(run_dir)
    assert contents["summary"]["speedup"] > 0 and contents["summary"]["passed"] is True
    assert contents["config"]["model"] == "small_cnn"
    assert json.loads(contents["config"]["recipe_params"]) == {"sparsity": 0.5}
    assert contents["config"]["sparsity"] == 0.5  # round_to: not in this recipe, ignored


def test_sweep_on_missing_hardware_skips_before_claiming(project: pytest.Pytester,
                                                         redis_url: str, tmp_path: Path):
    path = sweep_file(tmp_path, "nodev", parameters={
        "recipe": {"value": "small_filters"}, "sparsity": {"values": [0.25, 0.5]},
        "device": {"value": "NOSUCHDEV"}, **CASE})
    result = project.runpytest_subprocess(*FAST, "--sweep", str(path), "--sweep-count", "2",
                                          "--sweep-redis", redis_url, "--sweep-id", "nodev")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["SKIPPED*sweep nodev: device NOSUCHDEV not available*"])
    assert trials(redis_url, "nodev") == []  # the budget was not spent


def test_hyperband_stops_a_poor_trial(project: pytest.Pytester, redis_url: str, tmp_path: Path):
    # grid order: two mild sparsities, then one that wrecks the model; 3 fine-tuning epochs,
    # Hyperband bands at epochs 1, 2, 4 (min_iter 1, eta 2): the wrecked one stops at epoch 2
    path = sweep_file(tmp_path, "hb", method="grid",
                      early_terminate={"type": "hyperband", "min_iter": 1, "eta": 2},
                      parameters={"recipe": {"value": "small_filters"},
                                  "sparsity": {"values": [0.1, 0.2, 0.95]},
                                  "accuracy_threshold": {"value": 0.1},
                                  **CASE, "epochs": {"value": 3}})
    result = project.runpytest_subprocess(*FAST, "--sweep", str(path), "--sweep-count", "3",
                                          "--sweep-redis", redis_url, "--sweep-id", "hb")
    result.assert_outcomes(passed=2, xfailed=1)
    result.stdout.fnmatch_lines(["*fine-tuning epochs spent: 8*",
                                 "XFAIL*hb-03* - trial 3 stopped early after fine-tuning epoch 2*"])
    got = trials(redis_url, "hb")
    assert [t.status for t in got] == ["finished", "finished", "stopped"]
    stopped = got[2]
    assert stopped.params["sparsity"] == 0.95 and stopped.objective is None
    assert stopped.metrics["finetune_epochs_spent"] == 2 and len(stopped.history) == 2
    assert max(stopped.history) < min(t.history[1] for t in got[:2])  # it was the poor one
    assert all(len(t.history) == 3 for t in got[:2])  # the others ran every epoch


def test_ctrl_c_stops_a_sweep_and_hands_its_trial_back(project: pytest.Pytester,
                                                       tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch):
    """Issue 21 item 11: SIGINT to the session's process group (Ctrl-C) also killed the sweep's
    private redis-server; the interrupt became a failure to record the trial, later trials
    still started and failed, and a resumed sweep said "budget reached" while the trial sat
    under the dead agent's lease. Now: the session stops within seconds, the trial is handed
    back (untold, lease released) through the Redis that outlived the interrupt, no later
    trial starts, and the resumed sweep re-runs it at once."""
    import tempfile

    cache = Path(tempfile.mkdtemp(prefix="bs-ctrlc-"))  # short: the socket goes in it
    try:
        redis_dir = cache / "sweeps" / "redis"
        redis_dir.mkdir(parents=True, mode=0o700)
        redis_dir.chmod(0o700)
        monkeypatch.setenv("BENCHSUITE_CACHE", str(cache))
        url = f"unix://{redis_dir / 'redis.sock'}"
        path = sweep_file(tmp_path, "ctrlc", method="grid", parameters={
            "recipe": {"value": "small_filters"}, "sparsity": {"values": [0.25, 0.6, 0.5]},
            "accuracy_threshold": {"value": 0.1}, **CASE})
        common = [*FAST, "--sweep", str(path), "--sweep-count", "3", "--sweep-id", "ctrlc",
                  "--sweep-lease", "600"]  # a lease that cannot run out during the test
        log_path = tmp_path / "agent.log"
        env = os.environ | {"PYTHONPATH": str(project_root())}
        with open(log_path, "wb") as log:
            agent = subprocess.Popen([sys.executable, "-m", "pytest", *common],
                                     cwd=project.path, env=env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
            deadline = time.monotonic() + 240
            got: list = []
            while time.monotonic() < deadline and agent.poll() is None:
                try:
                    got = trials(url, "ctrlc")
                except Exception:  # the agent's redis-server is not up yet
                    got = []
                if len(got) >= 2 and got[0].status == "finished":
                    break
                time.sleep(0.2)
            assert len(got) == 2 and got[1].status == "running", log_path.read_text()[-3000:]
            time.sleep(1.0)  # trial 2 is under way (training its case)
            os.killpg(agent.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
            t0 = time.monotonic()
            agent.wait(90)
            stopped_in = time.monotonic() - t0
        out = log_path.read_text()
        assert stopped_in < 45, f"the sweep took {stopped_in:.0f} s to stop"
        assert "ConnectionError" not in out and "trial 3" not in out.split("KeyboardInterrupt")[-1]
        with RedisServer(redis_dir, appendonly=True) as server:  # the sweep's state, from its AOF
            after = trials(server.url, "ctrlc")
        assert [t.number for t in after] == [1, 2], "a trial was started after the interrupt"
        assert after[0].status == "finished"
        assert after[1].status == "running" and after[1].owner == ""  # handed back, untold
        assert after[1].lease_until == 0.0 and after[1].attempts == 1
        result = project.runpytest_subprocess(*common)  # resumed at once: no lease to wait for
        final = trials_from_aof(redis_dir, "ctrlc")
        assert [t.number for t in final] == [1, 2, 3] and all(
            t.status == "finished" for t in final)
        assert final[1].attempts == 2 and final[1].params == after[1].params
        result.assert_outcomes(passed=2, skipped=1)
        result.stdout.fnmatch_lines(["*budget of 3 trials reached*"])
        assert "still running" not in result.stdout.str()
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def trials_from_aof(redis_dir: Path, sweep_id: str):
    with RedisServer(redis_dir, appendonly=True) as server:
        return trials(server.url, sweep_id)


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--sweep-count", "abc", "--sweep-count: an integer >= 1 expected, got 'abc'"),
    ("--sweep-count", "0", "--sweep-count: an integer >= 1 expected, got '0'"),
    ("--sweep-seed", "x", "--sweep-seed: an integer >= 0 expected, got 'x'"),
    ("--sweep-lease", "0", "--sweep-lease: a number > 0 expected, got '0'"),
])
def test_sweep_numbers_name_their_option(project: pytest.Pytester, tmp_path: Path, option,
                                         value, message):
    """`--sweep-count abc` said "invalid literal for int()" without naming the option."""
    path = sweep_file(tmp_path, "numbers")
    result = project.runpytest_subprocess(*FAST, "--sweep", str(path), option, value)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert "invalid literal" not in result.stderr.str()


def test_a_sweep_id_of_another_sweep_is_one_usage_error(project: pytest.Pytester,
                                                        redis_url: str, tmp_path: Path):
    """Reusing --sweep-id with another sweep file gave a traceback per item."""
    RedisStore(redis_url, "taken", config={"name": "an earlier sweep"}).close()
    path = sweep_file(tmp_path, "later")
    result = project.runpytest_subprocess(*FAST, "--sweep", str(path), "--sweep-count", "3",
                                          "--sweep-redis", redis_url, "--sweep-id", "taken")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()[-3000:]
    out = result.stdout.str() + result.stderr.str()
    assert out.count("sweep 'taken' in Redis was started with another config") == 1, out
    assert f"(this session's: --sweep {path})" in out
    assert "Traceback" not in out and "dense baseline" not in out
    assert trials(redis_url, "taken") == []


def test_a_best_trial_that_is_no_gain_is_not_saved():
    from benchsuite.sweep.store import Trial
    from benchsuite.sweep.trials import SweepSession

    slower = Trial(1, {}, metrics={"speedup": 0.991, "speedup_ci_low": 0.98,
                                   "speedup_ci_high": 1.002})
    assert SweepSession.no_gain(slower) == (
        "best feasible trial 1: 0.991x [0.980, 1.002] is no gain over the dense model: not "
        "saved to schedules/found/")
    faster = Trial(2, {}, metrics={"speedup": 1.2, "speedup_ci_low": 1.1,
                                   "speedup_ci_high": 1.3})
    assert SweepSession.no_gain(faster) is None
    # without an interval the estimate itself decides, and the line has none to show
    assert SweepSession.no_gain(Trial(3, {}, metrics={"speedup": 0.9})) == (
        "best feasible trial 3: 0.900x is no gain over the dense model: not saved to "
        "schedules/found/")
    assert SweepSession.no_gain(Trial(4, {}, metrics={"speedup": 1.1})) is None
