"""The front ends, on top of everything else: the pytest plugin (`plugin/`), the `benchsuite`
command (`cli.py`, and a `*_cli.py` module per group of its subcommands) and the W&B sweep
agent's program (`agent.py`). Nothing below imports them (tests/test_layers.py)."""
