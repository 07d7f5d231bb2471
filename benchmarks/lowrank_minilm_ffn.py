"""Claim: the FFN layers of all-MiniLM-L6-v2 (intermediate.dense and output.dense of all 6 layers) factorized by
activation-aware truncated SVD to 50% of their parameters, then distilled from the original (cosine between the
sentence embeddings), keep a mean cosine >= 0.97 to the original's embeddings on the held-out sentences; latency at
batch 32 x 128 tokens and batch 1 x 128 tokens against the original.

    # 1. compress (trains: run niced); writes out/minilm-ffn-svd.mpz, prints fidelity before and after distillation
    nice -n 19 env HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/lowrank_minilm_ffn.py --no-timing
    #    (--epochs N overrides the recipe's epochs; --random-batches batches at random instead of by length)
    # 2. time the file against the original (timing run: normal priority, quiet machine)
    MODELPRESS_TIMING=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/lowrank_minilm_ffn.py --threads 2

Step 1 runs ``recipes/minilm-ffn-svd.yaml`` through ``modelpress.recipe.run.run`` (the path of ``modelpress
compress``; fidelity on the 581 held-out sentences, distillation and calibration on the 24,253 training ones of
``sentences-xl``) and the same low-rank stage without its fine-tuning, for the fidelity before distillation. Step
2 unpacks the file, checks its fidelity, and times it against ``zoo:minilm``: the two alternately, ``--rounds``
rounds of ``measure_latency`` (10 runs after 2 warm-up runs at batch 32, 30 after 5 at batch 1), the median of the
round medians.
"""

from __future__ import annotations

import argparse
import copy
import statistics
from pathlib import Path

import torch

from modelpress import unpack
from modelpress.evaluate.latency import measure_latency
from modelpress.recipe import load_recipe
from modelpress.recipe.registry import StageContext, apply_stage
from modelpress.recipe.run import run
from modelpress.tasks.sentences import SentencesTask
from modelpress.zoo.minilm import load_minilm

ROOT = Path(__file__).resolve().parents[1]


def show(metrics: dict[str, float]) -> str:
    """The fidelity metrics on one line."""
    return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())


def compress(task: SentencesTask, out: Path, epochs: float | None = None) -> None:
    """Run the recipe (with ``epochs`` of distillation if given), write ``out``, print the fidelity before and after
    distillation and the sizes."""
    recipe = load_recipe(ROOT / "recipes" / "minilm-ffn-svd.yaml")
    if epochs is not None:
        finetune = recipe.stages[0].finetune.model_copy(update={"epochs": epochs})
        recipe = recipe.model_copy(update={"stages": (recipe.stages[0].model_copy(update={"finetune": finetune}),)})
    stage = recipe.stages[0]
    before = apply_stage(load_minilm(), stage.model_copy(update={"finetune": None}), StageContext(task=task))
    print(f"after the SVD, before distillation: {show(task.evaluate(before))}", flush=True)
    del before
    result = run(recipe, load_minilm(), task, out=out, quiet=True)
    rows = result.history.rows
    notes = rows[-1].notes
    ranks = sorted({tuple(v["ranks"]) for v in notes["layers"].values()})
    print(f"FFN params {notes['params_before']:,} -> {notes['params_after']:,} "
          f"({notes['params_after'] / notes['params_before']:.3f}); ranks {ranks}")
    for row in rows:
        print(f"{row.stage:>24}: params {row.params:,}, file {row.file_bytes:,} B, FLOPs {row.flops:,}, "
              f"{show(row.metrics)}, stage wall time {row.wall_time_s / 60:.1f} min", flush=True)


def alternate(a: torch.nn.Module, b: torch.nn.Module, x: tuple[torch.Tensor, ...], threads: int, rounds: int,
              warmup: int, runs: int) -> tuple[float, float]:
    """Median of the per-round median latencies (ms) of ``a`` and ``b``, timed alternately."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for model, record in ((a, times[0]), (b, times[1])):
            record.append(measure_latency(model, x, threads=threads, warmup=warmup, runs=runs).median_ms)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "minilm-ffn-svd.mpz")
    parser.add_argument("--no-timing", action="store_true", help="compress only (step 1)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=float, default=None,
                        help="step 1: distillation epochs (default: the recipe's)")
    parser.add_argument("--random-batches", action="store_true", help="step 1: random batches instead of the "
                        "sentences-xl task's length-bucketed ones (session 7's first run)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # step 1 runs the recipe's task, sentences-xl (24,253 training sentences to calibrate and distil on); step 2
    # needs only the 581 held-out sentences, the same in both, so it skips embedding the larger training part
    task = (SentencesTask(quiet=True, extra_train=None, transfer=None, bucket=not args.random_batches)
            if args.no_timing else SentencesTask(quiet=True))
    if args.no_timing:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        compress(task, args.out, args.epochs)
        return
    if not args.out.exists():
        raise SystemExit(f"{args.out} does not exist: run step 1 (--no-timing) first")
    original, restored = load_minilm().eval(), unpack(args.out).eval()
    print(f"file {args.out} ({args.out.stat().st_size:,} B): {show(task.evaluate(restored))}; torch "
          f"{torch.__version__}, threads {args.threads}", flush=True)
    for batch, warmup, runs in ((32, 2, 10), (1, 5, 30)):
        x = task.example_inputs(batch)  # (ids, mask) [batch, 128]
        dense_ms, factorized_ms = alternate(original, copy.deepcopy(restored), x, args.threads, args.rounds, warmup,
                                            runs)
        print(f"latency batch {batch} x 128 tokens, {args.threads} threads: original {dense_ms:.2f} ms, "
              f"FFN-SVD {factorized_ms:.2f} ms ({dense_ms / factorized_ms:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
