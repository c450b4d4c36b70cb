"""The classes a recipe may name, under Distiller's names, with the arguments each accepts.

Pure data (no torch): the recipe is validated against this before anything is built. The
implementations live in `benchsuite.prune` under the same names.
"""

from __future__ import annotations

from .args import Arg

_STRUCT_GROUPS = ("Filters", "Channels")

PRUNERS: dict[str, dict[str, Arg]] = {
    "SparsityLevelParameterPruner": {
        "levels": Arg("fraction_map", required=True,
                      help="{weight name or '*': sparsity}; '*' is the default level"),
    },
    "AutomatedGradualPruner": {
        "initial_sparsity": Arg("fraction", required=True),
        "final_sparsity": Arg("fraction", required=True),
        "weights": Arg("weights", required=True),
    },
    "L1RankedStructureParameterPruner": {
        "group_type": Arg("choice", required=True, choices=_STRUCT_GROUPS),
        "desired_sparsity": Arg("fraction", required=True),
        "weights": Arg("weights", required=True),
        "group_dependency": Arg("choice", choices=("Leader",)),
        "round_to": Arg("int", default=1, minimum=1,
                        help="keep channel counts at multiples of N"),
    },
}

EXTENSIONS: dict[str, dict[str, Arg]] = {
    # Distiller's net_thinning extension: physically remove zeroed filters / channels.
    name: {
        "thinning_func_str": Arg("str"),
        "arch": Arg("str"),
        "dataset": Arg("str"),
    }
    for name in ("FilterRemover", "ChannelRemover")
}

REGULARIZERS: dict[str, dict[str, Arg]] = {}

# torch.optim.lr_scheduler classes a recipe may step (arguments are checked by torch itself
# when the scheduler is built, which is still before training starts).
LR_SCHEDULERS = (
    "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts",
    "PolynomialLR", "LinearLR", "ConstantLR",
)

# The pruning-policy `args` Distiller accepted.
POLICY_ARGS: dict[str, Arg] = {
    "keep_mask": Arg("bool", default=False),
    "mini_batch_pruning_frequency": Arg("int", default=0, minimum=0),
    "mask_on_forward_only": Arg("bool", default=False),
    "mask_gradients": Arg("bool", default=False),
    "use_double_copies": Arg("bool", default=False),
    "discard_masks_at_minibatch_end": Arg("bool", default=False),
    "fold_batchnorm": Arg("bool", default=False),
}
