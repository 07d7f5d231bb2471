"""Claims (MNIST-5k): (1) a student with 36x fewer parameters than LeNet-5 (TinyCNN, 11,978 vs 431,080) learns more
from LeNet-5 by knowledge distillation than from the labels alone; (2) distilling from an ensemble of teachers
(LeNet-5 + LeNet-300-100, or LeNet-5 + ResNet-small + MobileNet-small, zoo weights) beats the best single-teacher
distillation. Same budget for every arm.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/distill_kd_mnist.py [--seeds 0 1 2] [--epochs 30]
    # the scarce-data setting (the one the claims are measured in): 1,000 of the 4,000 training digits
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/distill_kd_mnist.py --train-digits 1000 --epochs 30 --threads 1 \
        --arms labels "KD LeNet-5" "KD MobileNet-small" "ensemble L5+Mob avg"
    # a transfer set: the same digits shifted/rotated/zoomed afresh on every pass, for every arm
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/distill_kd_mnist.py --train-digits 1000 --augment strong --epochs 30

Every arm builds the same seeded TinyCNN (``modelpress.distill.students:TinyCNN``) and trains it with the
``distill`` stage for the same epochs, optimizer (Adam, cosine), learning rate, batch size and data order (the seed
sets init and order):

* labels: cross-entropy only (``alpha: 0``);
* KD LeNet-5 / KD LeNet-300: ``0.9 * T^2 KL(p_teacher || p_student) + 0.1 * CE`` at ``T = 4`` (Hinton et al.'s usual
  setting, fixed before running);
* ensemble avg: the same loss against the equal-weight average of both teachers' softened outputs;
* ensemble conf: per-sample weights = each teacher's top-class probability (``ensemble: confidence``);
* KD ResNet-small / KD MobileNet-small, ensemble3 avg (LeNet-5 + ResNet-small + MobileNet-small), ensemble L5+Mob
  avg (LeNet-5 + MobileNet-small): as above.

``--train-digits N`` trains every arm on the same stratified N of the 4,000 training digits (the teachers were
trained on all 4,000); ``--augment mild|strong`` makes every arm, the label-only one included, train on the same
stream of randomly shifted, rotated and zoomed digits (``AUGMENT``; ``modelpress.distill.transfer``), on which the
teachers' outputs are no longer near one-hot. Accuracy is on the 1,000 held-out digits; mean +- sample std over
the seeds.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from modelpress import zoo
from modelpress.distill import DistillConfig, distill
from modelpress.recipe.registry import StageContext
from modelpress.sources import save_checkpoint
from modelpress.task import ClassificationTask
from modelpress.tasks.mnist import mnist5k

STUDENT = "modelpress.distill.students:TinyCNN"
KD = {"alpha": 0.9, "temperature": 4.0}
ARMS: dict[str, dict] = {
    "labels": {"teachers": ["current"], "kd": {"alpha": 0.0}},
    "KD LeNet-5": {"teachers": ["current"], "kd": KD},
    "KD LeNet-300": {"teachers": ["lenet300"], "kd": KD},
    "ensemble avg": {"teachers": ["current", "lenet300"], "kd": KD},
    "ensemble conf": {"teachers": ["current", "lenet300"], "kd": KD, "ensemble": "confidence"},
    "KD ResNet-small": {"teachers": ["resnet-small"], "kd": KD},
    "KD MobileNet-small": {"teachers": ["mobilenet-small"], "kd": KD},
    "ensemble3 avg": {"teachers": ["current", "resnet-small", "mobilenet-small"], "kd": KD},
    "ensemble L5+Mob avg": {"teachers": ["current", "mobilenet-small"], "kd": KD},
}
# perturbations of the training stream (modelpress.distill.transfer), the same for every arm; "strong" is
# AugmentConfig's default, "mild" keeps the zoo LeNet-5 98% right on the perturbed training digits (87% under strong);
# "mild-mixupA": mild, then mixup with Beta(A, A) weights (soft blended labels; the teacher labels the blended image)
AUGMENT = {"mild": {"kind": "affine", "shift": 1.0, "degrees": 5.0, "scale": 0.05},
           "strong": {"kind": "affine", "shift": 2.0, "degrees": 12.0, "scale": 0.1},
           "mild-mixup0.2": {"kind": "affine", "shift": 1.0, "degrees": 5.0, "scale": 0.05, "mixup": 0.2},
           "mild-mixup1": {"kind": "affine", "shift": 1.0, "degrees": 5.0, "scale": 0.05, "mixup": 1.0}}
DEFAULT_ARMS = ["labels", "KD LeNet-5", "KD LeNet-300", "ensemble avg", "ensemble conf"]
ARCHS = {"lenet300": "LeNet300", "resnet-small": "ResNetSmall", "mobilenet-small": "MobileNetSmall"}


def train_subset(task: ClassificationTask, digits: int | None) -> ClassificationTask:
    """``task`` with a stratified ``digits`` of its training digits (split seed 1234); same held-out digits."""
    if digits is None or digits >= len(task.x_train):
        return task
    from sklearn.model_selection import train_test_split

    idx, _ = train_test_split(torch.arange(len(task.x_train)).numpy(), train_size=digits,
                              stratify=task.y_train.numpy(), random_state=1234)
    idx = torch.from_numpy(idx)
    return ClassificationTask(f"{task.name}-train{digits}", task.x_train[idx], task.y_train[idx], task.x_test,
                              task.y_test, num_classes=task.num_classes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=float, default=30)
    parser.add_argument("--train-digits", type=int, default=None, help="train on a stratified subset this big")
    parser.add_argument("--augment", choices=sorted(AUGMENT), default=None,
                        help="every arm on the same perturbed stream (see AUGMENT)")
    parser.add_argument("--arms", nargs="+", default=DEFAULT_ARMS, choices=list(ARMS))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    full = mnist5k()
    task = train_subset(full, args.train_digits)
    lenet5 = zoo.load("lenet5", full)
    extra = {"augment": AUGMENT[args.augment]} if args.augment else {}
    # the other zoo teachers (trained on all 4,000 digits) as checkpoints: a zoo: reference on a subset task would
    # train new weights for that task
    folder, checkpoints, scores = Path(tempfile.mkdtemp()), {}, {"LeNet-5": task.evaluate(lenet5)["accuracy"]}
    for name, arch in ARCHS.items():
        if any(name in ARMS[arm]["teachers"] for arm in args.arms):
            teacher = zoo.load(name, full)
            scores[name] = task.evaluate(teacher)["accuracy"]
            checkpoints[name] = str(folder / f"{name}.pt")
            save_checkpoint(teacher, f"modelpress.zoo.models:{arch}", checkpoints[name])
    train = {"epochs": args.epochs, "lr": 3e-3, "batch_size": 128}
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} {platform.machine()} torch {torch.__version__} "
          f"threads {args.threads}; teachers' held-out accuracy {scores}; "
          f"student TinyCNN 11,978 params; train {train}; {len(task.x_train)} training digits; {extra or 'no augment'}")
    arms = {name: ARMS[name] for name in args.arms}
    results: dict[str, list[float]] = {name: [] for name in arms}
    for seed in args.seeds:
        row = []
        for name, arm in arms.items():
            teachers = [checkpoints.get(t, t) for t in arm["teachers"]]
            config = DistillConfig(student=STUDENT, train=train, **{**arm, "teachers": teachers}, **extra)
            start = time.perf_counter()
            student = distill(lenet5, config, task, StageContext(task=task, seed=seed, quiet=True))
            results[name].append(task.evaluate(student)["accuracy"])
            row.append(f"{name} {results[name][-1]:.4f} ({time.perf_counter() - start:.0f} s)")
        print(f"seed {seed}: " + ", ".join(row), flush=True)
    means = {name: statistics.mean(values) for name, values in results.items()}
    for name, values in results.items():
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{name:>14}: {means[name]:.4f} +- {std:.4f}")
    if "labels" in means and "KD LeNet-5" in means:
        print(f"KD LeNet-5 - labels: {100 * (means['KD LeNet-5'] - means['labels']):+.2f} points")
    singles = [means[name] for name in means if name.startswith("KD ")]
    for name in (n for n in means if n.startswith("ensemble")):
        if name in means and singles:
            print(f"{name} - best single-teacher KD run: {100 * (means[name] - max(singles)):+.2f} points")


if __name__ == "__main__":
    main()
