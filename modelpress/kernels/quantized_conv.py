"""A Conv2d whose file form is integer weights (int8 storage, any 1-8 bit level set) and one float32 scale per output
channel: ``w = scale[o] * q[o, ...]``.

**The convolution does not run in integer arithmetic.** The integers are dequantized once, when they are set or
loaded (cached float32 weight, not part of the state dict), and ``forward`` calls the float32 ``F.conv2d``: this is a
storage format (the file holds the integers, which the codecs bit-pack or entropy-code down to the levels actually
used: about 1.6 bits per ternary weight), with float speed. An integer convolution would need calibrated activation
ranges and torch's deprecated quantized engine, which modelpress does not build on (see ``static_int8``).

Example:
    >>> import torch
    >>> conv = torch.nn.Conv2d(2, 4, 3, padding=1)
    >>> q = torch.randint(-7, 8, (4, 2, 3, 3), dtype=torch.int8)
    >>> module = QuantizedConv2d.from_integers(conv, q, torch.full((4,), 0.1))
    >>> module(torch.ones(1, 2, 5, 5)).shape
    torch.Size([1, 4, 5, 5])
    >>> {k: v.dtype for k, v in module.state_dict().items()}
    {'weight_int8': torch.int8, 'weight_scale': torch.float32, 'bias': torch.float32}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["QuantizedConv2d", "conv_from_record"]


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


class QuantizedConv2d(nn.Module):
    """``nn.Conv2d`` (zero padding) stored as int8 levels ``[out, in / groups, kh, kw]`` and scales ``[out]``.

    Example:
        >>> QuantizedConv2d(1, 2, 3)(torch.zeros(1, 1, 4, 4)).shape
        torch.Size([1, 2, 2, 2])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int],
                 stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
                 dilation: int | Sequence[int] = 1, groups: int = 1, bias: bool = True) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding, self.dilation = _pair(padding), _pair(dilation)
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.register_buffer("weight_int8", torch.zeros(shape, dtype=torch.int8))
        self.register_buffer("weight_scale", torch.ones(out_channels))
        self.register_buffer("bias", torch.zeros(out_channels) if bias else None)
        self._weight = torch.zeros(shape)  # dequantized cache [out, in / groups, kh, kw], rebuilt on set/load
        self.refresh()

    @classmethod
    def from_integers(cls, conv: nn.Conv2d, q: Tensor, scale: Tensor) -> QuantizedConv2d:
        """The runtime module of ``conv``'s hyper-parameters and bias with levels ``q`` (int8, weight's shape) and
        per-channel ``scale`` ``[out]``."""
        module = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                     conv.dilation, conv.groups, conv.bias is not None)
        module.weight_int8.copy_(q)
        module.weight_scale.copy_(scale.float())
        if conv.bias is not None:
            module.bias.copy_(conv.bias.detach().float())
        module.refresh()
        return module

    def config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-able (what a provenance record stores to rebuild the module).

        Example:
            >>> QuantizedConv2d(1, 2, 3, padding=1).config()["padding"]
            [1, 1]
        """
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride), "padding": list(self.padding),
                "dilation": list(self.dilation), "groups": self.groups, "bias": self.bias is not None}

    def dequantized_weight(self) -> Tensor:
        """``scale[o] * q[o, ...]`` as float32 (the weight the forward uses)."""
        return self.weight_int8.float() * self.weight_scale.reshape(-1, 1, 1, 1)

    def refresh(self) -> None:
        """Rebuild the dequantized cache (after the integers or scales change)."""
        with torch.no_grad():
            self._weight = self.dequantized_weight()

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args)
        self.refresh()

    def _apply(self, fn: Any, recurse: bool = True) -> QuantizedConv2d:
        super()._apply(fn, recurse)
        self.refresh()  # .to(device) moves the buffers: the cache follows
        return self

    def forward(self, x: Tensor) -> Tensor:
        """``[B, in, H, W]`` -> ``[B, out, H', W']`` (float32 convolution with the dequantized weight)."""
        out = F.conv2d(x.float(), self._weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        return out.to(x.dtype)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, groups={self.groups}, bias={self.bias is not None}")


def conv_from_record(module: nn.Module | None, layer: dict[str, Any]) -> QuantizedConv2d | None:
    """An empty :class:`QuantizedConv2d` from a transform record entry (:meth:`QuantizedConv2d.config`'s keys), or
    None when ``module`` is not a plain ``nn.Conv2d`` of the recorded channels.

    Example:
        >>> conv_from_record(nn.Conv2d(1, 2, 3), QuantizedConv2d(1, 2, 3).config()).kernel_size
        (3, 3)
    """
    args = {k: layer.get(k) for k in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
                                      "groups", "bias")}
    channels = [args["out_channels"], (args["in_channels"] or 0) // (args["groups"] or 1)]
    if type(module) is not nn.Conv2d or list(module.weight.shape[:2]) != channels:
        return None
    return QuantizedConv2d(**args)
