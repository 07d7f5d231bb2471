"""Claim: structured channel pruning of zoo:resnet-small on MNIST-5k runs >= 3x faster at batch 32 (2 threads) with
at most 1 point of held-out accuracy lost after recovery; zoo:mobilenet-small reported the same way.

    HF_HUB_OFFLINE=1 nice -n 19 .venv/bin/modelpress compress zoo:resnet-small --task mnist5k \
        --recipe recipes/resnet-small-structured.yaml --out out/rs-structured.mpz
    MODELPRESS_TIMING=1 PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/structured_zoo.py \
        --model resnet-small --file out/rs-structured.mpz --threads 2
    (the same with mobilenet-small, recipes/mobilenet-small-structured.yaml, out/mn-structured.mpz)

Without ``--file`` the recipe is run here first (through ``modelpress.recipe.run.run``, the path of ``modelpress
compress``). The compressed file is unpacked and evaluated on the 1,000 held-out MNIST-5k digits (the fine-tuning
used the training split only); the original is the zoo model with its reference weights. FLOPs are torch's counter
on one example; latencies are medians of ``--rounds`` interleaved rounds of
``modelpress.evaluate.latency.measure_latency`` (original and pruned timed in turn) at batch 1 and batch 32.
Per-layer channels before and after are printed for every conv and linear layer that changed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from modelpress import zoo
from modelpress.evaluate.latency import measure_latency
from modelpress.pack import unpack
from modelpress.recipe.run import run
from modelpress.tasks.mnist import mnist5k

ROOT = Path(__file__).resolve().parents[1]


def flops(model: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one forward pass on ``x`` (torch's counter)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops()


def timed(original: nn.Module, pruned: nn.Module, x: torch.Tensor, threads: int, rounds: int,
          runs: int) -> tuple[float, float]:
    """Median over interleaved rounds of each model's median latency (ms)."""
    a, b = [], []
    for _ in range(rounds):
        a.append(measure_latency(original, (x,), threads=threads, warmup=3, runs=runs).median_ms)
        b.append(measure_latency(pruned, (x,), threads=threads, warmup=3, runs=runs).median_ms)
    return statistics.median(a), statistics.median(b)


def main() -> None:
    """Compress (unless ``--file``), evaluate, time, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["resnet-small", "mobilenet-small"], default="resnet-small")
    parser.add_argument("--file", type=Path, help="a file written by `modelpress compress` with the recipe")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    task = mnist5k()
    original = zoo.load(args.model, task)
    path = args.file
    if path is None:
        path = Path(tempfile.mkdtemp()) / "pruned.mpz"
        recipe = ROOT / "recipes" / f"{args.model}-structured.yaml"
        run(recipe, zoo.load(args.model, task), task, out=path, quiet=True)
    pruned = unpack(path)
    acc_original = task.evaluate(original)["accuracy"]
    acc_pruned = task.evaluate(pruned)["accuracy"]
    x1 = task.example_inputs(1)[0]
    print(f"zoo:{args.model} on mnist5k, file {path} ({path.stat().st_size:,} bytes)")
    print(f"held-out accuracy: original {acc_original:.4f}, pruned {acc_pruned:.4f} "
          f"(change {100 * (acc_pruned - acc_original):+.2f} points)")
    f0, f1 = flops(original, x1), flops(pruned, x1)
    p0, p1 = (sum(p.numel() for p in m.parameters()) for m in (original, pruned))
    print(f"FLOPs per image: {f0:,} -> {f1:,} ({f0 / f1:.2f}x fewer); parameters {p0:,} -> {p1:,}")
    for batch in (1, 32):
        x = task.example_inputs(batch)[0]
        base, fast = timed(original, pruned, x, args.threads, args.rounds, args.runs)
        print(f"latency batch {batch}, {args.threads} threads: original {base:.2f} ms, pruned {fast:.2f} ms, "
              f"speedup {base / fast:.2f}x")
    print("channels (out) before -> after:")
    before = dict(original.named_modules())
    for name, module in pruned.named_modules():
        if isinstance(module, nn.Conv2d | nn.Linear) and name in before:
            old = before[name].weight.shape
            if old != module.weight.shape:
                new = module.weight.shape
                print(f"  {name:<28} {old[0]:>4} -> {new[0]:<4} (in {old[1]} -> {new[1]})")


if __name__ == "__main__":
    main()
