"""Claim: mixed precision chosen from per-layer sensitivity at an average of <= 5 bits per weight beats uniform
4-bit in the task metric and uniform 8-bit in file size, on LeNet-5 (MNIST-5k held-out accuracy) and on
all-MiniLM-L6-v2 (mean cosine to fp32 on the held-out sentences). Also explicit per-type maps and bias correction.

    HF_HUB_OFFLINE=1 nice -n 19 .venv/bin/python benchmarks/quant_mixed_precision.py --model lenet5 [--threads 1]
    HF_HUB_OFFLINE=1 nice -n 19 .venv/bin/python benchmarks/quant_mixed_precision.py --model minilm [--threads 1]
        [--plot docs/benchmarks/quantization_fidelity_minilm_bits.png]

Every variant is a ``quantize-mixed`` stage run through ``run_stage`` as a recipe does. Sensitivity sweeps,
GPTQ Hessians and bias-correction means use the task's training inputs only (``calibration_batches``); the metric is
measured on the held-out split of the unpacked model. Bytes: ``modelpress.pack`` output, unpacked and checked to give
bit-identical outputs (the script exits otherwise). ``avg bits``: mean level bits per quantized weight (scales and
zero points not counted), ``eff bits``: with them (before entropy coding). For LeNet-5 also the SQNR of the held-out
logits against the fp32 model's (a finer fidelity figure than the accuracy on 1,000 digits).
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from modelpress import zoo
from modelpress.pack import pack, unpack
from modelpress.quantize.mixed import MixedPrecisionConfig
from modelpress.quantize.sensitivity import sqnr_db
from modelpress.recipe.registry import StageContext
from modelpress.recipe.run import run_stage
from modelpress.report.bits import bits_png
from modelpress.task import ClassificationTask
from modelpress.tasks.registry import resolve_task

LENET: dict[str, dict[str, Any]] = {
    "uniform 8": {"layer_bits": {"conv": 8, "linear": 8}},
    "uniform 4": {"layer_bits": {"conv": 4, "linear": 4}},
    "uniform 3": {"layer_bits": {"conv": 3, "linear": 3}},
    "uniform 2": {"layer_bits": {"conv": 2, "linear": 2}},
    "uniform 2 + bias correction": {"layer_bits": {"conv": 2, "linear": 2}, "bias_correction": True},
    "conv 8, linear 4": {"layer_bits": {"conv": 8, "linear": 4}},
    "allocated, avg <= 5 (recipes/lenet5-mixed.yaml)": {"average_bits": 5.0},
    "allocated, avg <= 4": {"average_bits": 4.0},
    "allocated, avg <= 3": {"average_bits": 3.0},
    "allocated, avg <= 3 + bias correction": {"average_bits": 3.0, "bias_correction": True},
    "allocated, avg <= 3, GPTQ": {"average_bits": 3.0, "method": "gptq"},
}
_EMB = {"embeddings": True}
MINILM: dict[str, dict[str, Any]] = {
    "uniform 8": {"layer_bits": {"linear": 8, "embedding": 8}, **_EMB},
    "uniform 4": {"layer_bits": {"linear": 4, "embedding": 4}, **_EMB},
    "uniform 4, GPTQ": {"layer_bits": {"linear": 4, "embedding": 4}, "method": "gptq", **_EMB},
    "attention 8, ffn 4, emb 4": {"layer_bits": {"attention": 8, "ffn": 4, "linear": 4, "embedding": 4}, **_EMB},
    "allocated, avg <= 5 (recipes/minilm-mixed.yaml)": {"average_bits": 5.0, **_EMB},
    "allocated, avg <= 5, GPTQ": {"average_bits": 5.0, "method": "gptq", **_EMB},
    "allocated, avg <= 4.5, GPTQ": {"average_bits": 4.5, "method": "gptq", **_EMB},
    "allocated, avg <= 4, GPTQ": {"average_bits": 4.0, "method": "gptq", **_EMB},
}
SETUPS = {"lenet5": ("mnist5k", "accuracy", LENET), "minilm": ("sentences", "mean_cosine", MINILM)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(SETUPS), default="lenet5")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", default=None, help="run only variants whose name contains this")
    parser.add_argument("--plot", type=Path, default=None, help="write the bits-per-layer plot (the report's) of the "
                        "recipe variant to this PNG file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task_name, metric, variants = SETUPS[args.model]
    task = resolve_task(task_name)
    base = zoo.load(args.model, task).eval()
    inputs = task.example_inputs(8)
    directory = Path(tempfile.mkdtemp())
    fp32_file = pack(base, directory / "fp32.mpz")
    fp32_metric = task.evaluate(base)[metric]
    logits = task.predict_logits(base) if isinstance(task, ClassificationTask) else None
    print(f"# {args.model} on {task_name}, torch {torch.__version__}, threads {args.threads}")
    print(f"| variant | layer bits | avg bits | eff bits | file bytes | vs fp32 file | {metric} | "
          "held-out logit SQNR dB | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| fp32 | - | 32 | 32 | {fp32_file:,} | 1.0000 | {fp32_metric:.4f} | - | - |")
    swept = False
    for name, fields in variants.items():
        if args.only and args.only not in name:
            continue
        ctx = StageContext(task=task, quiet=True)
        start = time.perf_counter()
        model = run_stage(copy.deepcopy(base), MixedPrecisionConfig(**fields), ctx).eval()
        seconds = time.perf_counter() - start
        size = pack(model, directory / "q.mpz")
        restored = unpack(directory / "q.mpz")
        with torch.inference_mode():
            if not torch.equal(restored(*inputs), model(*inputs)):
                raise SystemExit(f"{name}: unpacked model differs from the packed one")
        value = task.evaluate(restored)[metric]
        fidelity = f"{sqnr_db(logits, task.predict_logits(restored)):.1f}" if logits is not None else "-"
        bits = ctx.notes["layer_bits"]
        counts = {b: sum(1 for v in bits.values() if v == b) for b in sorted(set(bits.values()))}
        shown = ", ".join(f"{k}:{v}" for k, v in bits.items()) if len(bits) <= 6 else \
            ", ".join(f"{n} layers at {b}" for b, n in counts.items())
        print(f"| {name} | {shown} | {ctx.notes['average_bits']:.3f} | {ctx.notes['effective_bits']:.3f} | "
              f"{size:,} | {size / fp32_file:.4f} | {value:.4f} | {fidelity} | {seconds:.0f} |", flush=True)
        if args.plot is not None and "recipes/" in name:
            args.plot.write_bytes(bits_png(bits, ctx.notes.get("sensitivity_bits")))
        if "sensitivity_bits" in ctx.notes and not swept:
            swept = True
            for row in ctx.notes["sensitivity_bits"]:
                print(f"#   sensitivity {row['layer']} {row['bits']}b: weight SQNR {row['weight_sqnr_db']:.1f} dB, "
                      f"output SQNR {row['output_sqnr_db']:.1f} dB, top-1 agreement {row['top1_agreement']:.4f}")


if __name__ == "__main__":
    main()
