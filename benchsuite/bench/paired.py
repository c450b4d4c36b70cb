"""The headline speed-up: dense and pruned timed in one process, in paired rounds.

Separate benchmark_app processes see different machine states (a 2-vCPU shared VM drifts by
tens of percent between seconds), so the ratio of two such runs carries that drift. Here both
models are compiled once in this process (the OpenVINO runtime API) and warmed up, then timed
in many short rounds; in each round every model runs ``round_size`` inferences, in a random
order per round (randomized multiple interleaved trials, Abedi & Brecht, ICPE 2017). A round's
ratio (dense round median / pruned round median) is taken under one machine state, so slow
drifts cancel; the speed-up is the median of the per-round ratios with a bootstrap 95 %
interval over rounds, widened where the rounds say they are not exchangeable (core/stats.py).
Rounds go on until the interval's half-width is at most ``target_halfwidth`` of the estimate, or
``max_seconds`` have passed (calibration in the spirit of pytest-benchmark's).

``mode="duet"`` (Bulej et al., ICPE 2020) runs both models at once, one thread each, so both
see the same interference; on 2 vCPUs it measured wider than alternation (docs/measurements.md)
and stays an option.

Needs only openvino and numpy: it runs in the bench worker's environment (no torch).
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchsuite.bench.measurement import SPARSE_RATE
from benchsuite.core.records import FromDict
from benchsuite.core.stats import bootstrap_median_ci, estimate
from benchsuite.recipe.case import PAIRED_MODES

METHOD = "in-process paired rounds"
MIN_ESTIMATE_ROUNDS = 3  # fewer rounds: no estimate on the progress line yet


@dataclass(frozen=True)
class PairedSettings(FromDict):
    """Conditions and stopping rule of a paired measurement (all recorded with the result)."""

    device: str = "CPU"
    precision: str | None = "f32"  # None: the device's default (bf16 on CPUs with AMX)
    threads: int | None = 1  # inference threads per model; None: the runtime's default
    streams: int = 1
    pinning: bool | None = None  # ENABLE_CPU_PINNING; None: the runtime's default
    # CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE, given to both models (INT8 FullyConnected layers
    # at least this sparse run packed sparse kernels on CPUs with AMX); None: off
    sparse_weights_rate: float | None = None
    mode: str = "alternate"
    round_size: int = 25  # inferences per model per round
    warmup: int = 30  # inferences per model before the first round
    min_rounds: int = 20
    max_rounds: int = 2000
    target_halfwidth: float = 0.01  # stop when the 95 % interval is within ±1 % of the estimate
    max_seconds: float = 20.0  # ... or when this much time has gone into rounds
    check_every: int = 10  # rounds between two interval computations
    min_cpu_share: float = 0.9  # rounds in which the process got less CPU were preempted
    bootstrap: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in PAIRED_MODES:
            raise ValueError(f"paired mode {self.mode!r} not in {PAIRED_MODES}")
        if self.round_size < 1 or self.min_rounds < 2 or self.max_rounds < self.min_rounds:
            raise ValueError("round_size >= 1 and 2 <= min_rounds <= max_rounds required")
        if not 0 < self.target_halfwidth < 1:
            raise ValueError(f"target_halfwidth must be in (0, 1), got {self.target_halfwidth}")
        if self.max_seconds <= 0:
            raise ValueError(f"max_seconds must be > 0, got {self.max_seconds}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1 or None, got {self.threads}")
        if self.sparse_weights_rate is not None and not 0 < self.sparse_weights_rate <= 1:
            raise ValueError("sparse_weights_rate must be in (0, 1] or None, got "
                             f"{self.sparse_weights_rate}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class PairedResult:
    """A speed-up with its interval, and each model's latency from the same rounds (µs)."""

    speedup: float
    ci_low: float
    ci_high: float
    rounds: int
    seconds: float
    latency_median_us: dict[str, float]
    ratios: list[float] = field(default_factory=list)  # per round, reference / other
    round_medians_us: dict[str, list[float]] = field(default_factory=dict)
    conditions: dict[str, Any] = field(default_factory=dict)
    method: str = METHOD
    converged: bool = True  # False: the time cap came first

    @property
    def halfwidth(self) -> float:
        """Half the interval's width relative to the estimate (0.01 = ±1 %)."""
        return (self.ci_high - self.ci_low) / 2 / self.speedup

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def ratio_estimate(log_ratios: list[float], settings: PairedSettings) -> tuple[float, float, float]:
    """Speed-up and interval from one run of per-round log ratios (see core/stats.py)."""
    return estimate(log_ratios, settings.bootstrap, settings.seed).as_tuple()


