"""Fake-quant wrappers for ``nn.Linear`` and ``nn.Conv2d`` (quantization-aware training) and the apply/strip pair.

A wrapper holds the original layer's own parameter objects under the same names (so an optimizer built before or
after wrapping, and pruning masks found by name, act on the same tensors) and computes the layer with a
fake-quantized weight (per output channel) and, optionally, fake-quantized inputs (per tensor, LSQ).
:func:`apply_fake_quant` wraps the selected layers in place; :func:`strip_fake_quant` puts the original layers
back (the very same modules: with no training in between, the model is exactly the one before).

Weight schemes (:class:`WeightScheme`): ``lsq`` (learned steps, ``bits`` 2-8), ``ternary`` (TWN) and ``binary``
(XNOR), see :mod:`modelpress.quantize.lsq` and :mod:`modelpress.quantize.ternary`.

Example:
    >>> import torch
    >>> from modelpress.zoo.models import LeNet5
    >>> model = LeNet5()
    >>> wrapped = apply_fake_quant(model, [n for n, m in model.named_modules() if n], WeightScheme.lsq, bits=4)
    >>> wrapped, type(model.conv1).__name__
    (['conv1', 'conv2', 'fc1', 'fc2'], 'FakeQuantConv2d')
    >>> strip_fake_quant(model) and type(model.conv1).__name__
    'Conv2d'
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import torch.nn.functional as F
from torch import Tensor, nn

from modelpress.provenance import replace_module
from modelpress.quantize.lsq import LSQQuantizer
from modelpress.quantize.ternary import BinaryQuantizer, TernaryQuantizer

__all__ = ["FakeQuantConv2d", "FakeQuantLinear", "WeightScheme", "apply_fake_quant", "make_weight_quantizer",
           "strip_fake_quant"]


class WeightScheme(StrEnum):
    """How weights are fake-quantized during training."""

    lsq = "lsq"  # uniform symmetric, learned step per output channel
    ternary = "ternary"  # {-a, 0, a} per channel (TWN)
    binary = "binary"  # {-a, a} per channel (XNOR)


def make_weight_quantizer(scheme: WeightScheme | str, bits: int, weight: Tensor) -> nn.Module:
    """A weight quantizer of ``scheme`` for ``weight`` ``[out, ...]`` (LSQ steps initialized from it).

    Example:
        >>> import torch
        >>> type(make_weight_quantizer("ternary", 2, torch.ones(3, 4))).__name__
        'TernaryQuantizer'
    """
    scheme = WeightScheme(scheme)
    if scheme is WeightScheme.ternary:
        return TernaryQuantizer()
    if scheme is WeightScheme.binary:
        return BinaryQuantizer()
    quantizer = LSQQuantizer(bits, channels=weight.shape[0], signed=True)
    quantizer.initialize(weight)
    return quantizer


class _FakeQuant(nn.Module):
    """Shared state: the layer's own ``weight``/``bias`` parameters, ``weight_quant`` and an optional ``input_quant``.

    The parameters are registered under the same names as in the layer (``fc1.weight`` stays ``fc1.weight``), so
    callbacks that find parameters by name (pruning masks, trained centroids) keep working during QAT; the original
    module is kept as :attr:`layer`, not as a child (its parameters are the wrapper's).
    """

    def __init__(self, layer: nn.Module, weight_quant: nn.Module, input_quant: LSQQuantizer | None = None) -> None:
        super().__init__()
        self.weight = layer.weight  # the same Parameter objects: optimizers and masks see no change
        self.register_parameter("bias", layer.bias)
        self.weight_quant = weight_quant
        self.input_quant = input_quant
        object.__setattr__(self, "_layer", layer)  # not a submodule: its parameters would be listed twice

    @property
    def layer(self) -> nn.Module:
        """The wrapped (original) layer."""
        return self._layer

    def quantized_weight(self) -> Tensor:
        """The fake-quantized weight the forward uses (same shape as the layer's weight)."""
        return self.weight_quant(self.weight)

    def _input(self, x: Tensor) -> Tensor:
        return self.input_quant(x) if self.input_quant is not None else x


class FakeQuantLinear(_FakeQuant):
    """``nn.Linear`` computed with a fake-quantized weight (and optionally inputs).

    Example:
        >>> import torch
        >>> layer = nn.Linear(4, 2)
        >>> fq = FakeQuantLinear(layer, make_weight_quantizer("binary", 1, layer.weight))
        >>> fq(torch.ones(3, 4)).shape
        torch.Size([3, 2])
    """

    def forward(self, x: Tensor) -> Tensor:
        """``[..., in]`` -> ``[..., out]``."""
        return F.linear(self._input(x), self.quantized_weight(), self.bias)


class FakeQuantConv2d(_FakeQuant):
    """``nn.Conv2d`` computed with a fake-quantized weight (and optionally inputs); same padding/stride/groups.

    Example:
        >>> import torch
        >>> conv = nn.Conv2d(1, 3, 3)
        >>> FakeQuantConv2d(conv, make_weight_quantizer("lsq", 4, conv.weight))(torch.ones(1, 1, 5, 5)).shape
        torch.Size([1, 3, 3, 3])
    """

    def forward(self, x: Tensor) -> Tensor:
        """``[B, C, H, W]`` -> ``[B, out, H', W']`` via the layer's own conv (padding mode included)."""
        return self.layer._conv_forward(self._input(x), self.quantized_weight(), self.bias)


def apply_fake_quant(model: nn.Module, names: Sequence[str], scheme: WeightScheme | str, bits: int,
                     input_bits: int | None = None) -> list[str]:
    """Wrap the plain ``nn.Linear`` / ``nn.Conv2d`` layers among ``names`` (not the root) in fake-quant wrappers, in
    place; ``input_bits`` also fake-quantizes their inputs (LSQ, per tensor). Returns the wrapped names.

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> apply_fake_quant(model, ["0", "1", "2"], "lsq", bits=8, input_bits=8)
        ['0', '2']
    """
    wrapped = []
    for name in names:
        layer = model.get_submodule(name) if name else model
        kind = {nn.Linear: FakeQuantLinear, nn.Conv2d: FakeQuantConv2d}.get(type(layer))
        if not name or kind is None:
            continue
        inputs = LSQQuantizer(input_bits) if input_bits is not None else None
        replace_module(model, name, kind(layer, make_weight_quantizer(scheme, bits, layer.weight), inputs))
        wrapped.append(name)
    return wrapped


def strip_fake_quant(model: nn.Module) -> list[str]:
    """Put every wrapped layer back in place of its wrapper (the same module objects); returns their names.

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 2))
        >>> apply_fake_quant(model, ["0"], "ternary", bits=2) and strip_fake_quant(model)
        ['0']
    """
    names = [name for name, m in model.named_modules() if isinstance(m, _FakeQuant)]
    for name in names:
        replace_module(model, name, model.get_submodule(name).layer)
    return names
