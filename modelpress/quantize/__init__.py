"""Quantization: reduced-precision casts (fp16/bf16) and integer quantization (primitives, observers, and the
``quantize`` stage that swaps Linear layers for the integer runtime modules of :mod:`modelpress.kernels`, and the
``qat`` stage: quantization-aware training ending in such modules, and ``quantize-static``: calibrated W8A8)."""

from modelpress.quantize.cast import CastConfig, FloatDtype
from modelpress.quantize.integer import QuantizeConfig, QuantMethod, QuantMode
from modelpress.quantize.mixed import MixedPrecisionConfig
from modelpress.quantize.qat import QATConfig
from modelpress.quantize.static import StaticQuantizeConfig
from modelpress.quantize.verb import quantize_

__all__ = ["CastConfig", "FloatDtype", "MixedPrecisionConfig", "QATConfig", "QuantMethod", "QuantMode",
           "QuantizeConfig", "StaticQuantizeConfig", "quantize_"]
