"""The stages' job specs: typed, and plain JSON objects at the edge (the broker carries them).

Each built-in stage's spec is a `TypedDict` here: a type checker reads the fields where a spec is
built (`pipeline/run.py`) or read (`pipeline/stages.py`), and `check_spec` checks a spec that
came from elsewhere (a message from Redis, a user's call) against the same declaration: a
missing field or one of the wrong type is a `UserError` naming it, before any work, rather
than a `KeyError` or `TypeError` inside the stage (retried by a worker). Keys a spec does not
declare are refused too, so a typo is not silently ignored; the `settings` of a bench job are
checked by the bench stage itself (`pipeline/stages.py`: BenchSettings' fields).

No torch, OpenVINO, pytest or Redis here: both worker environments import it. (No
`from __future__ import annotations`: the fields' types are read at run time.)
"""

import types
import typing
from typing import Any, NotRequired, TypedDict, Union

from benchsuite.core.errors import UserError


class DataSpec(TypedDict):
    """What a model is trained on: the fields of a case that decide its data and weights."""

    model: str  # a built-in name or module:callable (trust.py: a worker's operator allows it)
    dataset: str
    seed: int
    epochs: int
    data_dir: NotRequired[str | None]
    train_images: NotRequired[int | None]  # at most this many training images (None: all)


class TrainSpec(DataSpec):
    """`train`: the dense model (or a dense-zoo control) from scratch, cached by content."""


class PruneSpec(DataSpec):
    """`prune`: the recipe applied to the dense checkpoint while fine-tuning for `epochs`."""

    recipe_text: str
    recipe_name: NotRequired[str | None]
    control: NotRequired[str | None]  # "scratch": also train the pruned architecture anew
    dense_epochs: NotRequired[int | None]  # the scratch control's share of the budget
    epoch_top1: NotRequired[bool]  # validation Top-1 after every epoch (multi-fidelity)
    latency_table: NotRequired[dict[str, Any]]  # LatencyBudgetPruner's table (JSON)


class CalibrateSpec(TypedDict):
    """`calibrate`: the dense IR against itself (A/A)."""

    input_shape: list[int]
    settings: dict[str, Any]  # BenchSettings fields
    paired: NotRequired[dict[str, Any] | None]  # PairedSettings fields


class BenchSpec(CalibrateSpec):
    """`bench`: dense against pruned, paired rounds + benchmark_app (+ INT8, + Top-1)."""

    int8: NotRequired[bool]
    latency_table: NotRequired[dict[str, Any]]  # for the predicted latency in the row


class LatencyTableSpec(CalibrateSpec):
    """`latency_table`: the per-op table of the dense model's geometries."""

    network: str
    step: int


class CalibrationNetSpec(TypedDict):
    """`calibration_net`: the latency table's calibration network (the model untrained, its
    blocks' inner widths halved), as ONNX."""

    model: str  # as DataSpec's
    input_shape: list[int]
    num_classes: int
    step: int


def _kinds(hint: Any) -> tuple[Any, ...]:
    """The runtime types a field's annotation admits (None for an optional field's null)."""
    origin = typing.get_origin(hint)
    if origin is NotRequired:
        return _kinds(typing.get_args(hint)[0])
    if origin in (Union, types.UnionType):
        return tuple(k for a in typing.get_args(hint) for k in _kinds(a))
    if hint is type(None):
        return (None,)
    if hint is Any:
        return (object,)
    return (origin or hint,)


def check_spec(stage: str, spec: Any, schema: type) -> None:
    """Raise a UserError naming the field when `spec` does not fit `schema` (a TypedDict)."""
    if not isinstance(spec, dict):
        raise UserError(f"malformed {stage} job: its spec is a {type(spec).__name__}, not an "
                        "object")
    hints = typing.get_type_hints(schema, include_extras=True)
    unknown = sorted(str(k) for k in spec if k not in hints)
    if unknown:
        raise UserError(f"malformed {stage} job: unknown spec field(s) "
                        f"{', '.join(map(repr, unknown))[:200]}; known: {', '.join(hints)}")
    for key, hint in hints.items():
        if key not in spec:
            if typing.get_origin(hint) is not NotRequired:
                raise UserError(f"malformed {stage} job: its spec lacks {key!r}")
            continue
        value, kinds = spec[key], _kinds(hint)
        if not any(value is None if k is None else isinstance(value, k)
                   and (k is bool or not isinstance(value, bool)) for k in kinds):
            want = " or ".join("null" if k is None else getattr(k, "__name__", str(k))
                               for k in kinds)
            raise UserError(f"malformed {stage} job: spec.{key} must be {want}, got "
                            f"{type(value).__name__} {value!r:.80}")
