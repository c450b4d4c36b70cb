"""Benchmark settings (what to run) and results (what was measured), both plain JSON."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from benchsuite.core.records import FromDict
from benchsuite.recipe.case import PRECISIONS

if TYPE_CHECKING:
    import pandas

HINTS = ("latency", "throughput", "none")
APIS = ("sync", "async")
# OpenVINO's CPU property: INT8 FullyConnected weights at least this fraction zeros are packed
# and run sparse kernels (AMX CPUs; both weight dimensions multiples of 64)
SPARSE_RATE = "CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE"

PER_LAYER_COLUMNS = ("layer", "status", "layer_type", "exec_type", "real_time_us", "cpu_time_us")


@dataclass(frozen=True)
class BenchSettings(FromDict):
    """Conditions of one benchmark_app measurement.

    ``threads``/``streams`` need ``-hint none`` (a benchmark_app UI rule): the runner then sets the
    hint to ``none`` itself and records that in ``BenchResult.notes``.
    ``input_precision`` is passed as ``-ip``: benchmark_app feeds u8 random input unless told
    otherwise; ``"f32"`` (the default here) keeps the model's own f32 input, as torch feeds it.
    ``per_layer`` turns on the device's performance counters (``detailed_counters``), which
    cost some time per layer; set it False for latency-only runs.
    """

    device: str = "CPU"
    precision: str | None = None
    niter: int | None = 500
    time_s: float | None = None
    hint: str = "latency"
    api: str = "sync"
    threads: int | None = None
    streams: int | None = None
    batch: int | None = None
    repeats: int = 1
    executable: str | None = None
    input_precision: str | None = "f32"
    per_layer: bool = True  # False: -report_type no_counters (no PERF_COUNT overhead, no table)
    # CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE (passed by -load_config); None: the runtime's (off)
    sparse_weights_rate: float | None = None

    def __post_init__(self) -> None:
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r} not in {PRECISIONS} or None")
        if self.hint not in HINTS:
            raise ValueError(f"hint {self.hint!r} not in {HINTS}")
        if self.api not in APIS:
            raise ValueError(f"api {self.api!r} not in {APIS}")
        if self.niter is not None and self.time_s is not None:
            raise ValueError("niter and time_s are mutually exclusive; set one to None")
        if self.repeats < 1:
            raise ValueError("repeats must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> BenchSettings:
        return dataclasses.replace(self, **changes)


@dataclass
class BenchResult(FromDict):
    """One model's measurement: summary latencies in µs, conditions, per-layer table, repeats.

    With ``repeats > 1`` the latency fields are the median over repeats of each repeat's figure
    (median of medians, etc.); ``repeats`` holds each run, ``latency_cv`` the coefficient of
    variation of the repeat medians (0.0 for a single run).
    """

    latency_median_us: float
    latency_avg_us: float | None  # None where the tool does not report it (2021.4: min/max)
    latency_min_us: float | None
    latency_max_us: float | None
    throughput_fps: float
    iterations: int
    device: str
    precision: str
    precision_requested: str | None
    threads: int | None
    streams: int | None
    batch: int
    input_shape: str
    runtime_version: str
    executable: str
    hint: str
    api: str
    per_layer: list[dict[str, Any]] = field(default_factory=list)
    repeats: list[dict[str, Any]] = field(default_factory=list)
    latency_cv: float = 0.0
    latency_resolution_us: float = 0.01
    model: str = ""
    input_precision: str | None = None
    wall_time_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    device_name: str = "unknown"  # CPU model / GPU name and capabilities (devices.device_name)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def latency_repeat_min_us(self) -> float:
        return min((r["latency_median_us"] for r in self.repeats), default=self.latency_median_us)

    @property
    def latency_repeat_max_us(self) -> float:
        return max((r["latency_median_us"] for r in self.repeats), default=self.latency_median_us)

    def per_layer_frame(self) -> pandas.DataFrame:
        import pandas

        frame = pandas.DataFrame(self.per_layer)
        extra = [c for c in frame.columns if c not in PER_LAYER_COLUMNS]
        return frame.reindex(columns=[*PER_LAYER_COLUMNS, *extra])