def _config(settings: PairedSettings) -> dict[str, Any]:
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": settings.streams}
    pinning = settings.pinning
    if pinning is None and settings.mode == "duet":
        pinning = False  # pinned, both models' streams land on one core and queue for it
    if settings.threads is not None:
        config["INFERENCE_NUM_THREADS"] = settings.threads
    if pinning is not None:
        config["ENABLE_CPU_PINNING"] = pinning
    if settings.precision is not None:
        config["INFERENCE_PRECISION_HINT"] = settings.precision
    if settings.sparse_weights_rate is not None:
        config[SPARSE_RATE] = settings.sparse_weights_rate
    return config


class TimedModel:
    """One compiled model with its infer request and a fixed random input set once."""

    def __init__(self, core: Any, model: Path, settings: PairedSettings, seed: int) -> None:
        import openvino as ov

        self.compiled = core.compile_model(str(model), settings.device, _config(settings))
        self.request = self.compiled.create_infer_request()
        rng = np.random.default_rng(seed)
        for port in self.compiled.inputs:
            shape = list(port.get_shape())
            data = rng.standard_normal(shape).astype(np.float32)
            self.request.set_tensor(port, ov.Tensor(data))

    def run(self, n: int) -> list[float]:
        """Latencies (µs) of n sync inferences, as OpenVINO reports them per request."""
        out = []
        for _ in range(n):
            self.request.infer()
            out.append(self.request.latency * 1000.0)
        return out

    def run_until(self, stop: threading.Event, out: list[float]) -> None:
        while not stop.is_set():
            self.request.infer()
            out.append(self.request.latency * 1000.0)


Round = dict[str, tuple[float, float]]  # model -> (its figure this round, in µs; CPU share)
CLOCKS = ("latency", "cpu")


def _latency_figure(t: TimedModel, n: int) -> tuple[float, float]:
    """Median latency (µs) of n inferences and this process's CPU share while they ran (1.0:
    never preempted; about 0.5 when another runnable process shares our core)."""
    c0, w0 = time.process_time(), time.perf_counter()
    median = float(np.median(t.run(n)))
    return median, (time.process_time() - c0) / max(time.perf_counter() - w0, 1e-9)


def _cpu_figure(t: TimedModel, n: int) -> tuple[float, float]:
    """CPU µs per inference over n inferences, and the CPU share of the round: the latency
    table's clock (latency_table.py says why)."""
    c0, w0 = time.process_time(), time.perf_counter()
    t.run(n)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    return cpu / n * 1e6, cpu / max(wall, 1e-9)


def _round_alternate(timed: dict[str, TimedModel], names: list[str], rng: random.Random,
                     settings: PairedSettings, clock: str) -> Round:
    figure = _cpu_figure if clock == "cpu" else _latency_figure
    order = names[:]
    rng.shuffle(order)
    return {name: figure(timed[name], settings.round_size) for name in order}


def _round_duet(timed: dict[str, TimedModel], names: list[str], slice_s: float) -> Round:
    stop = threading.Event()
    lats: dict[str, list[float]] = {n: [] for n in names}
    threads = [threading.Thread(target=timed[n].run_until, args=(stop, lats[n])) for n in names]
    c0, w0 = time.process_time(), time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(slice_s)
    stop.set()
    for t in threads:
        t.join()
    share = (time.process_time() - c0) / max(time.perf_counter() - w0, 1e-9) / len(names)
    return {n: (float(np.median(v)) if v else float("nan"), share) for n, v in lats.items()}


def compile_models(models: dict[str, Path], settings: PairedSettings) -> dict[str, TimedModel]:
    """Each model compiled once in this process with the same settings, and warmed up."""
    import openvino as ov

    core = ov.Core()
    timed = {n: TimedModel(core, Path(p), settings, settings.seed + i)
             for i, (n, p) in enumerate(models.items())}
    for t in timed.values():
        t.run(settings.warmup)
    return timed


@dataclass
class Rounds:
    """The rounds of one paired measurement, in time order, and how they ended."""

    all: list[Round] = field(default_factory=list)
    min_share: float = 0.9
    converged: bool = False  # False: the time cap (or max_rounds) came first
    seconds: float = 0.0

    @property
    def clean(self) -> list[Round]:
        """The rounds in which this process was not preempted (CPU share >= min_share for
        every model): on an oversubscribed machine a preempted round's wall-clock latency
        measures the scheduler, not the model."""
        return [r for r in self.all if min(share for _, share in r.values()) >= self.min_share]

    def enough_clean(self, min_rounds: int) -> bool:
        """Whether at least ``min_rounds`` rounds were not preempted (the estimate then uses
        them alone)."""
        return len(self.clean) >= min_rounds

    def used(self, min_rounds: int) -> list[Round]:
        """The unpreempted rounds, or all when fewer than ``min_rounds`` of them remain."""
        return self.clean if self.enough_clean(min_rounds) else self.all

    def series(self, name: str, rounds: list[Round] | None = None) -> list[float]:
        return [r[name][0] for r in (self.all if rounds is None else rounds)]


