"""Claim: on MNIST-5k (held-out 1,000 digits), static W8A8 keeps LeNet-5 within 0.3 points of fp32, 4-bit QAT
(LSQ) within 0.5 points, ternary QAT (TWN) keeps LeNet-300-100 within 2 points (binary reported), each as a file
that stores integers and unpacks to the same outputs; and an int8 convolution by ``torch._int_mm`` over unfolded
patches is slower than the fp32 one for LeNet-5's layers on this CPU (so static W8A8 computes convolutions in float32
from int8 weights; torch's deprecated quantized engine is not used).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/quant_lenet.py [--threads 2] [--runs 30] [--only "static W8A8"]

Each variant runs its recipe file (``recipes/lenet5-int8.yaml``, ``recipes/lenet5-qat4.yaml``,
``recipes/lenet300-ternary.yaml``; binary: the ternary recipe with ``scheme: binary``) through ``modelpress.run``
exactly as ``modelpress compress`` does, packs the result, unpacks it and checks bit-identical outputs (the script
exits otherwise). Latency: batch 32, median of ``--runs`` forwards after 3 warm-ups, fp32 and compressed models
timed alternately in one process; the machine is shared with other jobs, so ratios are indicative.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from modelpress import zoo
from modelpress.kernels.int8_dynamic import quantize_per_channel
from modelpress.pack import pack, unpack
from modelpress.quantize.qat import QATConfig
from modelpress.recipe import load_recipe, run
from modelpress.recipe.schema import Recipe
from modelpress.tasks.mnist import mnist5k

ROOT = Path(__file__).resolve().parents[1]


def _median_ms(fns: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    """Median wall time of each callable, timed alternately (same load for all)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    with torch.inference_mode():
        for _ in range(3):
            for fn in fns.values():
                fn()
        for _ in range(runs):
            for key, fn in fns.items():
                start = time.perf_counter()
                fn()
                times[key].append((time.perf_counter() - start) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def _binary_recipe() -> Recipe:
    recipe = load_recipe(ROOT / "recipes" / "lenet300-ternary.yaml")
    stage = recipe.stages[0]
    assert isinstance(stage, QATConfig)
    binary = QATConfig(**{**stage.model_dump(), "scheme": "binary", "name": "qat-binary"})
    return recipe.model_copy(update={"name": "lenet300-binary", "stages": [binary]})


def variants() -> list[tuple[str, str, Recipe]]:
    """(label, zoo model, recipe) of every variant measured."""
    recipes = ROOT / "recipes"
    return [("static W8A8", "lenet5", load_recipe(recipes / "lenet5-int8.yaml")),
            ("4-bit QAT (LSQ)", "lenet5", load_recipe(recipes / "lenet5-qat4.yaml")),
            ("ternary QAT (TWN)", "lenet300", load_recipe(recipes / "lenet300-ternary.yaml")),
            ("binary QAT (XNOR)", "lenet300", _binary_recipe())]


def conv_kernels(runs: int) -> None:
    """fp32 conv vs an int8 conv by ``_int_mm`` over unfolded patches, LeNet-5's two convs."""
    print("\n| layer | batch | fp32 conv ms | int8 unfold+_int_mm ms | unfold+_int_mm vs fp32 |")
    print("|---|---|---|---|---|")
    for name, (cin, cout, size) in {"conv1": (1, 20, 28), "conv2": (20, 50, 12)}.items():
        for batch in (1, 32, 256):
            torch.manual_seed(0)
            conv = nn.Conv2d(cin, cout, 5)
            x = torch.randn(batch, cin, size, size)
            qw, _ = quantize_per_channel(conv.weight.detach().reshape(cout, -1))  # int8 [out, cin * 25]
            sx = float(x.abs().max() / 127)

            def unfold_int_mm(x: torch.Tensor = x, qw: torch.Tensor = qw, sx: float = sx) -> torch.Tensor:
                cols = F.unfold(x, 5).transpose(1, 2).reshape(-1, qw.shape[1])  # [B * L, cin * 25]
                qx = torch.round(cols / sx).clamp_(-127, 127).to(torch.int8)
                return torch._int_mm(qx, qw.t()).float()

            ms = _median_ms({"fp32": lambda conv=conv, x=x: conv(x), "unfold": unfold_int_mm}, runs)
            print(f"| {name} | {batch} | {ms['fp32']:.3f} | {ms['unfold']:.3f} | {ms['fp32'] / ms['unfold']:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--only", default=None, help="run only the variant with this label (and no conv kernels)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = mnist5k()
    print(f"torch {torch.__version__}, {args.threads} threads")
    print("| variant | model | fp32 file bytes | file bytes | vs fp32 file | fp32 acc | acc | delta (points) "
          "| fp32 ms (b32) | ms (b32) | speed-up | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    x = task.example_inputs(32)
    with tempfile.TemporaryDirectory() as tmp:
        for label, name, recipe in variants():
            if args.only is not None and label != args.only:
                continue
            fp32 = zoo.load(name, task)
            fp32_bytes = pack(fp32, Path(tmp) / "fp32.mpz")
            fp32_acc = task.evaluate(fp32)["accuracy"]
            start = time.perf_counter()
            result = run(recipe, zoo.load(name, task), task, quiet=True)
            wall = time.perf_counter() - start
            path = Path(tmp) / f"{recipe.name}.mpz"
            nbytes = pack(result.model, path)
            restored = unpack(path)
            with torch.inference_mode():
                if not torch.equal(restored(*x), result.model(*x)):
                    sys.exit(f"{label}: the unpacked model's outputs differ")
            acc = task.evaluate(restored)["accuracy"]
            ms = _median_ms({"fp32": lambda m=fp32: m(*x), "q": lambda m=restored: m(*x)}, args.runs)
            print(f"| {label} | {name} | {fp32_bytes:,} | {nbytes:,} | {nbytes / fp32_bytes:.3f} | {fp32_acc:.3f} | "
                  f"{acc:.3f} | {100 * (acc - fp32_acc):+.1f} | {ms['fp32']:.2f} | {ms['q']:.2f} | "
                  f"{ms['fp32'] / ms['q']:.2f}x | {wall:.1f} |")
    if args.only is None:
        conv_kernels(args.runs)


if __name__ == "__main__":
    main()
