"""Op specs, the per-op latency table and the predictor (pure Python: no torch, no openvino).

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

Beyond convolutions (issue 23: MobileNetV2, the ViT) the sum runs over four kinds of op, each
with a table key (`geometry`: what pruning leaves alone, its kind spelled out so that the
convolutions' keys stay those of version 2) and at most two grid dimensions (`dims`: what
pruning changes):

    kind        key                   grid (dims)               the op in the IR
    conv        k3s1h32w32            (c_in, c_out)             Convolution
    depthwise   dw:k3s1h32w32         (channels, 1)             GroupConvolution, one channel
                                                                per group (c_in = c_out)
    linear      fc:t65                (in, out features)        MatMul by a constant weight;
                                                                t: its input's rows (tokens)
    attention   attn:n65d32           (heads, 1)                ScaledDotProductAttention, or
                                                                MatMul - Softmax - MatMul

A depthwise conv is not a conv of c_in = c_out channels (its cost is linear in the channels,
not bilinear, and OpenVINO runs another kernel); a linear layer's cost is bilinear in (in, out)
at a fixed token count, as a conv's at a fixed geometry; an attention's is linear in its heads
at a fixed sequence length and head size, and heads are what `AttentionHeadPruner` removes
(every head count is a grid point: a network has a few). A table records the kinds it models
(`kinds`): a network's sum is over its ops of those kinds, so a table of convs only (version 2,
a synthetic one) still sums a network's convs and nothing else. Measured on thinned versions
(docs/measurements.md, "Latency model beyond convolutions"): the small ViT's speed-ups within a
median 4 %; MobileNetV2's over-predicted by 15-27 % at 3x32x32 and a median 13 % at 1x28x28,
because its narrow convs cost more between their neighbours in the network than a unit pair
measures, which the dense network's scale does not carry over to a pruned one, and because
`monotone` (each entry the maximum of every narrower measured point) inflates the widest
entries most, where the dense network sits.

A per-op cost (`per_op_us`, `fit_per_op`): the scale charges what the table leaves out as a
share of the table sum, so a network whose ops all got narrower is predicted to shed that share
too; what a narrow op costs between its neighbours does not shrink with it. A table built with a
calibration network (the dense network untrained with every block's inner width halved,
`prune.budget_units.thinned`: the same ops, narrower), its speed-up over the dense network
measured by the cases' own method (the paired rounds, `bench/paired.py`), fits for that
network a cost c per op such that

    latency = scale x (sum over its ops of T + c x number of ops)

reproduces the measured speed-up; `cost_us` is that bracket. A width's step keeps
every op (c cancels in its saving), a removed block saves c for each of its ops. Without a
calibration network c = 0 and the model is the one above. Measured on an AMD EPYC at f32
(docs/measurements.md, "A per-op cost in the latency model"): the median error of the predicted
speed-up of thinned and budget-pruned versions fell from 9.0 to 2.5 % on MobileNetV2, from 4.1
to 3.2 % on the ViT (heads removed: from +11 to +4-5 %), and stayed at 0.5 % on ResNet-20; at
bf16 on the same CPU the fit gave 0.2 µs and MobileNetV2's error went from 4.9 to 6.3 %.
"""

from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

# 2: CPU time per inference (bench/latency_table.py); 3: the depthwise, linear and attention
# kinds, and a network's measured sum over every kind (its scale changed with it)
TABLE_VERSION = 3
KINDS = ("conv", "depthwise", "linear", "attention")


@dataclass(frozen=True)
class ConvSpec:
    """One convolution as the latency model sees it (input spatial size, not output)."""

    cin: int
    cout: int
    k: int
    stride: int
    h: int
    w: int
    kind: ClassVar[str] = "conv"

    @property
    def geometry(self) -> str:
        """The table key: everything but the channel counts."""
        return f"k{self.k}s{self.stride}h{self.h}w{self.w}"

    @property
    def dims(self) -> tuple[int, int]:
        return self.cin, self.cout

    def grid(self, step: int) -> tuple[list[int], list[int]]:
        return channel_grid(self.cin, step), channel_grid(self.cout, step)

    @classmethod
    def at(cls, geometry: str, a: int, b: int) -> ConvSpec:
        k, s, h, w = parse_geometry(geometry)
        return cls(a, b, k, s, h, w)

    def with_channels(self, cin: int | None = None, cout: int | None = None) -> ConvSpec:
        return ConvSpec(self.cin if cin is None else cin, self.cout if cout is None else cout,
                        self.k, self.stride, self.h, self.w)

    @classmethod
    def parse(cls, data: dict[str, int] | list[int]) -> ConvSpec:
        if isinstance(data, dict):
            return cls(**{k: int(v) for k, v in data.items()})
        return cls(*(int(v) for v in data))


