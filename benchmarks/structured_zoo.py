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
on one example. The recipes set ``channels_last: true``, so the unpacked model's 4-D weights are channels_last.

Latency at batch 1 and batch 32 is timed three ways, every model in turn within each of ``--rounds`` rounds (each
round one ``modelpress.evaluate.latency.measure_latency``: ``--warmup`` untimed then ``--runs`` timed passes, their
median), the figure the median over rounds; the input is the task's ordinary NCHW batch:

* ``both channels_last`` (the claim): the original copied to channels_last against the pruned model;
* ``vs original as shipped``: the zoo original as it loads (NCHW weights) against the pruned model as it unpacks;
* ``both NCHW``: the original against a copy of the pruned model with contiguous (NCHW) weights.

Per-layer channels before and after are printed for every conv and linear layer that changed.
"""

from __future__ import annotations

import argparse
import copy
import os
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


def nchw(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every parameter and buffer contiguous (NCHW for 4-D ones)."""
    model = copy.deepcopy(model)
    for tensor in [*model.parameters(), *model.buffers()]:
        tensor.data = tensor.data.contiguous()
    return model


def channels_last(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with its 4-D weights channels_last."""
    return copy.deepcopy(model).to(memory_format=torch.channels_last)


def stored_channels_last(model: nn.Module) -> bool:
    """Whether every Conv2d weight of ``model`` has channels_last strides (as the file's record asks)."""
    convs = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]
    return bool(convs) and all(w.stride() == torch.empty(w.shape, memory_format=torch.channels_last).stride()
                               for w in convs)


def timed(models: dict[str, nn.Module], x: torch.Tensor, threads: int, rounds: int, runs: int,
          warmup: int) -> dict[str, float]:
    """Median over interleaved rounds of each model's median latency (ms); every model runs once per round."""
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            times[name].append(measure_latency(model, (x,), threads=threads, warmup=warmup, runs=runs).median_ms)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    """Compress (unless ``--file``), evaluate, time, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["resnet-small", "mobilenet-small"], default="resnet-small")
    parser.add_argument("--file", type=Path, help="a file written by `modelpress compress` with the recipe")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=20, help="timed passes per model per round")
    parser.add_argument("--warmup", type=int, default=3, help="untimed passes before each round's timed ones")
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
    print(f"pruned model as unpacked: conv weights channels_last: {stored_channels_last(pruned)}")
    models = {"original NCHW": original, "original channels_last": channels_last(original),
              "pruned as unpacked": pruned, "pruned NCHW": nchw(pruned)}
    pruned_cl = "pruned as unpacked"  # the recipes' file is channels_last already: no second copy to time
    if not stored_channels_last(pruned):
        pruned_cl, models["pruned channels_last"] = "pruned channels_last", channels_last(pruned)
    pairs = [("both channels_last (claimed)", "original channels_last", pruned_cl),
             ("vs original as shipped (NCHW)", "original NCHW", "pruned as unpacked"),
             ("both NCHW", "original NCHW", "pruned NCHW")]
    print(f"latency: {args.threads} threads, median of {args.rounds} interleaved rounds x {args.runs} runs "
          f"(after {args.warmup} warm-up runs each), torch {torch.__version__}, load average before timing "
          f"{os.getloadavg()[0]:.2f} (other jobs on the machine slow every figure)")
    for batch in (32, 1):
        x = task.example_inputs(batch)[0]
        ms = timed(models, x, args.threads, args.rounds, args.runs, args.warmup)
        for label, base, fast in pairs:
            print(f"  batch {batch:>2} {label:<30} original {ms[base]:7.2f} ms, pruned {ms[fast]:7.2f} ms, "
                  f"speedup {ms[base] / ms[fast]:.2f}x")
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
