"""Claim: GPTQ int4 weights (group 32) with int4 embedding tables keep all-MiniLM-L6-v2's sentence embeddings at a
mean cosine >= 0.98 to fp32 on the held-out sentences, in a file <= 1/6 of the fp32 file; round to nearest (RTN)
gives 0.973 at the same size. Also: act-order, MSE clipping, bias correction, int8 embedding tables.

    HF_HUB_OFFLINE=1 nice -n 19 .venv/bin/python benchmarks/quant_gptq_minilm.py [--threads 1] [--only NAME]

Calibration (GPTQ Hessians, bias-correction means): 8 x 64 sentences of the task's training part. Fidelity: the
held-out part (581 sentences) against the fp32 model's embeddings. Bytes: ``modelpress.pack`` output, unpacked and
checked to give bit-identical embeddings (the script exits otherwise); also the ``torch.save`` bytes of the fp32
state dict. Each variant runs through ``run_stage`` as a recipe does.
"""

from __future__ import annotations

import argparse
import copy
import io
import tempfile
import time
from pathlib import Path

import torch

from modelpress import zoo
from modelpress.pack import pack, unpack
from modelpress.quantize.integer import QuantizeConfig
from modelpress.recipe.registry import StageContext
from modelpress.recipe.run import run_stage
from modelpress.tasks.sentences import SentencesTask

_INT4 = {"mode": "weight-int4", "group_size": 32, "embeddings": True}
VARIANTS = {
    "RTN int4 g32 + int4 emb": QuantizeConfig(**_INT4),
    "RTN + mse_clip": QuantizeConfig(**_INT4, mse_clip=True),
    "RTN + bias correction": QuantizeConfig(**_INT4, bias_correction=True),
    "GPTQ int4 g32 + int4 emb (recipes/minilm-int4.yaml)": QuantizeConfig(**_INT4, method="gptq"),
    "GPTQ + act-order": QuantizeConfig(**_INT4, method="gptq", gptq={"act_order": True}),
    "GPTQ + bias correction": QuantizeConfig(**_INT4, method="gptq", bias_correction=True),
    "GPTQ + int8 emb": QuantizeConfig(**_INT4, method="gptq", embedding_bits=8),
    "GPTQ g64 + int4 emb": QuantizeConfig(**{**_INT4, "group_size": 64}, method="gptq"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", default=None, help="run only variants whose name contains this")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = SentencesTask()
    base = zoo.load("minilm", task).eval()
    inputs = task.example_inputs(8)
    directory = Path(tempfile.mkdtemp())
    buffer = io.BytesIO()
    torch.save(base.state_dict(), buffer)
    fp32_file = pack(base, directory / "fp32.mpz")
    print(f"# torch {torch.__version__}, threads {args.threads}; fp32 modelpress file {fp32_file:,} bytes, "
          f"torch.save fp32 state dict {buffer.tell():,} bytes "
          f"(1/6: {fp32_file / 6:,.0f} and {buffer.tell() / 6:,.0f})")
    print("| variant | file bytes | vs fp32 file | vs torch.save | mean cosine | min cosine | spearman | nn agreement "
          "| seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, config in VARIANTS.items():
        if args.only and args.only not in name:
            continue
        start = time.perf_counter()
        model = run_stage(copy.deepcopy(base), config, StageContext(task=task, quiet=True)).eval()
        seconds = time.perf_counter() - start
        size = pack(model, directory / "q.mpz")
        restored = unpack(directory / "q.mpz")
        with torch.inference_mode():
            if not torch.equal(restored(*inputs), model(*inputs)):
                raise SystemExit(f"{name}: unpacked model differs from the packed one")
        m = task.evaluate(restored)
        print(f"| {name} | {size:,} | {size / fp32_file:.4f} | {size / buffer.tell():.4f} | {m['mean_cosine']:.4f} | "
              f"{m['min_cosine']:.4f} | {m['spearman']:.4f} | {m['nn_agreement']:.4f} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