@dataclass(frozen=True)
class DepthwiseSpec:
    """A depthwise convolution (groups = c_in = c_out): pruning changes its channels only."""

    c: int
    k: int
    stride: int
    h: int
    w: int
    kind: ClassVar[str] = "depthwise"

    @property
    def geometry(self) -> str:
        return f"dw:k{self.k}s{self.stride}h{self.h}w{self.w}"

    @property
    def dims(self) -> tuple[int, int]:
        return self.c, 1

    def grid(self, step: int) -> tuple[list[int], list[int]]:
        return channel_grid(self.c, step), [1]

    @classmethod
    def at(cls, geometry: str, a: int, b: int) -> DepthwiseSpec:
        k, s, h, w = parse_geometry(geometry.removeprefix("dw:"))
        return cls(a, k, s, h, w)


@dataclass(frozen=True)
class LinearSpec:
    """A linear layer (MatMul by a constant weight) on `tokens` rows: 1 for a classifier, the
    sequence length in a transformer."""

    tokens: int
    fin: int
    fout: int
    kind: ClassVar[str] = "linear"

    @property
    def geometry(self) -> str:
        return f"fc:t{self.tokens}"

    @property
    def dims(self) -> tuple[int, int]:
        return self.fin, self.fout

    def grid(self, step: int) -> tuple[list[int], list[int]]:
        return channel_grid(self.fin, step), channel_grid(self.fout, step)

    @classmethod
    def at(cls, geometry: str, a: int, b: int) -> LinearSpec:
        return cls(int(geometry.removeprefix("fc:t")), a, b)


@dataclass(frozen=True)
class AttentionSpec:
    """Scaled dot-product attention (q k^T, softmax, x v) over `tokens` positions: pruning
    removes heads."""

    tokens: int
    heads: int
    head_dim: int
    kind: ClassVar[str] = "attention"

    @property
    def geometry(self) -> str:
        return f"attn:n{self.tokens}d{self.head_dim}"

    @property
    def dims(self) -> tuple[int, int]:
        return self.heads, 1

    def grid(self, step: int) -> tuple[list[int], list[int]]:
        return list(range(1, self.heads + 1)), [1]

    @classmethod
    def at(cls, geometry: str, a: int, b: int) -> AttentionSpec:
        n, d = geometry.removeprefix("attn:n").split("d")
        return cls(int(n), a, int(d))


OpSpec = ConvSpec | DepthwiseSpec | LinearSpec | AttentionSpec
_BY_PREFIX: dict[str, type[OpSpec]] = {"dw": DepthwiseSpec, "fc": LinearSpec,
                                       "attn": AttentionSpec}


def spec_at(geometry: str, a: int, b: int) -> OpSpec:
    """The op of table key `geometry` at grid point (a, b)."""
    prefix, sep, _ = geometry.partition(":")
    cls = _BY_PREFIX[prefix] if sep else ConvSpec
    return cls.at(geometry, a, b)


def channel_grid(n: int, step: int) -> list[int]:
    """The channel counts measured for a dimension of size n: multiples of `step` up to n, and n
    itself (a count below `step` is measured at `step`'s lowest, n when n < step)."""
    if n < 1 or step < 1:
        raise ValueError(f"channel count and step must be >= 1, got {n}, {step}")
    return sorted({*range(step, n + 1, step), n})


