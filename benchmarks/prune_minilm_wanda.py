"""Claim: pruning all-MiniLM-L6-v2 in one shot, with no fine-tuning, Wanda (|w| * ||x||, per output row) keeps the
embeddings more faithful than magnitude (|w|), both at 50% unstructured and at 2:4.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/prune_minilm_wanda.py [--calibration-batches 8]

Every Linear of the encoder (36 of them: Q, K, V, attention output, FFN in and out, in 6 layers) is pruned with the
same per-layer sparsity (``scope: layer``; Wanda compares within output rows by definition, magnitude within the
layer). Wanda's input norms come from calibration sentences of the task's *training* part. Fidelity is measured on
the 581 held-out sentences against the original model's embeddings: mean and minimum cosine, Spearman correlation of
pairwise similarities, nearest-neighbour agreement.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from modelpress.prune import PruneConfig, prune_
from modelpress.recipe.registry import StageContext
from modelpress.tasks.sentences import SentencesTask
from modelpress.zoo.minilm import load_minilm

ENCODER = ("bert.encoder.*",)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibration-batches", type=int, default=8, help="batches of 16 training sentences")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on a shared 2-core machine 2 threads oversubscribe)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = SentencesTask(quiet=True)
    calibration = {"batches": args.calibration_batches, "batch_size": 16}
    print(f"# {time.strftime('%Y-%m-%d')} {platform.machine()} torch {torch.__version__} threads {args.threads}; "
          f"all-MiniLM-L6-v2, one-shot, no fine-tuning; {args.calibration_batches * 16} calibration sentences")
    print(f"{'pattern':<13} {'criterion':<10} {'sparsity':>8} {'mean cos':>9} {'min cos':>8} {'spearman':>9} "
          f"{'nn agree':>9} {'seconds':>8}")
    dense = task.evaluate(load_minilm())
    print(f"{'dense':<13} {'-':<10} {0.0:>8.3f} {dense['mean_cosine']:>9.4f} {dense['min_cosine']:>8.4f} "
          f"{dense['spearman']:>9.4f} {dense['nn_agreement']:>9.4f}", flush=True)
    for pattern, sparsity in (("unstructured", 0.5), ("2:4", None)):
        for criterion in ("magnitude", "wanda"):
            config = PruneConfig(sparsity=sparsity, pattern=pattern, criterion=criterion, scope="layer",
                                 include=ENCODER, calibration=calibration)
            model = load_minilm()
            ctx = StageContext(task=task, quiet=True)
            start = time.perf_counter()
            prune_(model, config, task, ctx=ctx)
            elapsed = time.perf_counter() - start
            m = task.evaluate(model)
            print(f"{pattern:<13} {criterion:<10} {ctx.notes['sparsity']:>8.3f} {m['mean_cosine']:>9.4f} "
                  f"{m['min_cosine']:>8.4f} {m['spearman']:>9.4f} {m['nn_agreement']:>9.4f} {elapsed:>8.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
