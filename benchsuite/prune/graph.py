"""torch-pruning's dependency graph: which layers are coupled, and physical removal."""

from __future__ import annotations

import warnings

import torch
import torch_pruning as tp
from torch import nn

from benchsuite.models.modes import eval_mode
from benchsuite.prune.masks import clone_model, make_permanent, masks_lifted


def dependency_graph(model: nn.Module, example_input: torch.Tensor) -> tp.DependencyGraph:
    """Trace in eval mode, whatever mode the model is in: traced in training mode (as it is
    when thinning runs at an epoch start), BatchNorm channels were removed out of step with
    their convs here and fine-tuning diverged."""
    with eval_mode(model), warnings.catch_warnings():
        # a ViT's class token and position embeddings: the embedding width, which no pruner of
        # the suite's removes except torch-pruning's own (tp_uniform), whose MetaPruner warns
        # itself
        warnings.filterwarnings("ignore", message="Unwrapped parameters detected")
        return tp.DependencyGraph().build_dependency(model, example_inputs=example_input)


def coupled_filters(model: nn.Module, example_input: torch.Tensor,
                    weights: list[str]) -> dict[str, list[str]]:
    """For each conv weight, the other convs whose output channels are tied to its own (a
    residual add ties them), from one trace of the dependency graph."""
    clone = clone_model(model)
    make_permanent(clone)
    dg = dependency_graph(clone, example_input)
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


# Layers a channel passes through unchanged in count: pruning a producer's filters prunes their
# channels too (torch-pruning does it), so they do not stop the producer from being pruned.
_PASS_THROUGH = (nn.modules.batchnorm._BatchNorm, nn.PReLU)
GROUP_TYPES_BY_RULE = ("Filters", "Channels", "Rows")


def _depthwise(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels \
        == m.out_channels


def _plain(m: nn.Module) -> bool:
    """A conv without groups or a linear layer: what the rule may select."""
    return isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.groups == 1)


def _out_handler(m: nn.Module):
    return tp.prune_linear_out_channels if isinstance(m, nn.Linear) else tp.prune_conv_out_channels


def _in_handler(m: nn.Module):
    return tp.prune_linear_in_channels if isinstance(m, nn.Linear) else tp.prune_conv_in_channels


def _attention_op(target: nn.Module) -> bool:
    """A torch-pruning op of attention: q, k, v split from one tensor (unbind) or a product of
    two activations (q @ k^T, attn @ v: a batched matmul). Channels through it are head
    dimensions, which a reshape into heads ties together: no layer owns them alone."""
    kind = type(target).__name__
    return kind == "_UnbindOp" or (kind == "_ElementWiseOp"
                                   and "Bmm" in str(getattr(target, "_grad_fn", "")))


def _readers_and_blockers(group, own: nn.Module, names: dict[int, str], side: str
                          ) -> tuple[list[str], list[str], list[str]]:
    """Sort a torch-pruning group's members: (consumers reading the channels, producers
    writing them, reasons the channels cannot be removed by pruning `own` alone)."""
    readers: list[str] = []
    writers: list[str] = []
    blockers: list[str] = []
    for dep, _ in group.items:
        target = dep.target.module
        handler = getattr(dep.handler, "__name__", "")
        if isinstance(target, nn.Module) and not list(target.parameters(recurse=False)) \
                and type(target).__module__.startswith("torch_pruning"):
            if type(target).__name__ == "_OutputOp":
                blockers.append("its channels are an output of the model")
            elif _attention_op(target):
                blockers.append("its channels are attention heads' dimensions")
            continue  # torch-pruning's ops (elementwise, cat, reshape, ...): an add's other
            # inputs show up in the group as writers of their own
        name = names.get(id(target), type(target).__name__)
        if target is own and handler == f"prune_{side}_channels":
            continue
        if isinstance(target, _PASS_THROUGH) or _depthwise(target):
            continue
        if _plain(target) and handler == "prune_in_channels":
            readers.append(name)
        elif _plain(target) and handler == "prune_out_channels":
            writers.append(name)
        else:
            blockers.append(f"its channels pass through {name} ({type(target).__name__})")
    return readers, writers, blockers


