"""Recipes: declarative, validated lists of stages, and the runner that applies and measures them."""

from modelpress.recipe.registry import StageContext, apply_stage, rule, stage
from modelpress.recipe.run import Result, measure, run, run_stage
from modelpress.recipe.schema import MeasureConfig, Recipe, load_recipe, parse_recipe

__all__ = ["MeasureConfig", "Recipe", "Result", "StageContext", "apply_stage", "load_recipe", "measure",
           "parse_recipe", "rule", "run", "run_stage", "stage"]
