"""Claim: at 95% sparsity on LeNet-300-100 (MNIST-5k), gradual pruning on Zhu & Gupta's cubic schedule beats one-shot
pruning at the same fine-tuning budget (mean of 3 seeds). torch's own global magnitude pruning
(``torch.nn.utils.prune.global_unstructured``) with the same fine-tuning is printed alongside.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/prune_gradual_vs_oneshot.py [--seeds 0 1 2]

Every arm starts from the zoo's trained LeNet-300-100 (94.1%), prunes 95.2% of the Linear weights (95.05% of all
parameters) by global magnitude and fine-tunes for the same ``FINETUNE`` (10 epochs, Adam, cosine learning rate):

* one-shot: prune to 95.2% at once, then fine-tune with the zeros held (modelpress ``prune``);
* gradual: 0 → 95.2% along the cubic schedule over the first half of the same 10 epochs, masks updated every 10
  steps, then the rest at 95.2% (modelpress ``prune-gradual``, as in recipes/lenet300-prune95.yaml);
* torch: ``global_unstructured(L1Unstructured)`` to 95.2%, then the same fine-tuning (torch's forward pre-hook
  keeps the zeros).

The seed sets the fine-tuning's data order. Accuracy is on the 1,000 held-out digits.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from torch.nn.utils import prune as torch_prune

from modelpress import zoo
from modelpress.config import FinetuneConfig
from modelpress.prune import GradualPruneConfig, PruneConfig, prune_
from modelpress.recipe.registry import StageContext
from modelpress.task import ClassificationTask
from modelpress.tasks.mnist import mnist5k
from modelpress.train import fit

SPARSITY = 0.952
FINETUNE = FinetuneConfig(epochs=10, lr=2e-3, batch_size=64)


def _param_sparsity(model: torch.nn.Module) -> float:
    params = list(model.parameters())
    return sum(int((p == 0).sum()) for p in params) / sum(p.numel() for p in params)


def _torch_global(task: ClassificationTask, seed: int) -> float:
    model = zoo.load("lenet300", task)
    layers = [(model.fc1, "weight"), (model.fc2, "weight"), (model.fc3, "weight")]
    torch_prune.global_unstructured(layers, pruning_method=torch_prune.L1Unstructured, amount=SPARSITY)
    fit(model, task, FINETUNE, seed=seed, quiet=True)
    for module, name in layers:
        torch_prune.remove(module, name)
    return task.evaluate(model)["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on a shared 2-core machine 2 threads oversubscribe)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = mnist5k()
    oneshot = PruneConfig(sparsity=SPARSITY, finetune=FINETUNE)
    gradual = GradualPruneConfig(sparsity=SPARSITY, schedule="cubic", end=0.5, frequency=10, finetune=FINETUNE)
    print(f"# {time.strftime('%Y-%m-%d')} {platform.machine()} torch {torch.__version__} threads {args.threads}; "
          f"LeNet-300-100 on mnist5k; global magnitude to {SPARSITY} of the weights; "
          f"fine-tuning {FINETUNE.epochs:g} epochs, lr {FINETUNE.lr:g}, Adam, cosine")
    print(f"{'seed':>4} {'one-shot':>9} {'gradual':>9} {'torch':>9} {'sparsity':>9}")
    results: dict[str, list[float]] = {"one-shot": [], "gradual": [], "torch": []}
    for seed in args.seeds:
        row = {}
        for name, config in (("one-shot", oneshot), ("gradual", gradual)):
            model = zoo.load("lenet300", task)
            prune_(model, config, task, ctx=StageContext(task=task, seed=seed, quiet=True))
            row[name] = task.evaluate(model)["accuracy"]
            sparsity = _param_sparsity(model)
        row["torch"] = _torch_global(task, seed)
        for name, value in row.items():
            results[name].append(value)
        print(f"{seed:>4} {row['one-shot']:>9.4f} {row['gradual']:>9.4f} {row['torch']:>9.4f} {sparsity:>9.4f}",
              flush=True)
    means = {name: statistics.mean(values) for name, values in results.items()}
    print(f"mean {means['one-shot']:>9.4f} {means['gradual']:>9.4f} {means['torch']:>9.4f}")
    print(f"gradual - one-shot: {100 * (means['gradual'] - means['one-shot']):+.2f} points")


if __name__ == "__main__":
    main()
