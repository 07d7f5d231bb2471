"""Reference figures of the zoo: parameters, FLOPs, held-out accuracy and latency of each model on its task.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/reference_models.py

Prints one row per model; the figures are recorded in docs/BENCHMARKS.md. Accuracy is on MNIST-5k's fixed 1,000
held-out digits (for MiniLM: fidelity to itself on the sentences held-out part, which must be exactly 1.0).
"""

from __future__ import annotations

import platform
import time

import torch

from modelpress import zoo
from modelpress.analyze import profile_model
from modelpress.tasks.registry import resolve_task

MODELS = [("lenet300", "mnist5k"), ("lenet5", "mnist5k"), ("resnet-small", "mnist5k"),
          ("mobilenet-small", "mnist5k"), ("minilm", "sentences")]


def main() -> None:
    torch.set_num_threads(2)
    print(f"# {time.strftime('%Y-%m-%d')} {platform.machine()} torch {torch.__version__} threads 2")
    print(f"{'model':<16} {'task':<10} {'params':>11} {'FLOPs/ex':>14} {'file bytes':>11} "
          f"{'b1 ms':>8} {'b32 ms':>8}  metrics")
    for name, task_name in MODELS:
        task = resolve_task(task_name)
        model = zoo.load(name, task)
        metrics = task.evaluate(model)
        b1 = profile_model(model, task.example_inputs(1), threads=2, runs=30, memory=False)
        b32 = profile_model(model, task.example_inputs(32), threads=2, runs=10, memory=False, file_bytes=False)
        shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items())
        print(f"{name:<16} {task_name:<10} {b1.params:>11,} {b1.flops:>14,} {b1.file_bytes:>11,} "
              f"{b1.latency.median_ms:>8.3f} {b32.latency.median_ms:>8.3f}  {shown}", flush=True)


if __name__ == "__main__":
    main()
