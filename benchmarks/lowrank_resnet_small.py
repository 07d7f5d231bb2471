"""Claim: Tucker-2 factorization of zoo:resnet-small's 3x3 convs at >= 3x fewer conv parameters is >= 1.5x faster
than the original at batch 32 with 2 threads (both channels_last, same process), within 1 point of its accuracy after
recovery; CP measured the same way.

    # 1. compress (trains: run niced), writes out/rs-tucker.mpz and prints sizes and accuracies
    nice -n 19 env PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/lowrank_resnet_small.py --method tucker \
        --no-timing
    # 2. time the file against the original (timing run: normal priority, quiet machine)
    MODELPRESS_TIMING=1 PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/lowrank_resnet_small.py \
        --method tucker --threads 2
    (same with --method cp; --keep-if-faster turns on the stage's per-layer latency check)

Step 1 runs ``recipes/resnet-small-<method>.yaml`` through ``modelpress.recipe.run.run`` (the path of ``modelpress
compress``): the accuracy is on the 1,000 held-out MNIST-5k digits, the size is the bytes of the packed file. It also
reports the accuracy right after the factorization (before fine-tuning) and the parameters of all Conv2d layers.
Step 2 (skipped if the file is missing: run step 1) unpacks the file, checks its accuracy, and times it against the
original zoo model at batch 32: the two models alternately (``--rounds`` rounds of ``measure_latency``, 20 runs after
3 warm-up runs each), the median of the round medians, in three settings: both channels_last (the headline, same
memory format), the original as the zoo gives it (NCHW) against the file as it loads, and both NCHW.
"""

from __future__ import annotations

import argparse
import copy
import statistics
from pathlib import Path

import torch
from torch import nn

from modelpress import unpack, zoo
from modelpress.evaluate.latency import measure_latency
from modelpress.recipe import load_recipe
from modelpress.recipe.registry import StageContext, apply_stage
from modelpress.recipe.run import run
from modelpress.tasks.mnist import mnist5k

ROOT = Path(__file__).resolve().parents[1]


def conv_params(model: nn.Module) -> int:
    """Parameters of every Conv2d layer (factorized convs are Conv2d layers too)."""
    return sum(p.numel() for m in model.modules() if isinstance(m, nn.Conv2d) for p in m.parameters(recurse=False))


def channels_last(model: nn.Module) -> bool:
    """Whether every Conv2d weight of ``model`` is stored channels_last."""
    return all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in model.modules()
               if isinstance(m, nn.Conv2d))


def compress(args: argparse.Namespace, original: nn.Module, out: Path) -> None:
    """Run the recipe, write ``out``, print sizes and accuracies."""
    task = mnist5k()
    recipe = load_recipe(ROOT / "recipes" / f"resnet-small-{args.method}.yaml")
    stage = recipe.stages[0].model_copy(update={"keep_if_faster": args.keep_if_faster})
    recipe = recipe.model_copy(update={"stages": (stage,)})
    no_finetune = apply_stage(copy.deepcopy(original), stage.model_copy(update={"finetune": None}),
                              StageContext(task=task))
    before_ft = task.evaluate(no_finetune)["accuracy"]
    result = run(recipe, copy.deepcopy(original), task, out=out, quiet=True)
    rows = result.history.rows
    notes = rows[-1].notes
    print(f"method: {args.method} ({recipe.name}, keep_if_faster {args.keep_if_faster}); torch {torch.__version__}")
    print(f"conv params: {conv_params(original):,} -> {conv_params(result.model):,} "
          f"({conv_params(original) / conv_params(result.model):.2f}x fewer)")
    print(f"model params: {rows[0].params:,} -> {rows[-1].params:,}; file bytes {rows[0].file_bytes:,} -> "
          f"{rows[-1].file_bytes:,} ({out})")
    print(f"FLOPs per example: {rows[0].flops:,} -> {rows[-1].flops:,}")
    print(f"factorized layers: {len(notes['layers'])}, skipped: {[(s.layer, s.reason) for s in rows[-1].skipped]}")
    for name, layer in notes["layers"].items():
        print(f"  {name}: ranks {layer['ranks']}, params {layer['params_before']:,} -> {layer['params_after']:,}")
    print(f"accuracy: dense {rows[0].metrics['accuracy']:.4f}, factorized before fine-tuning {before_ft:.4f}, after "
          f"{rows[-1].metrics['accuracy']:.4f}; stage wall time {rows[-1].wall_time_s:.0f} s")


def alternate(a: nn.Module, b: nn.Module, x: tuple[torch.Tensor, ...], threads: int,
              rounds: int) -> tuple[float, float]:
    """Median of the per-round median latencies (ms) of ``a`` and ``b``, timed alternately."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for model, record in ((a, times[0]), (b, times[1])):
            record.append(measure_latency(model, x, threads=threads, warmup=3, runs=20).median_ms)
    return statistics.median(times[0]), statistics.median(times[1])


def time_file(args: argparse.Namespace, original: nn.Module, out: Path) -> None:
    """Unpack ``out``; time it against ``original`` in three memory-format settings."""
    task = mnist5k()
    restored = unpack(out).eval()
    print(f"file {out} ({out.stat().st_size:,} B): accuracy {task.evaluate(restored)['accuracy']:.4f}, loads "
          f"channels_last: {channels_last(restored)}; torch {torch.__version__}, threads {args.threads}")
    x = task.example_inputs(32)  # [32, 1, 28, 28], NCHW as the task gives it
    settings = [("both channels_last", original.to(memory_format=torch.channels_last), restored),
                ("original NCHW (as the zoo gives it) vs the file as loaded",
                 copy.deepcopy(original).to(memory_format=torch.contiguous_format), restored),
                ("both NCHW", copy.deepcopy(original).to(memory_format=torch.contiguous_format),
                 copy.deepcopy(restored).to(memory_format=torch.contiguous_format))]
    for label, a, b in settings:
        dense_ms, factorized_ms = alternate(a, b, x, args.threads, args.rounds)
        print(f"latency batch 32, {args.threads} threads, {label}: original {dense_ms:.2f} ms, factorized "
              f"{factorized_ms:.2f} ms ({dense_ms / factorized_ms:.2f}x)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=["tucker", "cp"], default="tucker")
    parser.add_argument("--out", type=Path, default=None, help="the .mpz (default out/rs-<method>.mpz)")
    parser.add_argument("--no-timing", action="store_true", help="compress only (step 1)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--keep-if-faster", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = args.out or ROOT / "out" / f"rs-{args.method}{'-kif' if args.keep_if_faster else ''}.mpz"
    original = zoo.load("resnet-small", mnist5k()).eval()
    if args.no_timing:
        out.parent.mkdir(parents=True, exist_ok=True)
        compress(args, original, out)
    elif not out.exists():
        raise SystemExit(f"{out} does not exist: run step 1 (--no-timing) first")
    else:
        time_file(args, original, out)


if __name__ == "__main__":
    main()
