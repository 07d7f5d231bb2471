"""Diagnostic: how much each FFN matrix of all-MiniLM-L6-v2 costs in fidelity when it alone is factorized by
activation-aware SVD, at several ranks, scored on the ``sentences`` task's VALIDATION sentences (disjoint from the
training and the held-out parts), before any training. It answers whether giving some layers more rank than others
(at the same total) could help the 50% FFN recipe (``recipes/minilm-ffn-svd.yaml``, rank 153 everywhere).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/lowrank_minilm_sensitivity.py --threads 2

Prints, per matrix, ``1 - mean cosine`` with only that matrix factorized at each ``--ranks`` rank, then the error
with all 12 at the middle rank, and the best allocation of the same total rank (multiples of 16, greedy on the
measured errors interpolated log-linearly in the rank) with the error it predicts if the errors added up.
"""

from __future__ import annotations

import argparse
import copy
import math

import torch
from torch import nn

from modelpress.lowrank.svd import factorize_svd
from modelpress.lowrank.whiten import input_grams
from modelpress.provenance import replace_module
from modelpress.tasks.sentences import SentencesTask
from modelpress.zoo.minilm import load_minilm

NAMES = [f"bert.encoder.layer.{i}.{part}.dense" for i in range(6) for part in ("intermediate", "output")]


def factorized(base: nn.Module, ranks: dict[str, int], grams: dict[str, torch.Tensor]) -> nn.Module:
    """A copy of ``base`` with each named Linear replaced by its whitened SVD pair at the given rank."""
    model = copy.deepcopy(base)
    for name, rank in ranks.items():
        model = replace_module(model, name, factorize_svd(model.get_submodule(name), rank, name, grams[name]))
    return model


def interpolated(errors: dict[int, float], rank: int) -> float:
    """The error at ``rank``, log-linear between (and beyond) the measured ranks."""
    ranks = sorted(errors)
    low = max([r for r in ranks[:-1] if r <= rank], default=ranks[0])
    high = ranks[ranks.index(low) + 1]
    t = (rank - low) / (high - low)
    return math.exp((1 - t) * math.log(errors[low]) + t * math.log(errors[high]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, nargs=3, default=[96, 153, 230])
    parser.add_argument("--calibration-batches", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = SentencesTask(extra_train=None, evaluate_on="validation", quiet=True)
    base = load_minilm().eval()
    # X^T X of every target's inputs, padding tokens left out (input 1 is the attention mask), from the original
    grams = input_grams(base, NAMES, task.calibration_batches(args.calibration_batches, seed=0), 1)
    errors: dict[str, dict[int, float]] = {}
    for name in NAMES:
        errors[name] = {rank: 1 - task.evaluate(factorized(base, {name: rank}, grams))["mean_cosine"]
                        for rank in args.ranks}
        print(f"{name:42s} " + "  ".join(f"rank {r}: {e:.5f}" for r, e in errors[name].items()), flush=True)
    middle = args.ranks[1]
    joint = 1 - task.evaluate(factorized(base, dict.fromkeys(NAMES, middle), grams))["mean_cosine"]
    print(f"all 12 at rank {middle}: {joint:.5f} (sum of the single-matrix errors "
          f"{sum(e[middle] for e in errors.values()):.5f})")
    budget, ranks = middle * len(NAMES), dict.fromkeys(NAMES, 64)
    while sum(ranks.values()) + 16 <= budget:  # each step: 16 more rank where it lowers the error most
        gain = {n: interpolated(errors[n], ranks[n]) - interpolated(errors[n], ranks[n] + 16) for n in NAMES}
        ranks[max(gain, key=gain.__getitem__)] += 16
    predicted = sum(interpolated(errors[n], ranks[n]) for n in NAMES)
    print(f"greedy allocation of {sum(ranks.values())} total rank: {[ranks[n] for n in NAMES]}; predicted sum "
          f"{predicted:.5f} vs {sum(e[middle] for e in errors.values()):.5f} uniform")


if __name__ == "__main__":
    main()
