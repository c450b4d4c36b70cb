"""Recipe templates: the one syntax that marks what a grid or a sweep may vary.

A placeholder is `${name}` or `${name=default}` anywhere in a recipe's YAML text, e.g.

    final_sparsity: ${sparsity=0.5}
    class: ${pruner_class=L1RankedStructureParameterPruner}

Rendering replaces each placeholder with the value given for `name` (or its default, which
may be written at any one of its occurrences) as a YAML scalar; a placeholder with no value and
no default is an error. A recipe with only
defaulted placeholders renders to a plain Distiller recipe. Names are identifiers. Comments may
mention a placeholder (`# ${sparsity} = fraction removed`); one written only in comments is no
parameter and stays as written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from benchsuite.recipe.recipe_error import RecipeError
from benchsuite.recipe.yamltext import read_text

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:=([^}]*))?\}")
COMMENT = re.compile(r"(?:^|\s)#", re.MULTILINE)


def _in_comment(text: str, m: re.Match[str]) -> bool:
    """True when the placeholder sits in a YAML comment (`# ...` before it on its line)."""
    return bool(COMMENT.search(text, text.rfind("\n", 0, m.start()) + 1, m.start()))


def template_parameters(text: str) -> dict[str, str | None]:
    """Placeholder names in `text` with their default text (None when there is none). A name
    written only in comments is no parameter: a value for it would change nothing."""
    found: dict[str, str | None] = {}
    for m in PLACEHOLDER.finditer(text):
        if _in_comment(text, m):
            continue
        name, default = m.group(1), m.group(2)
        if name not in found or found[name] is None:
            found[name] = default
    return found


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def render(text: str, params: dict[str, Any] | None = None, source: str | None = None) -> str:
    """Substitute placeholders; unknown parameter names are errors too."""
    params = dict(params or {})
    known = template_parameters(text)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise RecipeError(
            "", f"parameter(s) {', '.join(unknown)} not in the recipe template "
            f"(it has: {', '.join(sorted(known)) or 'none'})", source,
        )

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in known:  # only in comments (documentation): left as written
            return m.group(0)
        default = m.group(2) if m.group(2) is not None else known[name]
        if name in params:
            return _scalar(params[name])
        if default is None:
            raise RecipeError("", f"template parameter ${{{name}}} has no value and no default",
                              source)
        return default

    return PLACEHOLDER.sub(sub, text)


def read_recipe(path: Path) -> str:
    """A recipe file's text; a file over the size limit (1 MB) or not UTF-8 text is a
    RecipeError naming it (yamltext.read_text)."""
    return read_text(path)