def agreeing_interval(low: float, high: float, ratio_of_medians: float) -> tuple[float, float]:
    """The speed-up's interval, widened to hold the ratio of the two latencies shown beside it
    (each the median of the same rounds' medians). The speed-up is the median of per-round
    ratios; under drift the two estimators part, and a figure whose own latencies contradict
    its interval reads tighter than it is (issue 21: 1.172x [1.160, 1.183] beside 772.4 /
    691.3 us = 1.117x)."""
    return min(low, ratio_of_medians), max(high, ratio_of_medians)


def disturbed(rounds: Rounds, settings: PairedSettings) -> bool:
    """Whether the machine was too busy for the figure to be trusted: too few unpreempted rounds
    remained (all rounds were used), or most rounds were preempted (the clean ones then stand
    for a machine that was mostly elsewhere: a median CPU share of 0.45 once passed unflagged)."""
    if not rounds.all:
        return False
    shares = [min(share for _, share in r.values()) for r in rounds.all]
    some_preempted = len(rounds.clean) < len(rounds.all)
    return (some_preempted and not rounds.enough_clean(settings.min_rounds)) \
        or float(np.median(shares)) < settings.min_cpu_share


def run_rounds(timed: dict[str, TimedModel], settings: PairedSettings,
               done: Any, clock: str = "latency") -> Rounds:
    """The one paired-rounds loop (the speed-up, the A/A check and the latency table all use
    it): rounds in a random order per round (``settings.mode`` alternate; duet: every model at
    once, one thread each), every ``check_every`` rounds ``done(rounds)`` is asked whether the
    figures are tight enough; the time cap ``max_seconds`` (or ``max_rounds``) ends it
    otherwise. ``clock``: "latency" (OpenVINO's per-request latency, wall clock) or "cpu" (this
    process's CPU time per inference)."""
    if clock not in CLOCKS:
        raise ValueError(f"clock {clock!r} not in {CLOCKS}")
    names = list(timed)
    rng = random.Random(settings.seed)
    slice_s = 0.0
    if settings.mode == "duet":  # a slice as long as round_size inferences of the slower model
        slice_s = max(float(np.median(t.run(settings.round_size))) for t in timed.values())
        slice_s = slice_s * settings.round_size / 1e6
    rounds = Rounds(min_share=settings.min_cpu_share)
    t0 = time.perf_counter()
    while len(rounds.all) < settings.max_rounds:
        rounds.all.append(_round_duet(timed, names, slice_s) if settings.mode == "duet"
                          else _round_alternate(timed, names, rng, settings, clock))
        if len(rounds.all) % settings.check_every:
            continue
        if done(rounds):
            rounds.converged = True
            break
        if time.perf_counter() - t0 >= settings.max_seconds:
            break
    rounds.seconds = time.perf_counter() - t0
    return rounds


