"""Claim (measured, not assumed): on this CPU torch's sparse kernels beat the dense matmul only above a crossover
sparsity that depends on the shape and the batch; modelpress uses a sparse kernel for a layer only where measured
faster (``modelpress.prune.sparse_linear.sparsify_for_inference``).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/prune_sparse_kernels.py [--threads 2] [--runs 30]

Part 1 times ``y = x W^T`` for Linear shapes of the zoo (LeNet-300-100's fc1; MiniLM's attention and FFN) and a
large square one, at batch sizes 1, 32 and 256 and sparsities 50-99%: dense (``F.linear``), CSR (random
unstructured zeros) and BSR with 16x16 blocks (whole blocks zero, where the shape divides). Each figure is the
median of ``--runs`` timed calls after warm-up; the kernels of one row are timed in alternation (one call of each
per round), so load from other processes hits them alike. It prints, per shape, batch and kernel, the crossover:
the lowest sparsity from which the sparse kernel is faster at every higher sparsity measured.

Part 2 prunes LeNet-300-100 to 95% (global magnitude) and to 99%, lets ``sparsify_for_inference`` pick kernels per
layer at batch 1 and batch 256, and reports the whole model's latency before and after.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time
import warnings

import torch
from torch import nn

from modelpress import zoo
from modelpress.evaluate.latency import measure_latency, num_threads
from modelpress.prune import PruneConfig, prune_
from modelpress.prune.sparse_linear import SparseKernel, SparseLinear, sparsify_for_inference
from modelpress.tasks.mnist import mnist5k

SHAPES = [("lenet300.fc1", 300, 784), ("minilm.attn", 384, 384), ("minilm.ffn_in", 1536, 384),
          ("minilm.ffn_out", 384, 1536), ("square4096", 4096, 4096)]
BATCHES = (1, 32, 256)
SPARSITIES = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)
BLOCK = 16


def _weights(out: int, inp: int, sparsity: float, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """A random unstructured and (where the shape divides) a 16x16-block weight ``[out, inp]`` at ``sparsity``."""
    dense = torch.randn(out, inp, generator=generator)
    weights = {"csr": dense * (torch.rand(out, inp, generator=generator) >= sparsity)}
    if out % BLOCK == 0 and inp % BLOCK == 0:
        blocks = torch.rand(out // BLOCK, inp // BLOCK, generator=generator) >= sparsity
        weights["bsr16"] = dense * blocks.repeat_interleave(BLOCK, 0).repeat_interleave(BLOCK, 1)
    return weights


def _linear(weight: torch.Tensor) -> nn.Linear:
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    with torch.no_grad():
        layer.weight.copy_(weight)
    return layer


def _interleaved_ms(modules: dict[str, nn.Module], x: torch.Tensor, threads: int, runs: int,
                    warmup: int = 3) -> dict[str, float]:
    """Median ms per call of each module on ``x``, timed in alternation (one call of each per round, the order
    rotating), so a burst of load from other jobs slows every kernel of the comparison alike."""
    names = list(modules)
    times: dict[str, list[float]] = {name: [] for name in names}
    with num_threads(threads), torch.inference_mode():
        for name in names:
            for _ in range(warmup):
                modules[name](x)
        for r in range(runs):
            for name in names[r % len(names):] + names[:r % len(names)]:
                start = time.perf_counter()
                modules[name](x)
                times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(values) for name, values in times.items()}


def _kernels(threads: int, runs: int) -> None:
    generator = torch.Generator().manual_seed(0)
    print(f"{'shape':<15} {'[out, in]':>12} {'batch':>5} {'sparsity':>8} {'dense ms':>9} {'csr ms':>9} "
          f"{'bsr16 ms':>9}")
    crossovers: list[str] = []
    for name, out, inp in SHAPES:
        for batch in BATCHES:
            x = torch.randn(batch, inp, generator=generator)
            faster: dict[str, list[tuple[float, bool]]] = {"csr": [], "bsr16": []}
            for sparsity in SPARSITIES:
                weights = _weights(out, inp, sparsity, generator)
                modules: dict[str, nn.Module] = {"dense": _linear(weights["csr"])}
                for kind, weight in weights.items():
                    kernel = SparseKernel.csr if kind == "csr" else SparseKernel.bsr
                    modules[kind] = SparseLinear(weight, None, kernel, None if kind == "csr" else BLOCK)
                row = _interleaved_ms(modules, x, threads, runs)
                dense_ms = row["dense"]
                for kind in weights:
                    faster[kind].append((sparsity, row[kind] < dense_ms))
                bsr = f"{row['bsr16']:>9.4f}" if "bsr16" in row else f"{'-':>9}"
                print(f"{name:<15} {f'[{out}, {inp}]':>12} {batch:>5} {sparsity:>8.2f} {dense_ms:>9.4f} "
                      f"{row['csr']:>9.4f} {bsr}", flush=True)
            for kind, points in faster.items():
                if not points:
                    continue
                # the crossover: lowest sparsity from which every higher measured sparsity is faster too
                crossing = None
                for sparsity, is_faster in reversed(points):
                    if not is_faster:
                        break
                    crossing = sparsity
                shown = f">= {crossing:.2f}" if crossing is not None else "never (up to 0.99)"
                crossovers.append(f"{name:<15} batch {batch:>3} {kind:<6} faster than dense at sparsity {shown}")
    print("\n# crossovers")
    for line in crossovers:
        print(line)


def _runtime(threads: int, runs: int) -> None:
    task = mnist5k()
    print("\n# sparsify_for_inference on LeNet-300-100 (global magnitude, no fine-tuning)")
    print(f"{'sparsity':>8} {'batch':>5} {'dense ms':>9} {'chosen ms':>9} {'speedup':>8}  kernels (fc1, fc2, fc3)")
    for sparsity in (0.95, 0.99):
        pruned = zoo.load("lenet300", task)
        prune_(pruned, PruneConfig(sparsity=sparsity))
        for batch in (1, 256):
            inputs = task.example_inputs(batch)
            model = copy.deepcopy(pruned)
            choices = {c.layer: c.chosen for c in sparsify_for_inference(model, inputs, threads=threads, runs=runs)}
            before = measure_latency(pruned, inputs, threads=threads, runs=runs).median_ms
            after = measure_latency(model, inputs, threads=threads, runs=runs).median_ms
            with torch.inference_mode():
                same = torch.allclose(model(*inputs), pruned(*inputs), atol=1e-4)
            kernels = ", ".join(choices.get(n, "dense") for n in ("fc1", "fc2", "fc3"))
            print(f"{sparsity:>8.2f} {batch:>5} {before:>9.4f} {after:>9.4f} {before / after:>7.2f}x  {kernels}"
                  f"{'' if same else '  OUTPUTS DIFFER'}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*Sparse.*support is in beta.*")
    print(f"# {time.strftime('%Y-%m-%d')} {platform.machine()} torch {torch.__version__} threads {args.threads}; "
          f"median of {args.runs} runs")
    _kernels(args.threads, args.runs)
    _runtime(args.threads, args.runs)


if __name__ == "__main__":
    main()
