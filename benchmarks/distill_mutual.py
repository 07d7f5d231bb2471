"""Claim (MNIST-5k): two TinyCNN students trained together by deep mutual learning (each: labels + KL to the other,
no teacher) each beat themselves trained independently on the labels, at the same budget.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/distill_mutual.py [--seeds 0 1 2] [--epochs 30]
    # the scarce-data setting of distill_kd_mnist.py: 1,000 of the training digits (optionally --augment mild)
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/distill_mutual.py --train-digits 1000 --epochs 30 --threads 1

For seed ``s``, peer ``i`` (i = 0, 1) is the TinyCNN initialized with seed ``10 s + i``. Mutual: the ``distill``
stage with ``peers: 2``, ``kd: {temperature: 1, alpha: 0.5}`` (Zhang et al.: CE + KL(p_other || p_self), here each
weighted 0.5). Independent: the same initialization trained alone with cross-entropy for the same epochs, optimizer,
learning rate, batch size and data order. ``--train-digits`` / ``--augment``: both arms on the same stratified
subset and the same perturbed stream (as in ``distill_kd_mnist.py``). Accuracy on the 1,000 held-out digits; mean +-
sample std over seeds.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from modelpress.config import FinetuneConfig
from modelpress.distill import DistillConfig, StudentSpec, build_student
from modelpress.distill.stage import apply_distill
from modelpress.distill.transfer import AugmentConfig, TransferTask
from modelpress.recipe.registry import StageContext
from modelpress.tasks.mnist import mnist5k
from modelpress.train import fit

sys.path.insert(0, str(Path(__file__).parent))
from distill_kd_mnist import AUGMENT, train_subset  # the same stratified subset and perturbations

STUDENT = StudentSpec(ref="modelpress.distill.students:TinyCNN")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=float, default=30)
    parser.add_argument("--train-digits", type=int, default=None, help="train on a stratified subset this big")
    parser.add_argument("--augment", choices=sorted(AUGMENT), default=None,
                        help="every arm on the same perturbed stream (see AUGMENT)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = train_subset(mnist5k(), args.train_digits)
    augment = AugmentConfig(**AUGMENT[args.augment]) if args.augment else None
    data = TransferTask(task, augment) if augment is not None else task
    train = FinetuneConfig(epochs=args.epochs, lr=3e-3, batch_size=128)
    config = DistillConfig(student=STUDENT, peers=2, kd={"temperature": 1.0, "alpha": 0.5}, train=train,
                           augment=augment)
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} {platform.machine()} torch {torch.__version__} "
          f"threads {args.threads}; TinyCNN peers; train {train.to_dict()}; {len(task.x_train)} training digits; "
          f"augment {augment.to_dict() if augment else None}")
    results: dict[str, list[float]] = {"independent 0": [], "mutual 0": [], "independent 1": [], "mutual 1": []}
    for seed in args.seeds:
        ctx = StageContext(task=task, seed=10 * seed, quiet=True)
        first = apply_distill(torch.nn.Identity(), config, ctx)  # the model argument is unused with peers
        results["mutual 0"].append(task.evaluate(first)["accuracy"])
        results["mutual 1"].append(ctx.notes["peer_metrics"][0]["accuracy"])
        for i in range(2):
            alone = build_student(STUDENT, task, 10 * seed + i)
            fit(alone, data, train, seed=10 * seed, quiet=True)
            results[f"independent {i}"].append(task.evaluate(alone)["accuracy"])
        print(f"seed {seed}: " + ", ".join(f"{k} {v[-1]:.4f}" for k, v in results.items()), flush=True)
    for name, values in results.items():
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{name:>14}: {statistics.mean(values):.4f} +- {std:.4f}")
    for i in range(2):
        gain = statistics.mean(results[f"mutual {i}"]) - statistics.mean(results[f"independent {i}"])
        wins = sum(m > a for m, a in zip(results[f"mutual {i}"], results[f"independent {i}"], strict=True))
        print(f"peer {i}: mutual - independent {100 * gain:+.2f} points, better in {wins}/{len(args.seeds)} seeds")


if __name__ == "__main__":
    main()
