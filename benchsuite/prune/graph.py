"""torch-pruning's dependency graph: which layers are coupled, and physical removal."""

from __future__ import annotations

import torch
import torch_pruning as tp
from torch import nn

from benchsuite.prune.masks import clone_model, make_permanent


def _dg(model: nn.Module, example_input: torch.Tensor) -> tp.DependencyGraph:
    """Trace in eval mode, whatever mode the model is in: traced in training mode (as it is
    when thinning runs at an epoch start), BatchNorm channels were removed out of step with
    their convs here and fine-tuning diverged."""
    was_training = model.training
    model.eval()
    try:
        return tp.DependencyGraph().build_dependency(model, example_inputs=example_input)
    finally:
        model.train(was_training)




def coupled_filters(model: nn.Module, example_input: torch.Tensor,
                    weights: list[str]) -> dict[str, list[str]]:
    """For each conv weight, the other convs whose output channels are tied to its own (a
    residual add ties them), from one trace of the dependency graph."""
    clone = clone_model(model)
    make_permanent(clone)
    dg = _dg(clone, example_input)
    names = {id(m): n for n, m in clone.named_modules()}
    out: dict[str, list[str]] = {}
    for weight in weights:
        conv = clone.get_submodule(weight.rpartition(".")[0])
        group = dg.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=[0])
        out[weight] = [
            names[id(dep.target.module)] + ".weight" for dep, _ in group.items
            if isinstance(dep.target.module, nn.Conv2d)
            and dep.handler == tp.prune_conv_out_channels and dep.target.module is not conv
        ]
    return out


_COUPLING: dict[tuple, dict[str, list[str]]] = {}


def architecture_key(model: nn.Module, example_input: torch.Tensor) -> tuple:
    """What coupling depends on: the module tree with its conv/linear/bn shapes."""
    shapes = tuple((n, type(m).__name__, tuple(getattr(m, "weight", torch.empty(0)).shape))
                   for n, m in model.named_modules())
    return (type(model).__name__, tuple(example_input.shape), shapes)


def all_coupled_filters(model: nn.Module, example_input: torch.Tensor) -> dict[str, list[str]]:
    """`coupled_filters` for every conv weight, cached by architecture (it depends on nothing
    else), so pruners of one recipe and models of one architecture trace the graph once."""
    key = architecture_key(model, example_input)
    if key not in _COUPLING:
        convs = [f"{n}.weight" for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
        _COUPLING[key] = coupled_filters(model, example_input, convs)
    return _COUPLING[key]


def _zero(weight: torch.Tensor, dim: int) -> set[int]:
    w = weight.detach().transpose(0, dim).flatten(1)
    return set(torch.nonzero((w == 0).all(dim=1)).flatten().tolist())


def thin(model: nn.Module, example_input: torch.Tensor, kind: str = "Filters") -> dict[str, int]:
    """Physically remove zeroed filters (kind='Filters') or input channels ('Channels').

    A filter is removed only when every convolution coupled to it has it zeroed, and a channel
    only when every convolution reading it has it zeroed, so nothing that still carries a
    weight is cut. Element-wise masks on the remaining tensors are kept. Returns the number of
    structures removed per root layer.
    """
    masked = make_permanent(model)
    dg = _dg(model, example_input)
    handler = tp.prune_conv_out_channels if kind == "Filters" else tp.prune_conv_in_channels
    dim = 0 if kind == "Filters" else 1
    removed: dict[str, int] = {}
    for name, conv in list(model.named_modules()):
        if not isinstance(conv, nn.Conv2d):
            continue
        idxs = _zero(conv.weight, dim)
        if not idxs or len(idxs) >= conv.weight.shape[dim]:
            continue
        group = dg.get_pruning_group(conv, handler, idxs=sorted(idxs))
        for dep, _ in group.items:
            target = dep.target.module
            if isinstance(target, nn.Conv2d) and dep.handler == handler:
                idxs &= _zero(target.weight, dim)
        if not idxs:
            continue
        dg.get_pruning_group(conv, handler, idxs=sorted(idxs)).prune()
        removed[name] = len(idxs)
    # restore element-wise masks where the model still has zeros under them
    from benchsuite.prune.masks import set_mask

    for pname in masked:
        param = model.get_parameter(pname)
        set_mask(model, pname, (param.detach() != 0).float())
    return removed
