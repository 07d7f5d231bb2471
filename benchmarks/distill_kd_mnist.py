"""Claims (MNIST-5k): (1) a student with 36x fewer parameters than LeNet-5 (TinyCNN, 11,978 vs 431,080) learns more
from LeNet-5 by knowledge distillation than from the labels alone; (2) distilling from an ensemble of two teachers
(LeNet-5 and LeNet-300-100, zoo weights) beats the best single-teacher distillation. Same budget for every arm.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/distill_kd_mnist.py [--seeds 0 1 2] [--epochs 30]

Every arm builds the same seeded TinyCNN (``modelpress.distill.students:TinyCNN``) and trains it with the
``distill`` stage for the same epochs, optimizer (Adam, cosine), learning rate, batch size and data order (the seed
sets init and order):

* labels: cross-entropy only (``alpha: 0``);
* KD LeNet-5 / KD LeNet-300: ``0.9 * T^2 KL(p_teacher || p_student) + 0.1 * CE`` at ``T = 4`` (Hinton et al.'s usual
  setting, fixed before running);
* ensemble avg: the same loss against the equal-weight average of both teachers' softened outputs;
* ensemble conf: per-sample weights = each teacher's top-class probability (``ensemble: confidence``).

Accuracy is on the 1,000 held-out digits; mean +- sample std over the seeds.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from modelpress import zoo
from modelpress.distill import DistillConfig, distill
from modelpress.recipe.registry import StageContext
from modelpress.tasks.mnist import mnist5k

STUDENT = "modelpress.distill.students:TinyCNN"
KD = {"alpha": 0.9, "temperature": 4.0}
ARMS: dict[str, dict] = {
    "labels": {"teachers": ["current"], "kd": {"alpha": 0.0}},
    "KD LeNet-5": {"teachers": ["current"], "kd": KD},
    "KD LeNet-300": {"teachers": ["zoo:lenet300"], "kd": KD},
    "ensemble avg": {"teachers": ["current", "zoo:lenet300"], "kd": KD},
    "ensemble conf": {"teachers": ["current", "zoo:lenet300"], "kd": KD, "ensemble": "confidence"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=float, default=30)
    args = parser.parse_args()
    torch.set_num_threads(2)
    task = mnist5k()
    lenet5, lenet300 = zoo.load("lenet5", task), zoo.load("lenet300", task)
    train = {"epochs": args.epochs, "lr": 3e-3, "batch_size": 128}
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} {platform.machine()} torch {torch.__version__} threads 2; teachers "
          f"LeNet-5 {task.evaluate(lenet5)['accuracy']:.4f}, LeNet-300-100 {task.evaluate(lenet300)['accuracy']:.4f}; "
          f"student TinyCNN 11,978 params; train {train}")
    results: dict[str, list[float]] = {name: [] for name in ARMS}
    for seed in args.seeds:
        row = []
        for name, arm in ARMS.items():
            config = DistillConfig(student=STUDENT, train=train, **arm)
            start = time.perf_counter()
            student = distill(lenet5, config, task, StageContext(task=task, seed=seed, quiet=True))
            results[name].append(task.evaluate(student)["accuracy"])
            row.append(f"{name} {results[name][-1]:.4f} ({time.perf_counter() - start:.0f} s)")
        print(f"seed {seed}: " + ", ".join(row), flush=True)
    means = {name: statistics.mean(values) for name, values in results.items()}
    for name, values in results.items():
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{name:>14}: {means[name]:.4f} +- {std:.4f}")
    best_single = max(means["KD LeNet-5"], means["KD LeNet-300"])
    print(f"KD LeNet-5 - labels: {100 * (means['KD LeNet-5'] - means['labels']):+.2f} points")
    for name in ("ensemble avg", "ensemble conf"):
        print(f"{name} - best single-teacher KD: {100 * (means[name] - best_single):+.2f} points")


if __name__ == "__main__":
    main()
