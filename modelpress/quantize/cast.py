"""Cast a model's floating-point weights to fp16 or bf16; inputs are cast on the way in, outputs back to fp32.

Storage halves (the file holds 2-byte floats); on this CPU (AVX-512 BF16) bf16 matmuls are also faster. Integer
tensors (token ids, quantized weights) and integer buffers are left as they are.

Example:
    >>> import torch
    >>> from modelpress.quantize.verb import quantize_
    >>> model = quantize_(torch.nn.Linear(4, 2), CastConfig(dtype="bfloat16"))
    >>> model.weight.dtype, model(torch.randn(3, 4)).dtype
    (torch.bfloat16, torch.float32)
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import torch
from torch import nn

from modelpress.config import StageConfig
from modelpress.provenance import REBUILDERS, record_transform
from modelpress.recipe.registry import StageContext, rule, stage

__all__ = ["CastConfig", "FloatDtype", "cast_model"]

_HOOKED = "_modelpress_cast_hooks"


class FloatDtype(StrEnum):
    """Reduced floating-point precisions."""

    float16 = "float16"
    bfloat16 = "bfloat16"

    @property
    def torch_dtype(self) -> torch.dtype:
        """The torch dtype of this precision."""
        return getattr(torch, self.value)


class CastConfig(StageConfig, tag="cast"):
    """Cast floating-point parameters and buffers to ``dtype`` (fp16 or bf16)."""

    dtype: FloatDtype = FloatDtype.bfloat16


def _cast_floats(value: Any, dtype: torch.dtype) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.to(dtype)
    if isinstance(value, tuple | list):
        return type(value)(_cast_floats(v, dtype) for v in value)
    if isinstance(value, dict):
        return {k: _cast_floats(v, dtype) for k, v in value.items()}
    return value


def cast_model(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Cast floating parameters and buffers in place and install the input/output casting hooks (once)."""
    model.to(dtype)  # Module.to(dtype) converts floating-point tensors only; integer buffers keep their dtype
    hooks = getattr(model, _HOOKED, None)
    if hooks is not None:
        for handle in hooks:
            handle.remove()
    pre = model.register_forward_pre_hook(
        lambda _m, args, kwargs: (_cast_floats(args, dtype), _cast_floats(kwargs, dtype)), with_kwargs=True)
    post = model.register_forward_hook(lambda _m, _args, output: _cast_floats(output, torch.float32))
    object.__setattr__(model, _HOOKED, (pre, post))
    return model


@stage(CastConfig)
def apply_cast(model: nn.Module, config: CastConfig, ctx: StageContext) -> nn.Module:
    """Stage handler: cast, and record the structure change so ``unpack`` rebuilds the same model."""
    cast_model(model, config.dtype.torch_dtype)
    record_transform(model, {"type": "cast", "dtype": config.dtype.value})
    ctx.notes["dtype"] = config.dtype.value
    return model


@REBUILDERS.register("cast")
def _rebuild_cast(model: nn.Module, record: dict[str, Any]) -> nn.Module:
    return cast_model(model, FloatDtype(record["dtype"]).torch_dtype)


@rule
def _cast_comes_last(stages: Sequence[StageConfig]) -> list[str]:
    problems = []
    for i, s in enumerate(stages):
        if isinstance(s, CastConfig) and s.finetune is not None:
            problems.append(f"stages[{i}].finetune: expected no fine-tuning after a cast (training in "
                            f"{s.dtype.value} on CPU loses precision), got a finetune section. "
                            "Fix: fine-tune in an earlier stage")
        if isinstance(s, CastConfig) and i != len(stages) - 1:
            problems.append(f"stages[{i}]: expected the cast to be the last stage, got stage {i + 1} after it. "
                            "Fix: move the cast to the end of the recipe")
    return problems
