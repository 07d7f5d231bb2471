"""Speed of ``kmeans_1d`` (exact 1-D Lloyd to its fixed point) on one core: weights per second, per initialization.

The issue asks for >= 5M weights/s on one core. Values are Laplacian (the shape of trained weights), float32, seed 0;
each case clusters them into 2^bits groups (5 bits = 32 clusters, Deep Compression's fc setting, and 8 bits = 256,
its conv setting) with ``max_iter`` 300 (the ``cluster`` stage's default). Torch and numpy run on one thread
(``OMP_NUM_THREADS=1`` etc. are set before numpy is imported). Figures: the best of ``--repeat`` runs of the whole call
(sort, initialization, Lloyd iterations, labels in input order, inertia) in CPU time of the process
(``time.process_time``: what one core spends, robust to other jobs on the machine) and in wall time, the weights per
CPU second, the Lloyd iterations run, and the CPU time of the sort alone.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/kmeans_speed.py [--sizes 1000000 5000000] [--repeat 3]``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from modelpress.share.config import Init  # noqa: E402
from modelpress.share.kmeans import kmeans_1d  # noqa: E402


def best_of(repeat: int, fn) -> tuple[float, float, object]:
    """The shortest CPU time and the shortest wall time of ``repeat`` calls of ``fn``, and the last result."""
    cpu = wall = float("inf")
    result = None
    for _ in range(repeat):
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        result = fn()
        cpu = min(cpu, time.process_time() - start_cpu)
        wall = min(wall, time.perf_counter() - start_wall)
    return cpu, wall, result


def main() -> None:
    """Print one row per (size, bits, init)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--bits", type=int, nargs="+", default=[5, 8])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    print("| values | bits | init | CPU time (s) | wall time (s) | weights per CPU second | Lloyd iterations | "
          "sort alone, CPU (s) |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        values = rng.laplace(0.0, 0.05, size).astype(np.float32)
        sort_time, _, _ = best_of(args.repeat, lambda v=values: np.sort(v))
        for bits in args.bits:
            for init in Init:
                cpu, wall, result = best_of(args.repeat,
                                            lambda v=values, b=bits, i=init: kmeans_1d(v, 2 ** b, i, 300))
                print(f"| {size:,} | {bits} | {init.value} | {cpu:.3f} | {wall:.3f} | {size / cpu / 1e6:.1f}M | "
                      f"{result.iterations} | {sort_time:.3f} |")


if __name__ == "__main__":
    main()
