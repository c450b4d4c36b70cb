"""Conv specs, the per-conv latency table and the predictor (pure Python: no torch, no openvino).

A network's latency at batch 1 is modelled as

    latency = scale x sum over its convolutions of T(k, stride, h, w; c_in, c_out)

where T is the marginal latency of one convolution with its folded BatchNorm (bias) and ReLU,
measured on the target device and precision (`bench/latency_table.py`) on a grid of channel counts
(the pruner's `round_to` step) for every conv geometry (kernel, stride, input height and width) of
the dense network, and interpolated bilinearly in between (a conv's MACs are bilinear in c_in x
c_out, so a synthetic table of that form is reproduced exactly). `scale` is fitted per network: the
dense network's measured latency over its table sum. It takes what a conv costs in the network and
not alone (its activations' reorders and precision conversions happen once per network, not per
conv; the adds, pooling and fc) as a share of the conv time, so a predicted speed-up is the ratio of
two table sums and the whole-network measurement does not enter it.

Why a scale and not an additive overhead (measured - sum), the first design: on a quiet machine
(2026-11-30, ResNet-56 on digits, 16 cases, docs/measurements.md "Latency model") the additive
overhead was +151 µs at f32 and -410 µs at bf16 (the isolated bf16 convs pay f32<->bf16
conversions the network pays once, so their sum exceeds the network by 30 %); it mispredicted
the speed-up by a median 32 % (negative latencies at bf16), the ratio of sums by 3.1 %. A fixed
offset is also one small difference of two large numbers measured minutes apart, while the
absolute latency of these VMs drifts by 10-15 % between runs.
"""

from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass, field
from typing import Any

TABLE_VERSION = 2  # 2: CPU time per inference (bench/latency_table.py)


@dataclass(frozen=True)
class ConvSpec:
    """One convolution as the latency model sees it (input spatial size, not output)."""

    cin: int
    cout: int
    k: int
    stride: int
    h: int
    w: int

    @property
    def geometry(self) -> str:
        """The table key: everything but the channel counts."""
        return f"k{self.k}s{self.stride}h{self.h}w{self.w}"

    def with_channels(self, cin: int | None = None, cout: int | None = None) -> ConvSpec:
        return ConvSpec(self.cin if cin is None else cin, self.cout if cout is None else cout,
                        self.k, self.stride, self.h, self.w)

    @classmethod
    def parse(cls, data: dict[str, int] | list[int]) -> ConvSpec:
        if isinstance(data, dict):
            return cls(**{k: int(v) for k, v in data.items()})
        return cls(*(int(v) for v in data))



def channel_grid(n: int, step: int) -> list[int]:
    """The channel counts measured for a dimension of size n: multiples of `step` up to n, and n
    itself (a count below `step` is measured at `step`'s lowest, n when n < step)."""
    if n < 1 or step < 1:
        raise ValueError(f"channel count and step must be >= 1, got {n}, {step}")
    return sorted({*range(step, n + 1, step), n})


def grid_units(convs: list[ConvSpec], step: int) -> dict[str, tuple[list[int], list[int]]]:
    """Per geometry, the (c_in grid, c_out grid) that covers every pruned version of `convs`
    (the union of each conv's grids: a first conv's single input channel stays a grid point)."""
    out: dict[str, tuple[set[int], set[int]]] = {}
    for c in convs:
        cins, couts = out.setdefault(c.geometry, (set(), set()))
        cins.update(channel_grid(c.cin, step))
        couts.update(channel_grid(c.cout, step))
    return {g: (sorted(ci), sorted(co)) for g, (ci, co) in out.items()}


def parse_geometry(key: str) -> tuple[int, int, int, int]:
    """`k3s1h32w32` -> (3, 1, 32, 32)."""
    k, rest = key[1:].split("s", 1)
    s, rest = rest.split("h", 1)
    h, w = rest.split("w", 1)
    return int(k), int(s), int(h), int(w)


def monotone(grid: list[list[float]]) -> list[list[float]]:
    """The smallest table >= `grid` that never decreases with c_in or c_out (a wider conv is
    never faster; measured noise at the µs level would otherwise make removing filters 'save' a
    negative time)."""
    out = [row[:] for row in grid]
    for i in range(len(out)):
        for j in range(len(out[i])):
            best = out[i][j]
            if i:
                best = max(best, out[i - 1][j])
            if j:
                best = max(best, out[i][j - 1])
            out[i][j] = best
    return out


def _bracket(values: list[int], x: float) -> tuple[int, int, float]:
    """Indices (lo, hi) around x in sorted `values` and x's weight toward hi (clamped)."""
    if x <= values[0]:
        return 0, 0, 0.0
    if x >= values[-1]:
        n = len(values) - 1
        return n, n, 0.0
    hi = bisect.bisect_left(values, x)
    lo = hi - 1
    return lo, hi, (x - values[lo]) / (values[hi] - values[lo])


@dataclass
class LatencyTable:
    """Marginal latency (µs) per conv geometry over a (c_in, c_out) grid, with the conditions
    it was measured under and the dense networks measured whole (for the scale)."""

    conditions: dict[str, Any]
    step: int
    entries: dict[str, dict[str, list]] = field(default_factory=dict)  # geometry -> cin/cout/us
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> measured, sum
    version: int = TABLE_VERSION

    def conv_us(self, conv: ConvSpec) -> float:
        """T(conv): bilinear over the geometry's grid, clamped at its ends."""
        try:
            e = self.entries[conv.geometry]
        except KeyError:
            raise KeyError(f"the latency table has no convolution of geometry {conv.geometry} "
                           f"(it has {sorted(self.entries)}); build it for this model") from None
        i0, i1, a = _bracket(e["cin"], conv.cin)
        j0, j1, b = _bracket(e["cout"], conv.cout)
        us = e["us"]
        top = us[i0][j0] * (1 - b) + us[i0][j1] * b
        bottom = us[i1][j0] * (1 - b) + us[i1][j1] * b
        return float(top * (1 - a) + bottom * a)

    def sum_us(self, convs: list[ConvSpec]) -> float:
        return float(sum(self.conv_us(c) for c in convs))

    def scale(self, network: str | None = None) -> float:
        """Measured latency over table sum of a dense network (the named one, else the only
        one): what a table microsecond costs in the network."""
        if network is None:
            if len(self.networks) != 1:
                raise KeyError(f"name the network whose scale to use: {sorted(self.networks)}")
            network = next(iter(self.networks))
        n = self.networks[network]
        return float(n["measured_us"] / n["sum_us"])

    def covers(self, convs: list[ConvSpec]) -> bool:
        """Whether every conv's geometry is in the table, within its widest channels."""
        for c in convs:
            e = self.entries.get(c.geometry)
            if e is None or c.cin > e["cin"][-1] or c.cout > e["cout"][-1]:
                return False
        return True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyTable:
        if data.get("version") != TABLE_VERSION:
            raise ValueError(f"latency table version {data.get('version')!r}, this code reads "
                             f"{TABLE_VERSION}: rebuild it")
        return cls(conditions=data["conditions"], step=int(data["step"]),
                   entries=data["entries"], networks=data.get("networks", {}),
                   version=TABLE_VERSION)


def predict_us(convs: list[ConvSpec], table: LatencyTable, scale: float = 1.0) -> float:
    """Predicted latency (µs): the convs' table sum times the network's fitted scale."""
    return scale * table.sum_us(convs)
