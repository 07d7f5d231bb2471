"""Quantization: reduced-precision casts (fp16/bf16) and integer quantization (primitives, observers, and the
``quantize`` stage that swaps Linear layers for the integer runtime modules of :mod:`modelpress.kernels`)."""

from modelpress.quantize.cast import CastConfig, FloatDtype, quantize_
from modelpress.quantize.integer import QuantizeConfig, QuantMode

__all__ = ["CastConfig", "FloatDtype", "QuantMode", "QuantizeConfig", "quantize_"]
