"""Distiller-format scheduling recipes: template rendering, parsing, validation."""

from benchsuite.recipe.recipe_error import RecipeError
from benchsuite.recipe.schema import Component, Policy, Recipe, load_recipe, parse_recipe
from benchsuite.recipe.template import read_recipe, render, template_parameters

__all__ = [
    "Component", "Policy", "Recipe", "RecipeError", "load_recipe", "parse_recipe", "read_recipe",
    "render", "template_parameters",
]
