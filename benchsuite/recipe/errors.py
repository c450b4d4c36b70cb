"""Recipe errors name the key path that is wrong, e.g. `pruners.agp.final_sparsity: ...`."""

from __future__ import annotations

from ..errors import UserError


class RecipeError(UserError):
    def __init__(self, path: str, message: str, source: str | None = None) -> None:
        self.path = path
        self.message = message
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{path}: {message}" if path else f"{where}{message}")
