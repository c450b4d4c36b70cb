"""The one YAML reader of recipe text: a size limit, no aliases, short quotes of bad values.

Every recipe the suite reads goes through here: the session (`Case.recipe_text` reads the file
with ``read_recipe``; ``scale_schedule`` and ``parse_recipe`` load it), `benchsuite recipe
check|dry-run` and the prune worker (``parse_recipe`` of the job's text).

- A recipe is a few kB; one over ``MAX_RECIPE_BYTES`` (1 MB) is refused before it is read
  whole (a 50 MB recipe of comments took 5x the time and 800 MB).
- YAML aliases (``*name``, merge keys ``<<: *name``) are refused when the document is composed,
  before anything is built: nine nested lists of nine aliases (a 358-byte "billion laughs")
  expand to 9^9 items, which took the session to 19 GB. Write the value out instead.
- Error messages quote a value through ``shown``: at most a few hundred characters.
- A document nested too deeply for PyYAML's recursive composer is a RecipeError too, not a
  RecursionError (which the prune worker would retry).
"""

from __future__ import annotations

import os
import reprlib
from pathlib import Path
from typing import Any

import yaml

from benchsuite.recipe.recipe_error import RecipeError

MAX_RECIPE_BYTES = 1_000_000
QUOTE_CHARS = 200

_repr = reprlib.Repr()  # Python 3.11: no keyword arguments yet
_repr.maxlevel = 3
_repr.maxtuple = _repr.maxlist = _repr.maxdict = _repr.maxset = 6
_repr.maxstring = _repr.maxother = QUOTE_CHARS


def shown(value: Any) -> str:
    """`value` as in ``repr``, cut to a few hundred characters (a few items per level)."""
    text = _repr.repr(value)
    return text if len(text) <= QUOTE_CHARS else f"{text[:QUOTE_CHARS - 3]}..."


def _too_big(size: int, source: str | None) -> RecipeError:
    return RecipeError("", f"the recipe is {size:,} bytes; the limit is "
                           f"{MAX_RECIPE_BYTES:,} (1 MB): a recipe is a few kB of YAML", source)


def check_size(text: str, source: str | None = None) -> None:
    """A RecipeError when `text` is over the size limit (a job's recipe, a rendered one)."""
    if len(text) > MAX_RECIPE_BYTES or len(text.encode("utf-8")) > MAX_RECIPE_BYTES:
        raise _too_big(len(text.encode("utf-8", "replace")), source)


def read_text(path: Path) -> str:
    """A recipe file's text, at most ``MAX_RECIPE_BYTES`` read (a bigger file, or one that is
    not UTF-8, is a RecipeError naming it)."""
    with open(path, "rb") as f:
        data = f.read(MAX_RECIPE_BYTES + 1)
        if len(data) > MAX_RECIPE_BYTES:
            raise _too_big(max(len(data), os.fstat(f.fileno()).st_size), str(path))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RecipeError("", f"not a text (UTF-8) recipe file: byte {e.start} is "
                              f"{e.object[e.start:e.start + 1]!r}", str(path)) from None


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses an alias as soon as the composer meets one."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise RecipeError(
                "", f"line {event.start_mark.line + 1}, column {event.start_mark.column + 1}: "
                    f"YAML alias *{shown(event.anchor)[1:-1]} refused: recipes, grids and "
                    "sweep files may not use aliases (*name, <<: *name); write the value out")
        return super().compose_node(parent, index)


def load_yaml_file(path: Path) -> Any:
    """A YAML file of the user's (a recipe, a grid, a sweep file) as ``load_yaml`` reads it:
    at most 1 MB, no aliases; errors are RecipeErrors naming the file."""
    return load_yaml(read_text(path), str(path))


def load_yaml(text: str, source: str | None = None) -> Any:
    """`text` (a recipe, or a piece of one) as YAML: size-checked, aliases refused, a syntax
    error a RecipeError naming `source`."""
    check_size(text, source)
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # a SafeLoader
    except RecipeError as e:
        raise RecipeError(e.path, e.message, source) from None
    except yaml.YAMLError as e:
        raise RecipeError("", f"not valid YAML: {e}", source) from None
    except RecursionError:  # PyYAML composes recursively: `[[[[...` 100,000 deep
        raise RecipeError("", "nested too deeply (lists or maps inside each other thousands "
                              "of levels deep)", source) from None