def prunable_layers(model: nn.Module, example_input: torch.Tensor) -> dict[str, list[str]]:
    """The layers a structured pruner selects by rule, per group type, as weight names in model
    order (torch-pruning's dependency graph, traced once):

    - `Filters`: every conv (no groups) whose output feeds only prunable consumers: convs and
      linear layers that read it (through batch norm, activations, pooling, depthwise convs,
      concatenation, reshapes), at least one of them; not a conv whose filters are tied to
      another layer's (a residual add), nor one whose output is the model's output.
    - `Channels`: every conv (no groups) whose input channels are written only by convs of the
      `Filters` rule and read by no other layer (removing a channel removes its producer's
      filter and nothing else).
    - `Rows`: every linear layer whose input features are, in the same way, its own (a ViT's
      MLP `fc2`, not its attention `proj`, whose input features are heads' dimensions).
    """
    clone = clone_model(model)
    make_permanent(clone)
    dg = dependency_graph(clone, example_input)
    names = {id(m): n for n, m in clone.named_modules()}
    layers = [(n, m) for n, m in clone.named_modules() if _plain(m) and m in dg.module2node]
    free: set[str] = set()
    for name, m in layers:
        width = m.out_features if isinstance(m, nn.Linear) else m.out_channels
        group = dg.get_pruning_group(m, _out_handler(m), idxs=list(range(width)))
        readers, writers, blockers = _readers_and_blockers(group, m, names, "out")
        if readers and not writers and not blockers:
            free.add(name)
    out: dict[str, list[str]] = {t: [] for t in GROUP_TYPES_BY_RULE}
    for name, m in layers:
        if name in free and isinstance(m, nn.Conv2d):
            out["Filters"].append(f"{name}.weight")
        width = m.in_features if isinstance(m, nn.Linear) else m.in_channels
        group = dg.get_pruning_group(m, _in_handler(m), idxs=list(range(width)))
        readers, writers, blockers = _readers_and_blockers(group, m, names, "in")
        if writers and not readers and not blockers and set(writers) <= free:
            out["Rows" if isinstance(m, nn.Linear) else "Channels"].append(f"{name}.weight")
    return out


_BY_RULE: dict[tuple, dict[str, list[str]]] = {}


def layers_by_rule(model: nn.Module, example_input: torch.Tensor, group_type: str) -> list[str]:
    """`prunable_layers(...)[group_type]`, cached by architecture."""
    key = architecture_key(model, example_input)
    if key not in _BY_RULE:
        _BY_RULE[key] = prunable_layers(model, example_input)
    return list(_BY_RULE[key][group_type])


_NEXT_BN: dict[tuple, dict[str, str]] = {}


def following_batchnorms(model: nn.Module, example_input: torch.Tensor) -> dict[str, str]:
    """conv name -> the BatchNorm2d that alone reads its output, from the dependency graph
    (whatever the modules are called), cached by architecture."""
    key = architecture_key(model, example_input)
    if key not in _NEXT_BN:
        clone = clone_model(model)
        make_permanent(clone)
        dg = dependency_graph(clone, example_input)
        names = {id(m): n for n, m in clone.named_modules()}
        out: dict[str, str] = {}
        for name, m in clone.named_modules():
            node = dg.module2node.get(m) if isinstance(m, nn.Conv2d) else None
            if node is not None and len(node.outputs) == 1 \
                    and isinstance(node.outputs[0].module, nn.BatchNorm2d):
                out[name] = names[id(node.outputs[0].module)]
        _NEXT_BN[key] = out
    return _NEXT_BN[key]


def _zero(weight: torch.Tensor, dim: int) -> set[int]:
    w = weight.detach().transpose(0, dim).flatten(1)
    return set(torch.nonzero((w == 0).all(dim=1)).flatten().tolist())


def _exact_linear_group(group) -> bool:
    """Whether removing a linear layer's zeroed input features through `group` removes only
    what no layer reads: not when the features pass through a normalisation over them
    (LayerNorm: the others' statistics change) or are attention heads' dimensions."""
    for dep, _ in group.items:
        target = dep.target.module
        if isinstance(target, nn.LayerNorm | nn.GroupNorm) or _attention_op(target):
            return False
    return True


def _thin_linear(model: nn.Module, dg: tp.DependencyGraph, removed: dict[str, int]) -> None:
    """`thin(kind='Channels')` for linear layers: input features zeroed in every linear layer
    and conv reading them (Distiller's `Rows` of a pruner: a ViT MLP's hidden units), removed
    with their producers' outputs."""
    for name, layer in list(model.named_modules()):
        if not isinstance(layer, nn.Linear):
            continue
        idxs = _zero(layer.weight, 1)
        if not idxs or len(idxs) >= layer.weight.shape[1]:
            continue
        group = dg.get_pruning_group(layer, tp.prune_linear_in_channels, idxs=sorted(idxs))
        if not _exact_linear_group(group):
            continue
        for dep, _ in group.items:
            target = dep.target.module
            if isinstance(target, nn.Linear | nn.Conv2d) and dep.handler in (
                    tp.prune_linear_in_channels, tp.prune_conv_in_channels):
                idxs &= _zero(target.weight, 1)
        if not idxs:
            continue
        dg.get_pruning_group(layer, tp.prune_linear_in_channels, idxs=sorted(idxs)).prune()
        removed[name] = len(idxs)


def thin(model: nn.Module, example_input: torch.Tensor, kind: str = "Filters") -> dict[str, int]:
    """Physically remove zeroed filters (kind='Filters') or input channels ('Channels').

    A filter is removed only when every convolution coupled to it has it zeroed, and a channel
    only when every convolution reading it has it zeroed, so nothing that still carries a
    weight is cut. 'Channels' also removes a linear layer's input features zeroed in every layer
    reading them (`_thin_linear`). Element-wise masks on the remaining tensors are kept. Returns
    the number of structures removed per root layer.
    """
    removed: dict[str, int] = {}
    with masks_lifted(model):
        dg = dependency_graph(model, example_input)
        handler = tp.prune_conv_out_channels if kind == "Filters" else tp.prune_conv_in_channels
        dim = 0 if kind == "Filters" else 1
        if kind == "Channels":
            _thin_linear(model, dg, removed)
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
    return removed
