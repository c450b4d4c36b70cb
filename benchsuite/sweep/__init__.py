"""Bayesian search over recipe templates: W&B sweep configs, engines, Redis-shared trials.

See `schedules/sweeps/README.md`. Modules: `config` (load and check sweep files), `store`
(trials in Redis or memory), `engines` (W&B's `sweeps`, Optuna), `trials` (one sweep run as
pytest items), `fidelity` (multi-fidelity stopping), `search` (bayes vs random at equal budget),
`frontier` (each method beside its controls). The pytest side is `frontends/plugin/sweep_items.py`,
the W&B agent's program `frontends/agent.py`.
"""

import warnings

# the `sweeps` package (0.2) declares a pydantic-1 config key; pydantic 2 warns once per
# process on every command that loads it. Harmless (fidelity.py passes the history by its
# alias for the same reason): not the user's to act on.
warnings.filterwarnings("ignore", message="Valid config keys have changed in V2",
                        category=UserWarning)
# and it declares a class-based `config`, which pydantic 2 deprecates (the same, once per process)
SWEEPS_PYDANTIC = r"ignore:Support for class-based `config` is deprecated:DeprecationWarning"
warnings.filterwarnings("ignore", message="Support for class-based `config` is deprecated",
                        category=DeprecationWarning)

from benchsuite.sweep.config import SweepConfigError, SweepSpec, check_config, load_sweep  # noqa: E402

__all__ = ["SweepConfigError", "SweepSpec", "check_config", "load_sweep"]
