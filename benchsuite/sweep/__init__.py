"""Bayesian search over recipe templates: W&B sweep configs, engines, Redis-shared trials.

See `schedules/sweeps/README.md`. Modules: `config` (load and check sweep files), `store`
(trials in Redis or memory), `engines` (W&B's `sweeps`, Optuna), `session` (one sweep run as
pytest items or from the CLI), `plugin` (pytest options), `agent_entry` (the program a
`wandb agent` calls), `bench` (bayes vs random at equal budget).
"""

from .config import SweepConfigError, SweepSpec, check_config, load_sweep

__all__ = ["SweepConfigError", "SweepSpec", "check_config", "load_sweep"]
