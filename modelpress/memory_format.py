"""The channels_last memory format as a recorded part of a compressed model.

A stage that stores a model's 4-D weights channels_last (oneDNN then runs chains of small convs without a layout
reorder around each) marks its provenance record; the stage's rebuilder restores the format before the values load
(``load_state_dict`` copies into the existing strides), so the unpacked model runs as it was measured.

Example:
    >>> import torch
    >>> record = {"type": "example"}
    >>> model = store_channels_last(torch.nn.Conv2d(3, 8, 3), record)
    >>> record["channels_last"], model.weight.is_contiguous(memory_format=torch.channels_last)
    (True, True)
    >>> restore_memory_format(torch.nn.Conv2d(3, 8, 3), record).weight.is_contiguous(memory_format=torch.channels_last)
    True
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["restore_memory_format", "store_channels_last"]


def store_channels_last(model: nn.Module, record: dict[str, Any]) -> nn.Module:
    """``model`` with its 4-D weights channels_last (a conv then outputs channels_last); marks ``record``."""
    record["channels_last"] = True
    return model.to(memory_format=torch.channels_last)


def restore_memory_format(model: nn.Module, record: dict[str, Any]) -> nn.Module:
    """In a rebuilder: ``model`` in the memory format ``record`` says its stage stored (unchanged if none)."""
    return model.to(memory_format=torch.channels_last) if record.get("channels_last") else model