def measure_paired(models: dict[str, Path], settings: PairedSettings | None = None,
                   reference: str | None = None, progress: Any = None) -> PairedResult:
    """Time two models in paired rounds; speed-up = reference latency / other latency.

    ``models`` has exactly two entries; ``reference`` (default: the first) is the numerator,
    e.g. ``{"dense": dense_xml, "pruned": pruned_xml}``. For an A/A check pass the same file
    twice under two names: each is compiled separately. Rounds in which the process was
    preempted are left out of the estimate; when too few others remain by the time cap, all
    rounds are used and the result says ``disturbed``. ``progress`` gets a line at every
    check: the estimate so far and how many rounds were left out as preempted.
    """
    import openvino as ov

    from benchsuite.bench.devices import device_name

    settings = settings or PairedSettings()
    if len(models) != 2:
        raise ValueError(f"measure_paired takes two models, got {len(models)}")
    names = list(models)
    ref = reference or names[0]
    other = next(n for n in names if n != ref)

    def logs(rounds: list[Round]) -> list[float]:
        return [float(np.log(r[ref][0] / r[other][0])) for r in rounds]

    def done(rounds: Rounds) -> bool:
        # `Rounds.clean` is a new list at every call: whether the clean rounds are the ones
        # used is `enough_clean`, never an identity test (one made every measurement run to
        # its time cap, saying "only 740 unpreempted (need 20)")
        enough = rounds.enough_clean(settings.min_rounds)
        used = rounds.used(settings.min_rounds)
        if len(used) < MIN_ESTIMATE_ROUNDS:
            return False
        mid, low, high = ratio_estimate(logs(used), settings)
        if progress is not None:
            left_out = len(rounds.all) - len(used)
            progress(f"round {len(rounds.all)}: {mid:.3f}x [{low:.3f}, {high:.3f}]"
                     + (f", {left_out} preempted left out" if left_out else "")
                     + ("" if enough else f", only {len(rounds.clean)} unpreempted "
                                          f"(need {settings.min_rounds})"))
        return enough and (high - low) / 2 / mid <= settings.target_halfwidth

    timed = compile_models(models, settings)
    rounds = run_rounds(timed, settings, done)
    clean = rounds.clean
    used = rounds.used(settings.min_rounds)
    result = estimate(logs(used), settings.bootstrap, settings.seed)
    latency = {n: float(np.median(rounds.series(n, used))) for n in names}
    ci_low, ci_high = agreeing_interval(result.ci_low, result.ci_high,
                                        latency[ref] / latency[other])
    shares = [min(sh for _, sh in r.values()) for r in rounds.all]
    compiled = timed[ref].compiled
    conditions = {
        "device": settings.device, "device_name": device_name(settings.device),
        "precision": compiled_property(compiled, "INFERENCE_PRECISION_HINT", settings.precision),
        "precision_requested": settings.precision,
        "threads": compiled_property(compiled, "INFERENCE_NUM_THREADS", settings.threads),
        "streams": compiled_property(compiled, "NUM_STREAMS", settings.streams),
        "batch": int(compiled.inputs[0].get_shape()[0]),
        "input_shape": str([int(d) for d in compiled.inputs[0].get_shape()]),
        "runtime_version": ov.get_version(), "mode": settings.mode,
        "round_size": settings.round_size, "api": "sync",
        "sparse_weights_rate": settings.sparse_weights_rate,
        "cpu_share": float(np.median(shares)),
        "rounds_preempted": len(rounds.all) - len(clean),
        "disturbed": disturbed(rounds, settings),
        "drift": result.drift, "drifted": result.drifted,
        "widened_to_latencies": (ci_low, ci_high) != (result.ci_low, result.ci_high),
    }
    return PairedResult(
        speedup=result.speedup, ci_low=ci_low, ci_high=ci_high, rounds=len(used),
        seconds=rounds.seconds, latency_median_us=latency,
        ratios=[float(np.exp(v)) for v in logs(used)],
        round_medians_us={n: rounds.series(n, used) for n in names},
        conditions=conditions, method=f"{METHOD} ({settings.mode})",
        converged=rounds.converged,
    )


def cpu_paired(models: dict[str, Path], settings: PairedSettings,
               difference: tuple[str, str] | None = None,
               min_halfwidth_us: float = 1.0) -> dict[str, Any]:
    """Median CPU µs per inference of each model over paired rounds (the latency table's
    clock). With ``difference`` (a, b) the rounds stop once the interval of the per-round
    a - b is within ``target_halfwidth`` of it (or ``min_halfwidth_us``), else once each
    model's is; ``max_seconds`` caps them."""
    settings = dataclasses.replace(settings, mode="alternate")
    names = list(models)

    def series(rounds: Rounds) -> list[np.ndarray]:
        if difference:
            return [np.subtract(rounds.series(difference[0]), rounds.series(difference[1]))]
        return [np.asarray(rounds.series(n)) for n in names]

    def done(rounds: Rounds) -> bool:
        if len(rounds.all) < settings.min_rounds:
            return False
        for s in series(rounds):
            mid, low, high = bootstrap_median_ci(s, settings.bootstrap, seed=settings.seed)
            if (high - low) / 2 > max(settings.target_halfwidth * abs(mid), min_halfwidth_us):
                return False
        return True

    timed = compile_models(models, settings)
    rounds = run_rounds(timed, settings, done, clock="cpu")
    compiled = timed[names[0]].compiled
    return {
        "cpu_us": {n: float(np.median(rounds.series(n))) for n in names},
        "round_cpu_us": {n: rounds.series(n) for n in names},
        "difference_us": (float(np.median(series(rounds)[0])) if difference else None),
        "rounds": len(rounds.all),
        "cpu_share": float(np.median([s for r in rounds.all for _, s in r.values()])),
        "precision": compiled_property(compiled, "INFERENCE_PRECISION_HINT", settings.precision),
        "threads": compiled_property(compiled, "INFERENCE_NUM_THREADS", settings.threads),
        "streams": compiled_property(compiled, "NUM_STREAMS", settings.streams),
        "clock": "cpu time per inference",
    }


def compiled_property(compiled: Any, name: str, fallback: Any) -> Any:
    try:
        value = compiled.get_property(name)
    except RuntimeError:
        return fallback
    text = str(value)
    if name == "INFERENCE_PRECISION_HINT":
        from benchsuite.bench.bapp_output import normalise_precision

        return normalise_precision(text) or text
    try:
        return int(text)
    except ValueError:
        return text
