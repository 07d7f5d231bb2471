"""Claim: modelpress W8A8 all-MiniLM-L6-v2 (``recipes/minilm-w8a8.yaml``: int8 weights per channel, int8 activations
per token, ``torch._int_mm``; run through ``torch.compile`` by :class:`~modelpress.kernels.CompiledInference`) is
faster at batch 32 x 128 tokens than torch fp32, torch bf16, torch's deprecated ``quantize_dynamic`` and
onnxruntime's dynamic int8 (per channel), with mean cosine >= 0.995 to the fp32 embeddings on held-out sentences.

    MODELPRESS_TIMING=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/minilm_int8.py --threads 2 [--runs 10]

Everything runs in one process. modelpress's model is the recipe applied by ``modelpress.run`` (as ``modelpress
compress`` does), packed to a file, unpacked, and the *unpacked* model is what is evaluated and timed (eager, and
wrapped in ``CompiledInference``; its compile time is reported separately). Peers:

- torch fp32 and bf16 (``model.to(torch.bfloat16)``), eager, as loaded (SDPA attention);
- ``torch.ao.quantization.quantize_dynamic`` (int8 Linear, deprecated in torch 2.13: a peer only);
- onnxruntime: the fp32 model exported to ONNX (eager attention, so the optimizer fuses it), optimized by
  ``onnxruntime.transformers.optimizer.optimize_model`` (bert, 12 heads, hidden 384), then
  ``quantize_dynamic(..., per_channel=True)`` (QAttention, DynamicQuantizeMatMul; int8 weights), 2 intra-op threads.

Fidelity: the ``sentences`` task's 581 held-out sentences against the fp32 embeddings (mean / min cosine, Spearman,
nearest-neighbour agreement). Latency: the task's ``example_inputs`` (batch 32 x 128 tokens, and batch 1 x 128),
median and minimum of ``--runs`` calls after 2 warm-up calls, models interleaved.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from modelpress import zoo
from modelpress.kernels import CompiledInference
from modelpress.pack import pack, unpack
from modelpress.recipe.run import run
from modelpress.tasks.sentences import SentencesTask

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "minilm-w8a8.yaml"
Runner = Callable[[tuple[torch.Tensor, ...]], torch.Tensor]


def _torch_runner(model: nn.Module) -> Runner:
    def call(inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        with torch.inference_mode():
            return model(*inputs).float()
    return call


def _ort_models(base: nn.Module, example: tuple[torch.Tensor, ...], directory: Path, threads: int) -> Runner:
    """The onnxruntime peer: export -> optimize_model (bert) -> quantize_dynamic per channel -> session."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    exported = copy.deepcopy(base)
    exported.bert.set_attn_implementation("eager")  # the optimizer fuses this attention pattern into Attention
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(exported, example, str(directory / "fp32.onnx"), input_names=["input_ids", "attention_mask"],
                          output_names=["embedding"], opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": {0: "b", 1: "t"}, "attention_mask": {0: "b", 1: "t"},
                                        "embedding": {0: "b"}})
        optimized = optimize_model(str(directory / "fp32.onnx"), model_type="bert", num_heads=12, hidden_size=384)
        print(f"# onnxruntime {ort.__version__} fused ops: "
              f"{ {k: v for k, v in optimized.get_fused_operator_statistics().items() if v} }")
        optimized.save_model_to_file(str(directory / "opt.onnx"))
        # the fused ops (com.microsoft domain) defeat shape inference: tell the quantizer their outputs are float
        quantize_dynamic(str(directory / "opt.onnx"), str(directory / "int8.onnx"), per_channel=True,
                         weight_type=QuantType.QInt8, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(str(directory / "int8.onnx"), options, providers=["CPUExecutionProvider"])

    def call(inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        feeds = {"input_ids": inputs[0].numpy(), "attention_mask": inputs[1].numpy()}
        return torch.from_numpy(np.asarray(session.run(None, feeds)[0]))
    return call


class _Wrapped(nn.Module):
    """A runner as a module, so the task's evaluation can call it."""

    def __init__(self, runner: Runner) -> None:
        super().__init__()
        self.runner = runner

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.runner(inputs)


def _latency(runners: dict[str, Runner], inputs: tuple[torch.Tensor, ...], runs: int) -> dict[str, tuple[float, float]]:
    times: dict[str, list[float]] = {k: [] for k in runners}
    for i in range(runs + 2):
        for name, runner in runners.items():
            start = time.perf_counter()
            runner(inputs)
            if i >= 2:
                times[name].append((time.perf_counter() - start) * 1e3)
    return {k: (statistics.median(v), min(v)) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start_all = time.perf_counter()
    task = SentencesTask(quiet=True)
    base = zoo.load("minilm", task).eval()
    x32, x1 = task.example_inputs(32), task.example_inputs(1)
    directory = Path(tempfile.mkdtemp())

    # modelpress: the recipe, packed, unpacked; the unpacked model is evaluated and timed
    result = run(RECIPE, copy.deepcopy(base), task)
    size = pack(result.model, directory / "w8a8.mpz")
    w8a8 = unpack(directory / "w8a8.mpz").eval()
    compiled = CompiledInference(w8a8)
    started = time.perf_counter()
    compiled(*x32)
    compile_32 = time.perf_counter() - started
    started = time.perf_counter()
    compiled(*x1)
    compile_1 = time.perf_counter() - started

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated in torch 2.13: used as a peer only
        from torch.ao.quantization import quantize_dynamic as ao_quantize_dynamic
        ao_model = ao_quantize_dynamic(copy.deepcopy(base), {nn.Linear}, dtype=torch.qint8).eval()
    started = time.perf_counter()
    ort_runner = _ort_models(base, x32, directory, args.threads)
    ort_seconds = time.perf_counter() - started
    runners: dict[str, Runner] = {
        "torch fp32": _torch_runner(base),
        "torch bf16": _torch_runner(copy.deepcopy(base).to(torch.bfloat16)),
        "torch.ao quantize_dynamic (deprecated)": _torch_runner(ao_model),
        "onnxruntime int8 per-channel": ort_runner,
        "modelpress W8A8 eager": _torch_runner(w8a8),
        "modelpress W8A8 compiled": _torch_runner(compiled),
    }
    from torch._dynamo.utils import counters

    cache = dict(counters["inductor"])
    hits, misses = cache.get("fxgraph_cache_hit", 0), cache.get("fxgraph_cache_miss", 0)
    print(f"# torch {torch.__version__}, threads {args.threads}; modelpress file {size:,} bytes; compile "
          f"{compile_32:.1f} s (batch 32) + {compile_1:.1f} s (batch 1, recompile), inductor FX graph cache "
          f"{hits} hits / {misses} misses (hits: code reused from an earlier run); onnxruntime export + optimize + "
          f"quantize {ort_seconds:.1f} s; fallback: {compiled.fallback_reason}", flush=True)
    lat32 = _latency(runners, x32, args.runs)
    lat1 = _latency(runners, x1, args.runs * 3)
    print("| model | mean cosine | min cosine | spearman | nn agreement | batch 32 ms (median / min) | vs fp32 | "
          "batch 1 ms (median / min) | vs fp32 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, runner in runners.items():
        metrics = task.evaluate(_Wrapped(runner)) if name != "torch fp32" else task.evaluate(base)
        m32, m1 = lat32[name], lat1[name]
        print(f"| {name} | {metrics['mean_cosine']:.4f} | {metrics['min_cosine']:.4f} | {metrics['spearman']:.4f} | "
              f"{metrics['nn_agreement']:.4f} | {m32[0]:.1f} / {m32[1]:.1f} | {lat32['torch fp32'][0] / m32[0]:.2f}x | "
              f"{m1[0]:.2f} / {m1[1]:.2f} | {lat1['torch fp32'][0] / m1[0]:.2f}x |", flush=True)
    peers = [k for k in runners if not k.startswith("modelpress")]
    best = min(peers, key=lambda k: lat32[k][0])
    ours = lat32["modelpress W8A8 compiled"][0]
    print(f"# batch 32: modelpress W8A8 compiled {ours:.1f} ms vs fastest peer ({best}) {lat32[best][0]:.1f} ms: "
          f"{lat32[best][0] / ours:.2f}x; total {time.perf_counter() - start_all:.0f} s")


if __name__ == "__main__":
    main()
