"""Quantization: reduced-precision casts (fp16/bf16), and (in later modules) integer quantization."""

from modelpress.quantize.cast import CastConfig, FloatDtype, quantize_

__all__ = ["CastConfig", "FloatDtype", "quantize_"]
