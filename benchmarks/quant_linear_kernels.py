"""Measures whether W8A8 dynamic int8 (``torch._int_mm``) and the weight-only int8/int4 kernels make MiniLM-sized
Linear layers faster than fp32 on this CPU (AVX-512 VNNI), the integer GEMM alone and the whole module forward.

    .venv/bin/python benchmarks/quant_linear_kernels.py [--threads 2] [--runs 30]

For each MiniLM shape (in -> out: 384 -> 384, 384 -> 1536, 1536 -> 384) and each row count (4096 = batch 32 x 128
tokens, 128 = one 128-token sentence, 1 = one token), the wall time of: fp32 ``F.linear``; bf16 ``F.linear``;
``Int8DynamicLinear`` (the whole forward: per-token quantization, int GEMM, rescale, bias); the integer GEMM alone
on pre-quantized activations (``_int_mm only``); the ``Int8WeightOnlyLinear`` and ``Int4WeightOnlyLinear`` (group
32) forwards, which pick their path by row count; and the raw weight-only kernels with bf16 activations
(``_weight_int8pack_mm``, ``_weight_int4pack_mm_for_cpu``) to show where those pay. All are timed alternately in
one process on the same input. The machine is shared with other jobs, so the ratios are indicative, not exact: each
cell gives the median and the minimum (the minimum is the least disturbed by other jobs).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F

from modelpress.kernels import Int4WeightOnlyLinear, Int8DynamicLinear, Int8WeightOnlyLinear
from modelpress.kernels.int8_dynamic import quantize_per_token

SHAPES = ((384, 384), (384, 1536), (1536, 384))
ROWS = (4096, 128, 1)


def _timed(fns: dict[str, Callable[[], object]], runs: int, warmup: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median and minimum ms per call of each function, interleaving the functions so contention hits all alike."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(warmup + runs):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            if i >= warmup:
                times[name].append((time.perf_counter() - start) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}, {k: min(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"# torch {torch.__version__}, {platform.machine()}, cpu capability {torch.backends.cpu.get_cpu_capability()}"
          f", threads {args.threads}, runs {args.runs} (median ms)")
    columns = ("fp32", "bf16", "int8-dynamic", "_int_mm only", "int8-weight", "int4-weight", "int8-weight kernel",
               "int4-weight kernel")
    print("Each cell: median / minimum ms. Speedup: fp32 / int8-dynamic, of medians and of minimums.\n")
    print("| in -> out | rows | " + " | ".join(columns) + " | int8-dynamic speedup |")
    print("|---|---|" + "---|" * len(columns) + "---|")
    for in_features, out_features in SHAPES:
        linear = torch.nn.Linear(in_features, out_features)
        w8d = Int8DynamicLinear.from_linear(linear)
        w8 = Int8WeightOnlyLinear.from_linear(linear)
        w4 = Int4WeightOnlyLinear.from_linear(linear, group_size=32)
        weight, bias = linear.weight.detach(), linear.bias.detach()
        weight16, bias16 = weight.bfloat16(), bias.bfloat16()
        for rows in ROWS:
            x = torch.randn(rows, in_features)
            x16 = x.bfloat16()
            qx, _ = quantize_per_token(x)
            runs = args.runs if rows > 1 else args.runs * 10
            with torch.inference_mode():
                fns: dict[str, Callable[[], object]] = {
                    "fp32": partial(F.linear, x, weight, bias),
                    "bf16": partial(F.linear, x16, weight16, bias16),
                    "int8-dynamic": partial(w8d, x),
                    "_int_mm only": partial(torch._int_mm, qx, w8d.weight_int8.t()),
                    "int8-weight": partial(w8, x),
                    "int4-weight": partial(w4, x),
                    "int8-weight kernel": partial(w8.kernel_matmul, x),
                    "int4-weight kernel": partial(w4.kernel_matmul, x),
                }
                med, low = _timed(fns, runs, args.warmup)
            cells = " | ".join(f"{med[c]:.3f} / {low[c]:.3f}" for c in columns)
            speedup = f"{med['fp32'] / med['int8-dynamic']:.2f}x / {low['fp32'] / low['int8-dynamic']:.2f}x"
            print(f"| {in_features} -> {out_features} | {rows} | {cells} | {speedup} |", flush=True)


if __name__ == "__main__":
    main()
