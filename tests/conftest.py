"""Shared fixtures for the suite's own tests: a private cache and results folder per session."""

from __future__ import annotations

import signal

import pytest

# The suite tests what Ctrl-C does (SIGINT to a worker, to a session's process group). A test run
# started with SIGINT ignored (`.ci/run &` in a script: a background job of a non-interactive
# shell) handed that on to every worker and session it started, which keep ignoring it as they
# should (benchsuite/broker/worker.py): three Ctrl-C tests then failed, in a CI run tried that
# way beside a CPU hog. The tests' own process takes SIGINT as Python does by default; its
# children then start with SIGINT's default action.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def _private_dirs(tmp_path_factory: pytest.TempPathFactory):
    """Keep the tests' trained models and result rows out of the project's own folders."""
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("benchsuite")
    mp.setenv("BENCHSUITE_CACHE", str(root / "cache"))
    mp.setenv("BENCHSUITE_RESULTS", str(root / "results"))
    mp.setenv("WANDB_DIR", str(root / "wandb"))
    mp.setenv("WANDB_MODE", "offline")
    # the suite's own tests train on one thread (the main job's default is two): beside a
    # CPU-bound process two OpenMP threads sharing a busy core run several times slower
    mp.setenv("BENCHSUITE_TRAIN_THREADS", "1")
    yield root
    mp.undo()


@pytest.fixture(scope="session")
def digits():
    from benchsuite.data import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="module")
def one_thread():
    """On a shared, loaded 2-core machine one intra-op thread is several times faster for the
    small models of the pruner tests (`pytestmark = pytest.mark.usefixtures("one_thread")`)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
