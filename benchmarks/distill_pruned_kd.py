"""Claim (MNIST-5k): LeNet-5 pruned to 97% sparsity recovers more when its fine-tuning distils from the dense model
(``finetune: {distill: ...}``, teacher = the run's original model) than when it fine-tunes on the labels alone.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/distill_pruned_kd.py [--seeds 0 1 2] [--epochs 3]
    # both arms fine-tune on the same stream of perturbed digits (a transfer set, modelpress.distill.transfer)
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/distill_pruned_kd.py --augment mild --epochs 3

Both arms run the same one-stage recipe through ``modelpress.run`` from the zoo's LeNet-5: one-shot global magnitude
pruning of 97.15% of the conv and fc weights (97.02% of all parameters, as recipes/lenet5-prune97.yaml), then the
same fine-tuning (Adam, cosine, same epochs, learning rate, batch size, data order; the mask keeper holds the zeros):

* labels: ``finetune: {epochs: E, lr: 1e-3}``;
* KD: the same plus ``distill: {temperature: T, alpha: a}``. ``(T, a)`` is chosen from ``GRID`` on a validation
  split carved from the training digits (3,000 train / 1,000 validation, seed 1234; seed 0), never on the held-out
  digits. (A first run with Hinton's ``T = 4, a = 0.9`` fixed in advance lost to labels; see the results file.)

``--augment``: the run's task is ``TransferTask(mnist5k, AugmentConfig(kind="affine"))``, so both arms' fine-tuning
sees the same randomly shifted/rotated/zoomed digits (defaults fixed before running); evaluation is unperturbed.
The recipe seed is the benchmark seed (data order). Accuracy on the 1,000 held-out digits; mean +- sample std.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from modelpress import zoo
from modelpress.distill.transfer import AugmentConfig, TransferTask
from modelpress.recipe import parse_recipe, run
from modelpress.task import ClassificationTask, Task
from modelpress.tasks.mnist import mnist5k

sys.path.insert(0, str(Path(__file__).parent))
from distill_kd_mnist import AUGMENT  # the same perturbations

SPARSITY = 0.9715
GRID = ((1.0, 0.5), (2.0, 0.5), (4.0, 0.5), (2.0, 0.9), (4.0, 0.9))  # (temperature, alpha)


def validation_task(task: ClassificationTask) -> ClassificationTask:
    """The training digits split 3,000 / 1,000 (seed 1234): for choosing settings without the held-out digits."""
    order = torch.randperm(len(task.x_train), generator=torch.Generator().manual_seed(1234))
    fit_idx, val_idx = order[:3000], order[3000:]
    return ClassificationTask("mnist5k-validation", task.x_train[fit_idx], task.y_train[fit_idx],
                              task.x_train[val_idx], task.y_train[val_idx], num_classes=task.num_classes)


def accuracy(task: Task, finetune: dict, seed: int, dense: torch.nn.Module) -> tuple[float, float]:
    """Held-out accuracy and parameter sparsity after pruning a copy of ``dense`` and fine-tuning as ``finetune``
    says."""
    recipe = parse_recipe({"name": "bench", "seed": seed, "measure": {"runs": 3, "warmup": 1}, "stages": [
        {"type": "prune", "sparsity": SPARSITY, "scope": "global", "finetune": finetune}]})
    result = run(recipe, copy.deepcopy(dense), task, quiet=True)
    params = list(result.model.parameters())
    sparsity = sum(int((p == 0).sum()) for p in params) / sum(p.numel() for p in params)
    return result.history.rows[-1].metrics["accuracy"], sparsity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--augment", choices=sorted(AUGMENT), default=None,
                        help="every arm on the same perturbed stream (see AUGMENT)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--grid", nargs="+", default=[f"{t:g},{a:g}" for t, a in GRID], help="T,alpha pairs")
    args = parser.parse_args()
    grid = [tuple(float(v) for v in pair.split(",")) for pair in args.grid]
    torch.set_num_threads(args.threads)
    plain = mnist5k()
    augment = AugmentConfig(**AUGMENT[args.augment]) if args.augment else None
    wrap = (lambda t: TransferTask(t, augment)) if augment is not None else (lambda t: t)
    task = wrap(plain)
    finetune = {"epochs": args.epochs, "lr": 1e-3, "batch_size": 64}
    dense = zoo.load("lenet5", plain)
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} {platform.machine()} torch {torch.__version__} "
          f"threads {args.threads}; LeNet-5 dense {task.evaluate(dense)['accuracy']:.4f}; one-shot global magnitude "
          f"{SPARSITY}; finetune {finetune}; augment {args.augment}")
    val = wrap(validation_task(plain))
    scores = {}
    for temperature, alpha in grid:
        section = {**finetune, "distill": {"temperature": temperature, "alpha": alpha}}
        scores[(temperature, alpha)] = accuracy(val, section, 0, dense)[0]
        print(f"validation T={temperature:g} alpha={alpha:g}: {scores[(temperature, alpha)]:.4f}", flush=True)
    print(f"validation labels: {accuracy(val, finetune, 0, dense)[0]:.4f}", flush=True)
    temperature, alpha = max(scores, key=scores.__getitem__)
    arms = {"labels": finetune, "KD from dense": {**finetune, "distill": {"temperature": temperature, "alpha": alpha}}}
    print(f"chosen on validation: T={temperature:g}, alpha={alpha:g}")
    results: dict[str, list[float]] = {name: [] for name in arms}
    for seed in args.seeds:
        row = []
        for name, section in arms.items():
            acc, sparsity = accuracy(task, section, seed, dense)
            results[name].append(acc)
            row.append(f"{name} {acc:.4f} (sparsity {sparsity:.4f})")
        print(f"seed {seed}: " + ", ".join(row), flush=True)
    for name, values in results.items():
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{name:>14}: {statistics.mean(values):.4f} +- {std:.4f}")
    gain = statistics.mean(results["KD from dense"]) - statistics.mean(results["labels"])
    print(f"KD - labels: {100 * gain:+.2f} points")


if __name__ == "__main__":
    main()
