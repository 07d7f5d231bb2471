"""Claim: on LeNet-300-100 (MNIST-5k), a lottery ticket with at most 15% of the weights left, trained from its
rewound initialization, comes within 0.5 points of the dense network, and beats the same mask with a random
re-initialization (mean of 3 seeds).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/prune_lottery_ticket.py [--seeds 0 1 2]

Per seed ``s``: the architecture is initialized fresh (``init_seed = s``) and trained densely for the same budget as
each round (the dense reference of that initialization); iterative magnitude pruning runs ``ROUNDS`` rounds (train,
prune the lowest-magnitude weights globally, rewind the survivors) to ``SPARSITY``; the ticket (rewound weights +
mask) and the control (the same mask, weights re-drawn with another seed) are each trained with the same budget.
Accuracy is on the 1,000 held-out digits, which no step of the search sees. Prints one row per seed and the means.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time

import torch

from modelpress.config import FinetuneConfig
from modelpress.prune import LotteryTicketConfig, MaskKeeper, Reinit, apply_ticket, find_ticket
from modelpress.prune.lottery import reinitialize
from modelpress.tasks.mnist import mnist5k
from modelpress.train import fit
from modelpress.zoo.models import LeNet300

SPARSITY = 0.88  # 12% of the Linear weights left
ROUNDS = 6  # each round keeps 0.12 ** (1 / 6) = 70.2% of the remaining weights
TRAIN = FinetuneConfig(epochs=20, lr=1e-3, batch_size=64)  # the zoo's reference training recipe for LeNet-300


def _sparsity(model: torch.nn.Module) -> float:
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    return sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rewind-step", type=int, default=None, help="late rewinding: steps of round 1 (None: init)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on a shared 2-core machine 2 threads oversubscribe)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = mnist5k()
    config = LotteryTicketConfig(sparsity=SPARSITY, rounds=ROUNDS, train=TRAIN, rewind_step=args.rewind_step)
    print(f"# {time.strftime('%Y-%m-%d')} {platform.machine()} {platform.processor() or ''} torch {torch.__version__} "
          f"threads {args.threads}; LeNet-300-100 on mnist5k; sparsity {SPARSITY} in {ROUNDS} rounds, "
          f"{TRAIN.epochs:g} epochs each; "
          f"rewind to {'init' if args.rewind_step is None else f'step {args.rewind_step}'}")
    print(f"{'seed':>4} {'dense':>7} {'ticket':>7} {'random':>7} {'left':>6}  per-round sparsity")
    dense_acc, ticket_acc, random_acc = [], [], []
    for seed in args.seeds:
        start = time.perf_counter()
        dense = LeNet300()
        reinitialize(dense, seed)
        fit(dense, task, TRAIN, seed=seed, quiet=True)
        model = LeNet300()
        ticket = find_ticket(model, config.model_copy(update={"init_seed": seed}), task, quiet=True, seed=seed)
        control = copy.deepcopy(model)
        apply_ticket(model, ticket, Reinit.rewind)
        apply_ticket(control, ticket, Reinit.random, init_seed=seed)
        for net in (model, control):
            fit(net, task, TRAIN, callbacks=[MaskKeeper(ticket.masks)], seed=seed + ROUNDS, quiet=True)
        accs = [task.evaluate(net)["accuracy"] for net in (dense, model, control)]
        dense_acc.append(accs[0])
        ticket_acc.append(accs[1])
        random_acc.append(accs[2])
        rounds = " ".join(f"{r['sparsity']:.3f}" for r in ticket.rounds)
        print(f"{seed:>4} {accs[0]:>7.4f} {accs[1]:>7.4f} {accs[2]:>7.4f} {1 - _sparsity(model):>6.3f}  {rounds}  "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    mean = statistics.mean
    print(f"mean {mean(dense_acc):>7.4f} {mean(ticket_acc):>7.4f} {mean(random_acc):>7.4f}")
    print(f"ticket - dense: {100 * (mean(ticket_acc) - mean(dense_acc)):+.2f} points; "
          f"ticket - random re-init: {100 * (mean(ticket_acc) - mean(random_acc)):+.2f} points")


if __name__ == "__main__":
    main()
