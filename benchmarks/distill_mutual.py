"""Claim (MNIST-5k): two students trained together by deep mutual learning (each: labels + KL to the other, no
teacher) each beat themselves trained independently on the labels, at the same budget.

    # the claim's setting: 1,000 of the training digits; peers, T, alpha, transfer set and epochs chosen on validation
    # (session 3, round A, then round B with two validation seeds; docs/benchmarks/distillation.md section 3)
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/distill_mutual.py --train-digits 1000 --threads 1 \
        --peer1 tinycnn tinymlp --temperature 1 3 --alpha 0.5 --augment none mild --epochs 30 60
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/distill_mutual.py --train-digits 1000 --threads 1 \
        --peer1 tinycnn --temperature 3 6 --alpha 0.7 0.9 --augment none --epochs 30 60 --val-seeds 0 1
    # session 5: larger peers that overfit 1,000 digits (two LeNet-5s or two LeNet-300-100s, each pair one arch)
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/distill_mutual.py --train-digits 1000 --threads 1 \
        --peer0 lenet5 lenet300 --temperature 1 3 --alpha 0.5 --augment none --epochs 30 --val-seeds 0 1
    # session 8: each peer mimics the peers' ensemble (KDCL, --target ensemble) instead of the other peer; validation
    # on three seeds, then the chosen setting, and the same setting with --target peers (plain DML) as the ablation
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/distill_mutual.py --train-digits 1000 --threads 1 --peer1 tinycnn \
        --temperature 1 3 --alpha 0.5 0.7 --augment none mild-mixup0.2 --epochs 60 --target ensemble \
        --val-seeds 0 1 2 --validate-only
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/distill_mutual.py --train-digits 1000 --threads 1 --peer1 tinycnn \
        --temperature 3 --alpha 0.7 --augment none --epochs 60 --target ensemble --seeds 0 1 2 3 4 5
    # one fixed setting, no validation (session 1/2 runs: two TinyCNNs, T 1, alpha 0.5, 30 epochs)
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/distill_mutual.py --train-digits 1000 --epochs 30 --threads 1

Peer 0 is ``--peer0`` (``PEERS``; default TinyCNN, ``modelpress.distill.students:TinyCNN``, 11,978 params; or an
untrained zoo LeNet-5, 431,080, or LeNet-300-100, 266,610); peer 1 is ``--peer1`` (default ``same``: peer 0's
architecture; or TinyMLP with 128 hidden units, 101,770 params: a different architecture family). For seed ``s``,
peer ``i`` is initialized with seed ``10 s + i``. Mutual: the ``distill`` stage with ``peers: 2`` /
``peer_students: [peer 1]`` and ``kd: {temperature: T, alpha: a}`` (Zhang et al.: ``(1 - a) CE + a T^2
KL(p_other || p_self)``; with ``--target ensemble``, ``mutual_target: ensemble``: ``p_other`` becomes the average of
both peers' softened probabilities, KDCL). Independent: the same initialization trained alone with cross-entropy
for the same epochs, optimizer (Adam, cosine), learning rate 3e-3, batch 128, data order and (with ``--augment``)
the same perturbed stream (``modelpress.distill.transfer``).

Several values of an option form a grid, scored on a validation split carved from the training digits (train on the
same ``--train-digits`` subset, score on 1,000 of the other training digits; ``--val-seeds``, default 0, averaged):
the setting whose *worse* peer gains most over its independent self is chosen, then run with every seed on the
1,000 held-out digits. Mean +- sample std over seeds.
"""

from __future__ import annotations

import argparse
import itertools
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
from modelpress.task import ClassificationTask, Task
from modelpress.tasks.mnist import mnist5k
from modelpress.train import fit

sys.path.insert(0, str(Path(__file__).parent))
from distill_kd_mnist import AUGMENT, train_subset  # the same stratified subset and perturbations
from distill_pruned_kd import validation_task  # the same validation digits

PEER0 = StudentSpec(ref="modelpress.distill.students:TinyCNN")
PEERS = {"tinycnn": PEER0,
         "tinymlp": StudentSpec(ref="modelpress.distill.students:TinyMLP", kwargs={"hidden": 128}),
         "lenet5": StudentSpec(ref="zoo:lenet5"),  # untrained LeNet-5 (Caffe sizes), 431,080 params
         "lenet300": StudentSpec(ref="zoo:lenet300")}  # untrained MLP 784-300-100-10, 266,610 params


