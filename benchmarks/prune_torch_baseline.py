"""Claim: the shipped pruning recipes beat torch's own global magnitude pruning given the same sparsity and the same
fine-tuning budget (MNIST-5k held-out accuracy).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/prune_torch_baseline.py [--models lenet300 lenet5] [--threads 1]

For each recipe (``recipes/lenet300-prune95.yaml``, ``recipes/lenet5-prune97.yaml``) the baseline starts from the same
zoo model, prunes the recipe's fraction of the Linear/Conv weights at once with
``torch.nn.utils.prune.global_unstructured(L1Unstructured)`` and fine-tunes with the recipe's own ``finetune``
section (same epochs, learning rate, optimizer, schedule and seed; torch's forward pre-hook keeps the zeros). The
recipe's figure comes from running the recipe itself (``modelpress.recipe.run``) in the same process.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from modelpress import zoo
from modelpress.recipe import load_recipe, run
from modelpress.tasks.mnist import mnist5k
from modelpress.train import fit

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
RECIPE_OF = {"lenet300": "lenet300-prune95", "lenet5": "lenet5-prune97"}


def _zero_fraction(model: nn.Module) -> float:
    params = list(model.parameters())
    return sum(int((p == 0).sum()) for p in params) / sum(p.numel() for p in params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lenet300", "lenet5"], choices=sorted(RECIPE_OF))
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on a shared 2-core machine 2 threads oversubscribe)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = mnist5k()
    print(f"# {time.strftime('%Y-%m-%d')} {platform.machine()} torch {torch.__version__} threads {args.threads}; "
          f"mnist5k held-out accuracy")
    print(f"{'model':<9} {'recipe':<17} {'dense':>6} {'torch':>6} {'recipe':>6} {'zero (torch)':>12} "
          f"{'zero (recipe)':>13}")
    for name in args.models:
        recipe = load_recipe(RECIPES / f"{RECIPE_OF[name]}.yaml")
        stage = recipe.stages[0]
        dense_model = zoo.load(name, task)
        dense = task.evaluate(dense_model)["accuracy"]
        baseline = zoo.load(name, task)
        layers = [(m, "weight") for m in baseline.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
        torch_prune.global_unstructured(layers, pruning_method=torch_prune.L1Unstructured, amount=stage.sparsity)
        fit(baseline, task, stage.finetune, seed=recipe.seed, quiet=True)
        for module, param in layers:
            torch_prune.remove(module, param)
        torch_acc = task.evaluate(baseline)["accuracy"]
        result = run(recipe, zoo.load(name, task), task, quiet=True)
        last = result.history.rows[-1]
        print(f"{name:<9} {recipe.name:<17} {dense:>6.3f} {torch_acc:>6.3f} {last.metrics['accuracy']:>6.3f} "
              f"{_zero_fraction(baseline):>12.4f} {1 - last.nonzeros / last.params:>13.4f}", flush=True)


if __name__ == "__main__":
    main()
