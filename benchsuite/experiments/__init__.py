"""The packaged experiments, runnable from any directory once benchsuite is installed:

    pytest --pyargs benchsuite.experiments -m latency --model mymodels:tiny --recipes NAME
    pytest --pyargs benchsuite.experiments -m sweep --sweep my_sweep.yaml --sweep-count 20

Results and caches go under the current directory (see `benchsuite.core.paths`).
"""
