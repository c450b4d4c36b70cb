"""Distiller-format scheduling recipes: template rendering, parsing, validation."""

from .errors import RecipeError
from .schema import Component, Policy, Recipe, load_recipe, parse_recipe
from .template import read_recipe, render, template_parameters

__all__ = [
    "Component", "Policy", "Recipe", "RecipeError", "load_recipe", "parse_recipe", "read_recipe",
    "render", "template_parameters",
]
