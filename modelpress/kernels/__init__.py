"""Runtime modules that execute compressed layers with integer kernels (one module per file).

- :class:`Int8DynamicLinear` (``int8_dynamic``): W8A8, ``torch._int_mm`` int8 x int8 -> int32;
- :class:`Int8WeightOnlyLinear` (``int8_weight``): int8 weights, ``torch._weight_int8pack_mm`` for small batches;
- :class:`Int4WeightOnlyLinear` (``int4_weight``): group-wise int4 weights, ``torch._weight_int4pack_mm_for_cpu``;
- :class:`QuantizedEmbedding` (``quantized_embedding``): int8 or int4 embedding tables, rows dequantized on lookup;
- :class:`QuantizedConv2d` (``quantized_conv``): integer conv weights (QAT levels), computed in float32;
- :class:`CompiledInference` (``compiled``): a model run through ``torch.compile`` (fused quantize / rescale passes),
  eager if compiling fails;
- :class:`StaticInt8Linear` (``static_int8``): static W8A8 Linear with a calibrated input range (``_int_mm``). There is
  no integer convolution: torch's quantized engine, the only one that paid on this CPU, is deprecated.

Example:
    >>> import torch
    >>> Int8DynamicLinear.from_linear(torch.nn.Linear(4, 2)).weight_int8.dtype
    torch.int8
"""

from modelpress.kernels.compiled import CompiledInference
from modelpress.kernels.int4_weight import Int4WeightOnlyLinear
from modelpress.kernels.int8_dynamic import Int8DynamicLinear
from modelpress.kernels.int8_weight import Int8WeightOnlyLinear
from modelpress.kernels.quantized_conv import QuantizedConv2d
from modelpress.kernels.quantized_embedding import QuantizedEmbedding
from modelpress.kernels.static_int8 import StaticInt8Linear

__all__ = ["CompiledInference", "Int4WeightOnlyLinear", "Int8DynamicLinear", "Int8WeightOnlyLinear", "QuantizedConv2d",
           "QuantizedEmbedding", "StaticInt8Linear"]
