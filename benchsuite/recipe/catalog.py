"""The classes a recipe may name, under Distiller's names, with the arguments each accepts.

Pure data (no torch): the recipe is validated against this before anything is built. The
implementations live in `benchsuite.prune` under the same names (`prune/registry.py`).
"""

from __future__ import annotations

from benchsuite.recipe.args import Arg

# a structured pruner without `weights` selects its layers by rule (prune/graph.py:
# prunable_layers), as torch-pruning's pruners do; with them, exactly the named weights
_WEIGHTS_OR_RULE = Arg("weights", help="weight names; absent: every layer the group type's "
                       "rule selects (Filters: each conv whose output feeds only prunable "
                       "layers; Channels / Rows: each conv / linear layer whose input only "
                       "such a conv writes)")
_ROUND_TO = Arg("int", default=1, minimum=1, help="keep channel counts at multiples of N")
_RANKING = Arg("choice", default="layer", choices=("layer", "global"),
               help="layer: same fraction per group (Distiller); global: rank across groups")
_LEADER = Arg("choice", choices=("Leader",))


def _structured(groups: tuple[str, ...], gradual: bool) -> dict[str, Arg]:
    level = ({"initial_sparsity": Arg("fraction", required=True),
              "final_sparsity": Arg("fraction", required=True)} if gradual
             else {"desired_sparsity": Arg("fraction", required=True)})
    return {
        "group_type": Arg("choice", required=True, choices=groups), **level,
        "weights": _WEIGHTS_OR_RULE,
        "group_dependency": _LEADER, "round_to": _ROUND_TO, "ranking": _RANKING,
        "kwargs": Arg("any", help="Distiller's extra arguments: {block_shape: [r, d, 1, 1]}"),
    }


# Distiller name (one-shot) -> the group types it ranks; each also has an `_AGP` variant.
# (`3D` is Distiller's other name for Filters; `Blocks` takes `kwargs: {block_shape: [...]}`.)
STRUCTURED: dict[str, tuple[str, ...]] = {
    "L1RankedStructureParameterPruner": ("Filters", "3D", "Channels", "Rows", "Blocks"),
    "L2RankedStructureParameterPruner": ("Filters", "3D", "Channels", "Rows", "Blocks"),
    "ActivationAPoZRankedFilterPruner": ("Filters", "3D"),
    "ActivationMeanRankedFilterPruner": ("Filters", "3D"),
    "GradientRankedFilterPruner": ("Filters", "3D"),
    "RandomRankedFilterPruner": ("Filters", "3D"),
    "BernoulliFilterPruner": ("Filters", "3D"),
}

PRUNERS: dict[str, dict[str, Arg]] = {
    "SparsityLevelParameterPruner": {
        "levels": Arg("fraction_map", required=True,
                      help="{weight name or '*': sparsity}; '*' is the default level"),
    },
    "MagnitudeParameterPruner": {
        "thresholds": Arg("float_map", required=True, minimum=0,
                          help="{weight name or '*': |w| threshold}"),
    },
    "SensitivityPruner": {
        "sensitivities": Arg("float_map", required=True, minimum=0,
                             help="{weight name or '*': s}; threshold = s x std(w)"),
    },
    "SplicingPruner": {
        "sensitivities": Arg("float_map", required=True, minimum=0),
        "low_thresh_mult": Arg("float", required=True, minimum=0),
        "hi_thresh_mult": Arg("float", required=True, minimum=0),
        "sensitivity_multiplier": Arg("float", default=0.0, minimum=0),
    },
    "AutomatedGradualPruner": {
        "initial_sparsity": Arg("fraction", required=True),
        "final_sparsity": Arg("fraction", required=True),
        "weights": Arg("weights", help="weight names; absent: every conv and linear weight"),
    },
    **{name: _structured(groups, False) for name, groups in STRUCTURED.items()},
    **{f"{name}_AGP": _structured(groups, True) for name, groups in STRUCTURED.items()},
    "RandomLevelStructureParameterPruner": {
        "group_type": Arg("choice", required=True, choices=("Filters", "3D", "Channels", "Rows")),
        "sparsity_range": Arg("fraction_range", required=True),
        "weights": _WEIGHTS_OR_RULE, "group_dependency": _LEADER, "round_to": _ROUND_TO,
        "kwargs": Arg("any"),
    },
    "BlockRemover": {
        "criterion": Arg("choice", default="branch_norm", choices=("branch_norm", "bypass_loss")),
        "blocks_per_stage": Arg("int_list", minimum=0,
                                help="blocks removed from every stage (k), or per stage in "
                                     "order ([k1, k2, k3])"),
        "fraction": Arg("fraction", help="fraction of the eligible blocks removed, ranked "
                        "across stages"),
        "include_downsample": Arg("bool", default=False),
    },
    "LatencyBudgetPruner": {
        "speedup": Arg("float", minimum=1, help="target: the dense network's predicted latency "
                       "divided by this"),
        "latency_us": Arg("float", minimum=0, help="target: predicted latency in µs"),
        "round_to": Arg("int", minimum=1, help="filter group size [the latency table's step]"),
        "weights": Arg("weights", help="the blocks' inner-layer weights whose filters may go "
                       "(conv1, conv.0.0, mlp.fc1) and attention qkv weights whose heads may "
                       "go [every block's]"),
        "blocks": Arg("bool", default=True, help="whether whole blocks may go"),
        "heads": Arg("bool", default=False, help="whether attention heads may go, one at a "
                     "time (encoder blocks; every attention module keeps one)"),
        "include_downsample": Arg("bool", default=False),
        "criterion": Arg("choice", default="taylor", choices=("taylor", "loss"),
                         help="importance of a unit: Taylor estimate of the calibration loss's "
                              "increase when it is removed, or that increase measured"),
    },
    # not Distiller's: whole attention heads (prune/heads.py), removed physically through
    # torch-pruning's dependency graph
    "AttentionHeadPruner": {
        "desired_sparsity": Arg("fraction", required=True, help="fraction of every attention "
                                "module's heads removed (at least one kept)"),
        "criterion": Arg("choice", default="l1", choices=("l1", "l2"),
                         help="a head's mean |w| (l1) or RMS (l2) over its qkv rows and proj "
                              "columns"),
        "weights": Arg("weights", help="qkv weights of the attention modules to prune; absent: "
                       "every attention module (timm's layout: qkv, proj, head_dim, num_heads)"),
    },
    # not Distiller's: torch-pruning's own default (MetaPruner, L1 magnitude, one ratio for
    # every prunable layer, classifier ignored), the peer baseline (prune/tp_uniform.py)
    "TorchPruningUniform": {
        "ratio": Arg("fraction", required=True, help="channels removed from every prunable "
                     "layer"),
        "round_to": _ROUND_TO,
        "p": Arg("int", default=1, minimum=1, help="norm of the magnitude importance"),
    },
}

