"""The result of one case: one typed record, whose fields say where each goes.

`CaseResult` is built from the stages' results (`pipeline/assemble.py`), cached as JSON,
carried to the session summary as JSON, and written to every output by the recording service
(`track/recording.py`). Each field's `to` names its destinations:

    table     the results table (results.csv / results.parquet), one column per field
    config    the W&B run's config (what the case is, and its conditions)
    summary   the W&B run's summary (what was measured)
    bench     pytest-benchmark JSON's `extra_info`
    baseline  the latency baseline's entry of the case
    condition the conditions a latency figure is measured under (baseline, summary line)
    report    the HTML report's table
    trial     the metrics a sweep engine stores with each trial

VERDICT is the verdict's figures, each with its interval and the method that made it: they go
to the table, W&B's summary, pytest-benchmark and the report. The outputs read their key lists
from here (`keys_for`), so a new field is declared once.

Read access works as on a dict (`result["top1"]`, `result.get("x")`), so a test written
against the row dict of earlier versions keeps working.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from benchsuite.core.records import FromDict

if TYPE_CHECKING:
    from benchsuite.core.threshold import Threshold

# the latency model's prediction fields (bench/latency_table.py: predict_pair)
PREDICTION_KEYS = ("latency_predicted_us", "speedup_predicted", "latency_table_sum_us",
                   "dense_latency_table_sum_us", "dense_latency_table_measured_us")
TABLE, CONFIG, SUMMARY, BENCH, BASELINE, CONDITION, REPORT, TRIAL = (
    "table", "config", "summary", "bench", "baseline", "condition", "report", "trial")
VERDICT = (TABLE, SUMMARY, BENCH, REPORT)
IDENTITY = (TABLE, CONFIG)
CONDITIONS = (TABLE, CONFIG, BENCH, CONDITION)


def _to(*dests: str | tuple[str, ...], default: Any = None) -> Any:
    flat = frozenset(d for group in dests for d in ((group,) if isinstance(group, str)
                                                    else group))
    return field(default=default, metadata={"to": flat})


@dataclass
class CaseResult(FromDict):
    # what the case is
    case_id: str = _to(TRIAL, IDENTITY, default="")
    label: str = _to(TRIAL, IDENTITY, REPORT, default="")
    recipe: str = _to(IDENTITY, REPORT, default="")
    recipe_params: str = _to(IDENTITY, default="{}")  # JSON of the effective template params
    model: str = _to(IDENTITY, REPORT, default="")
    dataset: str = _to(IDENTITY, default="")
    seed: int | None = _to(IDENTITY)
    train_images: int | None = _to(IDENTITY)  # the training images the dense model saw
    # "" (a pruning case), "scratch" (with its scratch control), "zoo:MODEL" (a dense control)
    control: str = _to(IDENTITY, REPORT, default="")
    sparsity: float | None = _to(IDENTITY, REPORT)
    # conditions of the latency figures
    device: str | None = _to(CONDITIONS, REPORT)
    device_name: str | None = _to(CONDITIONS)
    precision: str | None = _to(CONDITIONS, REPORT)
    precision_requested: str | None = _to(IDENTITY)
    threads: int | None = _to(CONDITIONS)
    streams: int | None = _to(CONDITIONS)
    batch: int | None = _to(CONDITIONS)
    input_shape: str | None = _to(CONDITIONS)
    # accuracy, each Top-1 with its 95 % Wilson interval over test_images
    top1: float = _to(TRIAL, VERDICT, BASELINE, default=float("nan"))
    top1_ci_low: float | None = _to(VERDICT)
    top1_ci_high: float | None = _to(VERDICT)
    test_images: int | None = _to(VERDICT)
    top5: float | None = _to(TABLE, SUMMARY)
    dense_top1: float = _to(TRIAL, VERDICT, BASELINE, default=float("nan"))
    dense_top1_ci_low: float | None = _to(VERDICT)
    dense_top1_ci_high: float | None = _to(VERDICT)
    dense_top5: float | None = _to(TABLE, SUMMARY)
    # the validation split (held out of the training images): what chooses reads it
    val_top1: float | None = _to(TRIAL, TABLE, SUMMARY, REPORT)
    dense_val_top1: float | None = _to(TRIAL, TABLE, SUMMARY)
    val_images: int | None = _to(TABLE, SUMMARY)
    # the scratch control: the pruned architecture trained from scratch, the same epochs in all;
    # scratch_top1 is its deployed model's as top1 is the pruned one's (top1_method: the same
    # conversion, INT8 quantization and precision), torch's where no bench stage scored it
    scratch_top1: float | None = _to(TABLE, SUMMARY, REPORT)
    scratch_top1_ci_low: float | None = _to(TABLE, SUMMARY)
    scratch_top1_ci_high: float | None = _to(TABLE, SUMMARY)
    scratch_top1_torch: float | None = _to(TABLE, SUMMARY)
    scratch_val_top1: float | None = _to(TABLE, SUMMARY)
    scratch_epochs: int | None = _to(TABLE, SUMMARY)
    scratch_seconds: float | None = _to(TABLE)
    # top1/dense_top1 are the deployed (OpenVINO) models' at the precision benchmarked;
    # the torch models' figures beside them (pipeline/assemble.py); INT8's quantization
    top1_method: str | None = _to(TABLE, SUMMARY, BENCH)
    top1_torch: float | None = _to(TABLE, SUMMARY, BENCH)
    top1_torch_ci_low: float | None = _to(TABLE, SUMMARY)
    top1_torch_ci_high: float | None = _to(TABLE, SUMMARY)
    dense_top1_torch: float | None = _to(TABLE, SUMMARY, BENCH)
    dense_top1_torch_ci_low: float | None = _to(TABLE, SUMMARY)
    dense_top1_torch_ci_high: float | None = _to(TABLE, SUMMARY)
    quantization: str | None = _to(TABLE, CONFIG, BENCH)
    int8_layers: str | None = _to(TABLE, SUMMARY)
    # OpenVINO's CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE the INT8 case ran with (None: off)
    sparse_weights_rate: float | None = _to(CONDITIONS, SUMMARY)
    # size
    params: int | None = _to(TRIAL, TABLE, SUMMARY)
    dense_params: int | None = _to(TABLE, SUMMARY)
    macs: int | None = _to(TRIAL, TABLE, SUMMARY, BENCH)
    dense_macs: int | None = _to(TRIAL, TABLE, SUMMARY, BENCH)
    weight_sparsity: float | None = _to(TABLE, SUMMARY, REPORT)
    # the speed-up: dense / pruned latency, with its interval and method
    speedup: float = _to(TRIAL, VERDICT, BASELINE, default=float("nan"))
    speedup_ci_low: float | None = _to(TRIAL, VERDICT, BASELINE)
    speedup_ci_high: float | None = _to(TRIAL, VERDICT, BASELINE)
    speedup_method: str | None = _to(VERDICT, BASELINE)
    bench_rounds: int | None = _to(VERDICT)
    bench_cpu_share: float | None = _to(VERDICT)
    bench_disturbed: bool | None = _to(VERDICT)
    # the ratio's drift: second half of the rounds over the first; drifted = beyond noise
    bench_drift: float | None = _to(VERDICT)
    bench_drifted: bool | None = _to(VERDICT)
    speedup_benchmark_app: float | None = _to(VERDICT)
    latency_median_us: float = _to(TRIAL, VERDICT, BASELINE, default=float("nan"))
    dense_latency_median_us: float = _to(TRIAL, VERDICT, BASELINE, default=float("nan"))
    # benchmark_app's own statistics
    latency_avg_us: float | None = _to(TABLE, SUMMARY)
    latency_min_us: float | None = _to(TABLE, SUMMARY)
    latency_max_us: float | None = _to(TABLE, SUMMARY)
    latency_cv: float | None = _to(TABLE, SUMMARY)
    dense_latency_cv: float | None = _to(TABLE)
    fps: float | None = _to(TABLE, SUMMARY)
    dense_fps: float | None = _to(TABLE, SUMMARY)
    runtime_version: str | None = _to(CONDITIONS, REPORT)
    # the latency model's prediction (benchsuite/track/latency_model.py), when the case had a table
    latency_predicted_us: float | None = _to(TABLE, SUMMARY)
    speedup_predicted: float | None = _to(TABLE, SUMMARY)
    latency_table_sum_us: float | None = _to(TABLE)
    dense_latency_table_sum_us: float | None = _to(TABLE)
    dense_latency_table_measured_us: float | None = _to(TABLE)
    # budget and provenance
    finetune_epochs: int | None = _to(IDENTITY)
    dense_epochs: int | None = _to(IDENTITY)
    train_seconds: float | None = _to(TABLE)
    finetune_seconds: float | None = _to(TABLE)
    # the pruned (and scratch-control) models came from the prune worker's cache: this run
    # fine-tuned nothing (an INT8 case after its f32 one; `pipeline/stages.py`)
    pruned_cached: bool | None = _to(TABLE)
    export_seconds: float | None = _to(TABLE)
    bench_seconds: float | None = _to(TABLE)
    wall_seconds: float | None = _to(TABLE)
    git_sha: str | None = _to(IDENTITY)
    timestamp: str | None = _to(TABLE, REPORT)
    # issue 14 (search): the KD teacher's Top-1 (the dense model's, when the recipe distils)
    # and the held-out Top-1 after each fine-tuning epoch (multi-fidelity; a JSON list)
    kd_teacher_top1: float | None = _to(TABLE, SUMMARY)
    epoch_top1: str | None = _to(TABLE, SUMMARY)
    # the decision (the recording service sets them: the floor depends on the threshold)
    threshold: float | None = _to(TRIAL, TABLE, SUMMARY, REPORT)
    passed: bool | None = _to(TRIAL, TABLE, SUMMARY, REPORT)
    wandb_run: str | None = _to(TABLE, REPORT)  # the run's URL (online) or local folder
    # beside the table: per-layer tables (per_layer/<case_id>.csv), the rounds (pytest-benchmark:
    # each model's latency per round of the paired measurement, the rounds the speed-up used)
    per_layer: dict[str, list[dict]] = field(default_factory=dict)
    pruned_round_medians_us: list[float] = field(default_factory=list)
    dense_round_medians_us: list[float] = field(default_factory=list)
    # state, not results
    cached: bool = False  # taken from the result cache
    recorded: bool = False  # in the results table and W&B (the cache's flag)
    outcome: str | None = None  # the test's outcome, set by the session's collector
    artifacts: dict[str, str] = field(default_factory=dict)

    # --- dict-like read access ---------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in _NAMES

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    def keys(self) -> Iterator[str]:
        return iter(_NAMES)

    # --- conversions -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, compact: bool = False) -> str:
        """JSON of the record; `compact` leaves out the bulky per-layer tables and artifacts."""
        data = self.to_dict()
        if compact:
            data = {k: v for k, v in data.items() if k not in ("per_layer", "artifacts")}
        return json.dumps(data, default=str)

    def select(self, destination: str) -> dict[str, Any]:
        """The fields that go to `destination` (e.g. SUMMARY), in declaration order."""
        return {k: getattr(self, k) for k in keys_for(destination)}

    def on_validation(self, threshold: Threshold) -> tuple[float, float, bool]:
        """(Top-1, floor, holds) on the validation split: what a search chooses by (the test
        split is the verdict's, read once). A row without a validation split (older rows)
        falls back to the test split's figures."""
        if _missing(self.val_top1) or _missing(self.dense_val_top1):
            floor = threshold.floor(self.dense_top1)
            return self.top1, floor, bool(self.top1 >= floor)
        floor = threshold.floor(self.dense_val_top1)
        return self.val_top1, floor, bool(self.val_top1 >= floor)

    def decided(self, floor: float) -> CaseResult:
        """With the accuracy floor applied: threshold and passed set."""
        return replace(self, threshold=floor, passed=bool(self.top1 >= floor))


_NAMES = tuple(f.name for f in fields(CaseResult))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)  # None or NaN


def keys_for(destination: str) -> tuple[str, ...]:
    """The names of the fields that go to `destination`, in declaration order."""
    return tuple(f.name for f in fields(CaseResult) if destination in f.metadata.get("to", ()))


COLUMNS = keys_for(TABLE)
VERDICT_KEYS = tuple(k for k in COLUMNS if all(k in keys_for(d) for d in VERDICT))
# what the outputs accept: a record, or a row dict with its field names (a results-table row)
Row = CaseResult | dict[str, Any]


def scratch_gap(row: Row) -> tuple[float, str] | None:
    """The pruned model's Top-1 minus its scratch control's, in points, like with like: the
    deployed models' ("deployed": the row's `top1_method`) where the bench stage scored the
    scratch model too, else torch's ("torch"); None for a row without a scratch control."""
    scratch = row.get("scratch_top1")
    if _missing(scratch):
        return None
    if not _missing(row.get("scratch_top1_torch")):
        return (float(row["top1"]) - float(scratch)) * 100, "deployed"
    pruned = row.get("top1_torch")
    pruned = row.get("top1") if _missing(pruned) else pruned
    return (float(pruned) - float(scratch)) * 100, "torch"
