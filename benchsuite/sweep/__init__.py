"""Bayesian search over recipe templates: W&B sweep configs, engines, Redis-shared trials.

See `schedules/sweeps/README.md`. Modules: `config` (load and check sweep files), `store`
(trials in Redis or memory), `engines` (W&B's `sweeps`, Optuna), `session` (one sweep run as
pytest items or from the CLI), `plugin` (pytest options), `agent_entry` (the program a
`wandb agent` calls), `bench` (bayes vs random at equal budget).
"""

import warnings

# the `sweeps` package (0.2) declares a pydantic-1 config key; pydantic 2 warns once per
# process on every command that loads it. Harmless (fidelity.py passes the history by its
# alias for the same reason): not the user's to act on.
warnings.filterwarnings("ignore", message="Valid config keys have changed in V2",
                        category=UserWarning)

from benchsuite.sweep.config import SweepConfigError, SweepSpec, check_config, load_sweep  # noqa: E402

__all__ = ["SweepConfigError", "SweepSpec", "check_config", "load_sweep"]
