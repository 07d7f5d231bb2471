"""Claim: Tucker-2 (or CP) factorization of zoo:resnet-small's 3x3 convs at >= 3x fewer conv parameters, with the
accuracy before and after fine-tuning and the measured latency against the original in the same process.

    PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/lowrank_resnet_small.py --method tucker
    PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/lowrank_resnet_small.py --method cp
    PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/lowrank_resnet_small.py --method tucker --keep-if-faster

Runs ``recipes/resnet-small-<method>.yaml`` through ``modelpress.recipe.run.run`` (the same path as ``modelpress
compress``), so the accuracy is on the 1,000 held-out MNIST-5k digits and the size is the bytes of the packed file.
It also reports the accuracy right after the factorization (before fine-tuning), the parameters of all Conv2d layers
before and after, and the latency at batch 32 with 2 threads: original and factorized timed alternately (``--rounds``
rounds of ``measure_latency``, 20 runs each), medians of the per-round medians. The machine is shared with other
jobs: timings are indicative only. ``--keep-if-faster`` turns on the stage's per-layer latency check (a layer stays
factorized only if it measured faster than the original on its real input at batch 32).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
from pathlib import Path

import torch
from torch import nn

from modelpress import zoo
from modelpress.evaluate.latency import measure_latency
from modelpress.recipe import load_recipe
from modelpress.recipe.registry import StageContext, apply_stage
from modelpress.recipe.run import run
from modelpress.tasks.mnist import mnist5k

ROOT = Path(__file__).resolve().parents[1]


def conv_params(model: nn.Module) -> int:
    """Parameters of every Conv2d layer (factorized convs are Conv2d layers too)."""
    return sum(p.numel() for m in model.modules() if isinstance(m, nn.Conv2d) for p in m.parameters(recurse=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=["tucker", "cp"], default="tucker")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep-if-faster", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    task = mnist5k()
    recipe = load_recipe(ROOT / "recipes" / f"resnet-small-{args.method}.yaml")
    original = zoo.load("resnet-small", task).eval()
    dense_acc = task.evaluate(original)["accuracy"]
    stage = recipe.stages[0].model_copy(update={"keep_if_faster": args.keep_if_faster})
    recipe = recipe.model_copy(update={"stages": (stage,)})
    no_finetune = apply_stage(copy.deepcopy(original), stage.model_copy(update={"finetune": None}),
                              StageContext(task=task))
    before_ft = task.evaluate(no_finetune)["accuracy"]
    with tempfile.TemporaryDirectory() as tmp:
        result = run(recipe, copy.deepcopy(original), task, out=Path(tmp) / "m.mpz", quiet=True)
    model = result.model.eval()
    rows = result.history.rows
    x = task.example_inputs(32)
    times: dict[str, list[float]] = {"original": [], "factorized": []}
    for _ in range(args.rounds):
        times["original"].append(measure_latency(original, x, threads=2, warmup=3, runs=20).median_ms)
        times["factorized"].append(measure_latency(model, x, threads=2, warmup=3, runs=20).median_ms)
    lat = {k: statistics.median(v) for k, v in times.items()}
    notes = rows[-1].notes
    print(f"method: {args.method} ({recipe.name}, keep_if_faster {args.keep_if_faster}); torch {torch.__version__}, "
          "threads 2")
    print(f"conv params: {conv_params(original):,} -> {conv_params(model):,} "
          f"({conv_params(original) / conv_params(model):.2f}x fewer)")
    print(f"model params: {rows[0].params:,} -> {rows[-1].params:,}; file bytes {rows[0].file_bytes:,} -> "
          f"{rows[-1].file_bytes:,}")
    print(f"factorized layers: {len(notes['layers'])}, skipped: {[(s.layer, s.reason) for s in rows[-1].skipped]}")
    for name, layer in notes["layers"].items():
        print(f"  {name}: ranks {layer['ranks']}, params {layer['params_before']:,} -> {layer['params_after']:,}")
    print(f"accuracy: dense {dense_acc:.4f}, factorized before fine-tuning {before_ft:.4f}, after "
          f"{rows[-1].metrics['accuracy']:.4f}")
    speedup = lat["original"] / lat["factorized"]
    print(f"latency batch 32, 2 threads (median of {args.rounds} alternating rounds): original "
          f"{lat['original']:.2f} ms, factorized {lat['factorized']:.2f} ms ({speedup:.2f}x)")
    print(f"FLOPs per example: {rows[0].flops:,} -> {rows[-1].flops:,}")


if __name__ == "__main__":
    main()
