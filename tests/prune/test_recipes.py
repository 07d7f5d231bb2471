"""The pruning recipes are pruning recipes. Their acceptance figures (sparsity, accuracy within 0.5 points of the
original) are asserted end to end, through the CLI, by tests/integration/test_recipes.py; the figures are in
docs/benchmarks/pruning.md."""

from __future__ import annotations

from pathlib import Path

from modelpress.recipe import load_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def test_every_pruning_recipe_validates() -> None:
    for name in ("lenet300-prune90", "lenet300-prune95", "lenet5-prune97", "lenet300-prune90-sensitivity"):
        stages = load_recipe(RECIPES / f"{name}.yaml").stages
        assert [s.tag for s in stages] in (["prune"], ["prune-gradual"])