def grid_units(convs: list[OpSpec], step: int) -> dict[str, tuple[list[int], list[int]]]:
    """Per geometry, the (c_in grid, c_out grid) that covers every pruned version of `convs`
    (the union of each conv's grids: a first conv's single input channel stays a grid point);
    for the other kinds the grids of their `dims`."""
    out: dict[str, tuple[set[int], set[int]]] = {}
    for c in convs:
        cins, couts = out.setdefault(c.geometry, (set(), set()))
        a, b = c.grid(step)
        cins.update(a)
        couts.update(b)
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
    """Marginal latency (µs) per op geometry over its grid (`cin`, `cout`: the kind's two
    `dims`), with the conditions it was measured under, the dense networks measured whole (for
    the scale) and the op kinds it models."""

    conditions: dict[str, Any]
    step: int
    entries: dict[str, dict[str, list]] = field(default_factory=dict)  # geometry -> cin/cout/us
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> measured, sum
    version: int = TABLE_VERSION
    kinds: list[str] = field(default_factory=lambda: ["conv"])

    def op_us(self, op: OpSpec) -> float:
        """T(op): bilinear over the geometry's grid, clamped at its ends."""
        try:
            e = self.entries[op.geometry]
        except KeyError:
            raise KeyError(f"the latency table has no {op.kind} of geometry {op.geometry} "
                           f"(it has {sorted(self.entries)}); build it for this model") from None
        a, b = op.dims
        i0, i1, wa = _bracket(e["cin"], a)
        j0, j1, wb = _bracket(e["cout"], b)
        us = e["us"]
        top = us[i0][j0] * (1 - wb) + us[i0][j1] * wb
        bottom = us[i1][j0] * (1 - wb) + us[i1][j1] * wb
        return float(top * (1 - wa) + bottom * wa)

    def conv_us(self, conv: OpSpec) -> float:
        """T(conv) (`op_us`: the name the pruner's conv arithmetic reads best with)."""
        return self.op_us(conv)

    def modelled(self, ops: list[OpSpec]) -> list[OpSpec]:
        """The ops of the kinds this table models."""
        return [o for o in ops if o.kind in self.kinds]

    def sum_us(self, convs: list[OpSpec]) -> float:
        """The table sum over the ops of the kinds the table models (`kinds`)."""
        return float(sum(self.op_us(c) for c in self.modelled(convs)))

    def _network(self, network: str | None) -> dict[str, Any]:
        if network is None:
            if len(self.networks) != 1:
                raise KeyError(f"name the network whose scale to use: {sorted(self.networks)}")
            network = next(iter(self.networks))
        return self.networks[network]

    def per_op_us(self, network: str | None = None) -> float:
        """The per-op cost (table µs) fitted for a dense network (the named one, else the only
        one; `fit_per_op`), 0 when its table was built without a calibration network."""
        if network is None and not self.networks:
            return 0.0
        return float(self._network(network).get("per_op_us", 0.0))

    def cost_us(self, ops: list[OpSpec], network: str | None = None) -> float:
        """What the model charges a network: its table sum plus the per-op cost of each op
        of a kind the table models (`per_op_us`)."""
        return self.sum_us(ops) + self.per_op_us(network) * len(self.modelled(ops))

    def scale(self, network: str | None = None) -> float:
        """Measured latency over the table cost (`cost_us`) of a dense network (the named
        one, else the only one): what a table microsecond costs in the network."""
        n = self._network(network)
        return float(n["measured_us"] / (n["sum_us"] + n.get("per_op_us", 0.0) * n.get("ops", 0)))

    def covers(self, convs: list[OpSpec]) -> bool:
        """Whether every op's kind is modelled and its geometry in the table, within its
        widest grid point."""
        for c in convs:
            e = self.entries.get(c.geometry)
            a, b = c.dims
            if (c.kind not in self.kinds or e is None or a > e["cin"][-1]
                    or b > e["cout"][-1]):
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
                   version=TABLE_VERSION, kinds=list(data.get("kinds", ["conv"])))


def predict_us(convs: list[OpSpec], table: LatencyTable, scale: float = 1.0,
               network: str | None = None) -> float:
    """Predicted latency (µs): the ops' table cost (`cost_us`) times the network's scale."""
    return scale * table.cost_us(convs, network)


def fit_per_op(dense_sum: float, dense_ops: int, other_sum: float, other_ops: int,
               ratio: float) -> float:
    """The per-op cost c (table µs) that makes the model reproduce a measured latency ratio
    (other / dense) of two versions of one network measured in the same rounds:

        ratio = (other_sum + c x other_ops) / (dense_sum + c x dense_ops)

    Clamped at 0 (a negative cost per op is noise, or an effect this term does not model);
    ValueError when the two versions cannot tell it (the same sums, or a ratio the ops'
    counts alone would give)."""
    den = ratio * dense_ops - other_ops
    if abs(den) < 1e-9 or not 0 < ratio or abs(dense_sum - other_sum) < 1e-9:
        raise ValueError(f"a per-op cost cannot be fitted from sums {dense_sum:.1f} / "
                         f"{other_sum:.1f} µs, {dense_ops} / {other_ops} ops, ratio {ratio:.3f}")
    return max(0.0, (other_sum - ratio * dense_sum) / den)