EXTENSIONS: dict[str, dict[str, Arg]] = {
    # Distiller's net_thinning extension: physically remove zeroed filters / channels
    # (StructureRemover, Distiller's later name, removes channels when thinning_func_str is
    # remove_channels, filters otherwise).
    name: {
        "thinning_func_str": Arg("choice", choices=("remove_filters", "remove_channels")),
        "arch": Arg("str"),
        "dataset": Arg("str"),
    }
    for name in ("FilterRemover", "ChannelRemover", "StructureRemover")
}

_THRESHOLD = Arg("choice", choices=("Mean_Abs", "Max"))
REGULARIZERS: dict[str, dict[str, Arg]] = {
    "L1Regularizer": {"reg_regims": Arg("name_map", required=True),
                      "threshold_criteria": _THRESHOLD},
    "GroupLassoRegularizer": {"reg_regims": Arg("name_map", required=True),
                              "threshold_criteria": _THRESHOLD},
    "GroupVarianceRegularizer": {"reg_regims": Arg("name_map", required=True),
                                 "threshold_criteria": _THRESHOLD},
}

# lr scheduler classes a recipe may step (Distiller's own PolynomialLR(T_max, power) and
# MultiStepMultiGammaLR, torch.optim.lr_scheduler's others); their arguments are checked
# against the class's signature and by building it when the recipe is bound to a model
# (before training).
LR_SCHEDULERS = (
    "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts",
    "PolynomialLR", "LinearLR", "ConstantLR", "MultiStepMultiGammaLR",
)

# The pruning-policy `args` Distiller accepted. Masks are held by torch.nn.utils.prune and stay
# applied after every optimizer step whatever `keep_mask` says; `mask_on_forward_only` and
# `use_double_copies` make the masks straight-through (masked weights keep training);
# `mini_batch_pruning_frequency: N` re-runs the pruner every N mini-batches of its epochs.
POLICY_ARGS: dict[str, Arg] = {
    "keep_mask": Arg("bool", default=False),
    "mini_batch_pruning_frequency": Arg("int", default=0, minimum=0),
    "mask_on_forward_only": Arg("bool", default=False),
    "mask_gradients": Arg("bool", default=False),
    "use_double_copies": Arg("bool", default=False),
    "discard_masks_at_minibatch_end": Arg("bool", default=False),
    "fold_batchnorm": Arg("bool", default=False),
    "skip_first_minibatch": Arg("bool", default=False),
    "levels": Arg("fraction_map", help="SparsityLevelParameterPruner's levels, for this policy"),
}
REGULARIZER_POLICY_ARGS: dict[str, Arg] = {"keep_mask": Arg("bool", default=False)}

# A recipe-level `knowledge_distillation:` section (Distiller's KnowledgeDistillationPolicy, which
# Distiller configured from its command line: --kd-teacher, --kd-temperature, --kd-distill-wt,
# --kd-student-wt): the dense model the fine-tuning starts from teaches the pruned one.
KNOWLEDGE_DISTILLATION: dict[str, Arg] = {
    "teacher": Arg("choice", default="dense", choices=("dense",)),
    "temperature": Arg("float", default=1.0, minimum=1e-6),
    "distill_weight": Arg("float", default=0.5, minimum=0),
    "student_weight": Arg("float", default=0.5, minimum=0),
}
