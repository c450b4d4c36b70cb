"""The accuracy floor a case must keep: absolute (`0.97`) or relative to dense (`-1pt`), and
the uncertainty of a Top-1 measured on a finite test split (Wilson interval)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_REL = re.compile(r"^\s*-\s*(\d+(?:\.\d+)?)\s*(pt|pts|points?)\s*$")


@dataclass(frozen=True)
class Threshold:
    absolute: float | None = None
    points_below_dense: float | None = 1.0

    @classmethod
    def parse(cls, text: str | float) -> Threshold:
        """`0.97` or `97%` -> Top-1 >= 0.97; `-1pt` -> Top-1 >= dense Top-1 - 1 point."""
        if isinstance(text, int | float):
            return cls._absolute(float(text), str(text))
        s = str(text).strip()
        if m := _REL.match(s):
            return cls(None, float(m.group(1)))
        try:
            value = float(s.removesuffix("%")) / (100 if s.endswith("%") else 1)
        except ValueError:
            raise ValueError(
                f"accuracy threshold {text!r}: give an absolute Top-1 like 0.97 or 97%, "
                "or a drop from dense like -1pt"
            ) from None
        return cls._absolute(value, s)

    @classmethod
    def _absolute(cls, value: float, text: str) -> Threshold:
        if not 0 <= value <= 1:
            raise ValueError(f"accuracy threshold {text!r} must be within [0, 1] (or 0-100%)")
        return cls(value, None)

    def floor(self, dense_top1: float) -> float:
        if self.absolute is not None:
            return self.absolute
        return dense_top1 - (self.points_below_dense or 0.0) / 100

    def __str__(self) -> str:
        if self.absolute is not None:
            return f"{self.absolute:.4f}"
        return f"-{self.points_below_dense:g}pt"