def compare(task: ClassificationTask, setting: dict, seed: int, cache: dict) -> dict[str, float]:
    """Accuracy of both peers trained together and each trained alone (``cache`` keeps the alone runs)."""
    augment = AugmentConfig(**AUGMENT[setting["augment"]]) if setting["augment"] != "none" else None
    data: Task = TransferTask(task, augment) if augment is not None else task
    train = FinetuneConfig(epochs=setting["epochs"], lr=3e-3, batch_size=128)
    peer0 = PEERS[setting["peer0"]]
    peer1 = peer0 if setting["peer1"] == "same" else PEERS[setting["peer1"]]
    mutual = {"peers": 2} if peer1 == peer0 else {"peer_students": [peer1]}
    config = DistillConfig(student=peer0, kd={"temperature": setting["T"], "alpha": setting["alpha"]}, train=train,
                           augment=augment, mutual_target=setting["target"], **mutual)
    ctx = StageContext(task=task, seed=10 * seed, quiet=True)
    first = apply_distill(torch.nn.Identity(), config, ctx)  # the model argument is unused with peers
    scores = {"mutual 0": task.evaluate(first)["accuracy"], "mutual 1": ctx.notes["peer_metrics"][0]["accuracy"]}
    for i, spec in enumerate((peer0, peer1)):
        key = (task.name, spec.model_dump_json(), setting["augment"], setting["epochs"], seed, i)
        if key not in cache:
            alone = build_student(spec, task, 10 * seed + i)
            fit(alone, data, train, seed=10 * seed, quiet=True)
            cache[key] = task.evaluate(alone)["accuracy"]
        scores[f"independent {i}"] = cache[key]
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train-digits", type=int, default=None, help="train on a stratified subset this big")
    parser.add_argument("--peer0", choices=sorted(PEERS), nargs="+", default=["tinycnn"])
    parser.add_argument("--peer1", choices=["same", *sorted(PEERS)], nargs="+", default=["same"],
                        help="same: peer 0's architecture (another init)")
    parser.add_argument("--temperature", type=float, nargs="+", default=[1.0])
    parser.add_argument("--alpha", type=float, nargs="+", default=[0.5])
    parser.add_argument("--augment", choices=["none", *sorted(AUGMENT)], nargs="+", default=["none"],
                        help="training streams (see AUGMENT); every arm trains on the same one")
    parser.add_argument("--epochs", type=float, nargs="+", default=[30])
    parser.add_argument("--target", choices=["peers", "ensemble"], nargs="+", default=["peers"],
                        help="what each peer mimics: the other peer (DML) or the peers' average (KDCL)")
    parser.add_argument("--val-seeds", type=int, nargs="+", default=[0], help="seeds of the validation runs")
    parser.add_argument("--validate-only", action="store_true", help="stop after the validation grid and the choice")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    full = mnist5k()
    task = train_subset(full, args.train_digits)
    grid = [dict(zip(("peer0", "peer1", "T", "alpha", "augment", "epochs", "target"), values, strict=True))
            for values in itertools.product(args.peer0, args.peer1, args.temperature, args.alpha, args.augment,
                                            args.epochs, args.target)]
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} {platform.machine()} torch {torch.__version__} "
          f"threads {args.threads}; peer 0 {' / '.join(args.peer0)}; lr 3e-3, batch 128; {len(task.x_train)} training "
          "digits", flush=True)
    cache: dict = {}
    setting = grid[0]
    if len(grid) > 1:
        if args.train_digits is None:
            parser.error("a grid needs --train-digits (validation digits are the training digits left out)")
        val = validation_task(full, args.train_digits)
        margins = []
        for candidate in grid:
            runs = [compare(val, candidate, seed, cache) for seed in args.val_seeds]
            s = {name: statistics.mean(r[name] for r in runs) for name in runs[0]}  # mean over validation seeds
            gains = [s[f"mutual {i}"] - s[f"independent {i}"] for i in range(2)]
            margins.append(min(gains))
            print(f"validation {candidate}: " + ", ".join(f"{k} {v:.4f}" for k, v in s.items())
                  + f"; gains {100 * gains[0]:+.2f} / {100 * gains[1]:+.2f} points", flush=True)
        setting = grid[max(range(len(grid)), key=margins.__getitem__)]
        print(f"chosen on validation (largest gain of the worse peer): {setting}", flush=True)
        if args.validate_only:
            return
    print(f"held-out run: {setting}", flush=True)
    results: dict[str, list[float]] = {"independent 0": [], "mutual 0": [], "independent 1": [], "mutual 1": []}
    for seed in args.seeds:
        for name, value in compare(task, setting, seed, cache).items():
            results[name].append(value)
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
