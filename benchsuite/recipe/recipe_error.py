"""Recipe errors name the key path that is wrong, e.g. `pruners.agp.final_sparsity: ...`.

A key path or message of a hostile recipe (a key of 900 kB) is cut to a few hundred
characters: the error names the place, it does not echo the recipe."""

from __future__ import annotations

from benchsuite.core.errors import UserError

MAX_PATH = 300
MAX_MESSAGE = 2000  # the longest real message (unknown class, the known ones listed) is ~800


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit - 60]}... ({len(text):,} characters)"


class RecipeError(UserError):
    def __init__(self, path: str, message: str, source: str | None = None) -> None:
        path, message = _cut(path, MAX_PATH), _cut(message, MAX_MESSAGE)
        self.path = path
        self.message = message
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{path}: {message}" if path else f"{where}{message}")
