"""Plain-JSON records: dataclasses that come back from a dict written by another version."""

from __future__ import annotations

import dataclasses
from typing import Any, Self


class FromDict:
    """`from_dict(data)` for a dataclass: the fields it knows, the rest left out (a row or a
    message written by an older or newer version of the suite still reads)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in names})
