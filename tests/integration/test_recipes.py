"""Every shipped recipe validates; the recipes for the small models run end to end through the CLI, the file they
write evaluates, under `modelpress eval`, to exactly the accuracy the run's last History row recorded, and the
recipes that carry an acceptance figure meet it (sparsity, accuracy against the original, size)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelpress.cli import main
from modelpress.recipe import load_recipe

RECIPES = sorted((Path(__file__).resolve().parents[2] / "recipes").glob("*.yaml"))
# Recipes on the small zoo models run in the suite; transformer recipes are exercised by their benchmarks.
SMALL_MODEL = {"lenet300": "zoo:lenet300", "lenet5": "zoo:lenet5", "deep-compression-lenet300": "zoo:lenet300",
               "deep-compression-lenet5": "zoo:lenet5", "resnet-small": "zoo:resnet-small"}


# Acceptance targets of the shipped recipes (issues' figures): (zero fraction of all parameters at least, accuracy
# drop against the original at most, file at least this many times smaller than raw fp32 bytes). None: not asserted.
TARGETS: dict[str, tuple[float | None, float, float | None]] = {
    "lenet300-prune90": (0.90, 0.005, None),
    "lenet300-prune95": (0.95, 0.005, None),
    "lenet5-prune97": (0.97, 0.005, None),
    "deep-compression-lenet300": (None, 0.005, 40.0),
    "deep-compression-lenet5": (None, 0.005, 40.0),
    "lenet300-ternary": (None, 0.02, None),
    "lenet5-qat4": (None, 0.005, None),
    "lenet5-int8": (None, 0.003, None),
    "lenet300-svd": (None, 0.005, None),
    "lenet5-mixed": (None, 0.005, 6.0),
    "resnet-small-tucker": (None, 0.01, 3.0),
    "resnet-small-cp": (None, 0.01, 3.0),
    "resnet-small-structured": (None, 0.01, 3.0),
}


def _model_for(path: Path) -> str | None:
    stem = path.stem
    for prefix, model in sorted(SMALL_MODEL.items(), key=lambda kv: -len(kv[0])):
        if stem.startswith(prefix):
            return model
    return None


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_validates(path: Path) -> None:
    recipe = load_recipe(path)
    assert recipe.stages, f"{path.name} has no stages"


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in RECIPES if _model_for(p)], ids=[p.stem for p in RECIPES if _model_for(p)])
def test_recipe_runs_and_file_reproduces_accuracy(path: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model.mpz"
    assert main(["compress", _model_for(path), "--task", "mnist5k", "--recipe", str(path), "--out", str(out),
                 "--report", str(tmp_path / "report"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    last = result["history"][-1]
    assert out.stat().st_size == last["file_bytes"]
    assert (tmp_path / "report" / "report.html").is_file()
    assert main(["eval", str(out), "--task", "mnist5k", "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["bytes"] == out.stat().st_size
    assert evaluated["metrics"]["accuracy"] == last["metrics"]["accuracy"]
    if path.stem in TARGETS:
        min_zero, max_drop, min_ratio = TARGETS[path.stem]
        original = result["history"][0]
        assert last["metrics"]["accuracy"] >= original["metrics"]["accuracy"] - max_drop - 1e-6
        if min_zero is not None:
            assert 1 - last["nonzeros"] / last["params"] >= min_zero
        if min_ratio is not None:
            assert out.stat().st_size * min_ratio <= original["params"] * 4
