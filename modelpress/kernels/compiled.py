"""Inference through ``torch.compile`` (inductor, CPU C++ code generation), falling back to eager if compiling fails.

Why: in eager mode an int8 Linear (:class:`~modelpress.kernels.int8_dynamic.Int8DynamicLinear`) spends more time in
its memory-bound elementwise passes (per-token absmax, quantize, rescale + bias) than in the integer GEMM itself,
and the float ops between the GEMMs (LayerNorm, GELU, residual adds, the attention mask) are separate passes too.
Inductor fuses each such chain into one C++ loop nest and keeps ``torch._int_mm`` as the GEMM, which is where the
W8A8 speed-up comes from (docs/benchmarks/quantization_speed.md). The int8 modules take their fused formulation
(:meth:`~modelpress.kernels.int8_dynamic.Int8DynamicLinear.fused_forward`) while being compiled.

:class:`CompiledInference` wraps a model: the first call compiles (``compile_seconds`` records how long the first
call took, compilation included); any exception raised by the compiler makes it warn once and run the eager model
from then on (``fallback_reason`` says why), so a machine without a C++ compiler still gets correct outputs. The
wrapped model's outputs equal the eager model's up to float rounding (a token whose value lies on a rounding
boundary of its int8 step can round the other way).

Example:
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 2))
    >>> fast = CompiledInference(model, enabled=False)  # enabled=True compiles on the first call
    >>> fast(torch.ones(1, 4)).shape, fast.fallback_reason
    (torch.Size([1, 2]), 'compilation disabled')
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import torch
from torch import nn

__all__ = ["CompiledInference"]


class CompiledInference(nn.Module):
    """``model`` run through ``torch.compile(model, dynamic=dynamic)`` in inference mode, or eagerly if that fails.

    ``dynamic=None`` (torch's default) specializes on the first input shape and recompiles once with symbolic
    shapes when another shape arrives; ``True`` compiles symbolic shapes at once (one compilation for every batch
    and sequence length). The state dict is the wrapped model's (under ``model.``).

    Example:
        >>> m = CompiledInference(torch.nn.Linear(3, 1), enabled=False)
        >>> m.compile_seconds is None, sorted(m.state_dict())
        (True, ['model.bias', 'model.weight'])
    """

    def __init__(self, model: nn.Module, dynamic: bool | None = None, enabled: bool = True) -> None:
        super().__init__()
        self.model = model.eval()
        self.dynamic = dynamic
        self.compile_seconds: float | None = None  # wall time of the first compiled call (compilation included)
        self.fallback_reason: str | None = None if enabled else "compilation disabled"
        self._compiled: Any = torch.compile(self.model, dynamic=dynamic) if enabled else None

    @torch.inference_mode()
    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        """The model's outputs for ``inputs`` (compiled, or eager after a compiler failure)."""
        if self._compiled is None:
            return self.model(*inputs, **kwargs)
        start = time.perf_counter()
        try:
            out = self._compiled(*inputs, **kwargs)
        except Exception as error:  # the compiler's failures (no C++ compiler, unsupported op, ...) vary by torch
            self.fallback_reason = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:200] or '-'}"
            self._compiled = None
            warnings.warn(f"torch.compile failed, running eagerly: {self.fallback_reason}", stacklevel=2)
            return self.model(*inputs, **kwargs)
        if self.compile_seconds is None:
            self.compile_seconds = time.perf_counter() - start
        return out

    @property
    def compiled(self) -> bool:
        """Whether calls go through the compiled model (False: eager, see ``fallback_reason``)."""
        return self._compiled is not None

    def extra_repr(self) -> str:
        return f"dynamic={self.dynamic}, compiled={self.compiled}"
