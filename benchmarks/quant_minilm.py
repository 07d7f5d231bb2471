"""Claim: dynamic int8 (W8A8, ``torch._int_mm``) on every Linear of all-MiniLM-L6-v2 keeps its sentence embeddings
faithful (mean cosine to fp32 on held-out sentences) and changes batch-32 x 128-token latency as measured here; int4
weight-only (group 32) and int8/int4 embedding tables shrink the file.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/quant_minilm.py [--threads 2] [--runs 10]

Fidelity: the ``sentences`` task's held-out sentences against the fp32 model's embeddings (mean and minimum cosine,
Spearman correlation of pairwise similarities, nearest-neighbour agreement). Latency: batch 32 x 128 tokens (the
task's ``example_inputs``), median of ``--runs`` forwards after 2 warm-up runs, models timed alternately in one
process; the machine is shared with other jobs, so ratios are indicative. File: bytes of ``modelpress.pack`` output,
which is unpacked and checked to give bit-identical embeddings.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from modelpress import zoo
from modelpress.pack import pack, unpack
from modelpress.quantize import QuantizeConfig, quantize_
from modelpress.tasks.sentences import SentencesTask

VARIANTS = {
    "dynamic-int8 (Linear)": QuantizeConfig(mode="dynamic-int8"),
    "dynamic-int8 + int8 embeddings": QuantizeConfig(mode="dynamic-int8", embeddings=True),
    "weight-int4 g32 + int4 embeddings": QuantizeConfig(mode="weight-int4", group_size=32, embeddings=True),
}


def _latency(models: dict[str, nn.Module], inputs: tuple[torch.Tensor, ...], runs: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in models}
    with torch.inference_mode():
        for i in range(runs + 2):
            for name, model in models.items():
                start = time.perf_counter()
                model(*inputs)
                if i >= 2:
                    times[name].append((time.perf_counter() - start) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = SentencesTask()
    base = zoo.load("minilm", task).eval()
    models: dict[str, nn.Module] = {"fp32": base}
    for name, config in VARIANTS.items():
        models[name] = quantize_(copy.deepcopy(base), config).eval()
    directory = Path(tempfile.mkdtemp())
    inputs = task.example_inputs(32)  # input ids and attention mask, [32, 128]
    print(f"# torch {torch.__version__}, threads {args.threads}, batch 32 x 128 tokens, median of {args.runs} runs")
    latency = _latency(models, inputs, args.runs)
    print("| model | file bytes | vs fp32 file | mean cosine | min cosine | spearman | nn agreement | latency ms | "
          "vs fp32 |")
    print("|---|---|---|---|---|---|---|---|---|")
    fp32_bytes = 0
    for name, model in models.items():
        path = directory / "m.mpz"
        size = pack(model, path)
        fp32_bytes = fp32_bytes or size
        restored = unpack(path)
        with torch.inference_mode():
            identical = torch.equal(restored(*inputs), model(*inputs))
        if not identical:
            raise SystemExit(f"{name}: unpacked model differs from the packed one")
        metrics = task.evaluate(model)
        print(f"| {name} | {size:,} | {size / fp32_bytes:.3f} | {metrics['mean_cosine']:.4f} | "
              f"{metrics['min_cosine']:.4f} | {metrics['spearman']:.4f} | {metrics['nn_agreement']:.4f} | "
              f"{latency[name]:.0f} | {latency['fp32'] / latency[name]:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
