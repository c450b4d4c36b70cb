"""Sweep trials as tests: `pytest -m sweep --sweep schedules/sweeps/FILE --sweep-count N`.

The test lives in the package (benchsuite/experiments/test_sweep.py), so an installed benchsuite
runs it too: `pytest --pyargs benchsuite.experiments -m sweep --sweep FILE`.
"""

from benchsuite.experiments.test_sweep import test_sweep  # noqa: F401
