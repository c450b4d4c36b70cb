"""The experiments: `pytest -m latency` runs the packaged latency test, one case per (recipe,
its grid parameters, model, device, precision); options: `pytest --help` (group "benchsuite").
The test itself lives in the package (benchsuite/experiments/test_latency.py), so an installed
benchsuite runs it too: `pytest --pyargs benchsuite.experiments -m latency`.
"""

from benchsuite.experiments.test_latency import test_latency  # noqa: F401
