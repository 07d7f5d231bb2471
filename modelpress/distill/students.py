"""Student (and small teacher) architectures for distillation; each is a ``package.module:factory`` a recipe names.

* :class:`TinyCNN` — conv 5x5 (8) → pool → conv 5x5 (16) → pool → fc 32 → fc: 12,042 parameters at 28x28, 36x
  fewer than LeNet-5's 431,080.
* :class:`TinyMLP` — flatten → fc (``hidden``) → ReLU → fc: a minimal student for any image size.
* :class:`PatchTransformer` — a small vision transformer (4x4 patches, 2 layers): a teacher of another
  architecture family for cross-architecture distillation.
* :func:`minilm_layers` — all-MiniLM-L6-v2 keeping only some of its 6 transformer layers (default 0, 2, 4): a
  3-layer student initialized from alternate layers of its teacher.

A distilled student's provenance is its factory and keyword arguments, so ``modelpress.unpack`` rebuilds it.

Example:
    >>> import torch
    >>> sum(p.numel() for p in TinyCNN().parameters())
    11978
    >>> PatchTransformer()(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from modelpress.errors import ConfigError

__all__ = ["PatchTransformer", "TinyCNN", "TinyMLP", "minilm_layers"]


class TinyCNN(nn.Module):
    """conv1 5x5 (``widths[0]``) → ReLU → maxpool → conv2 5x5 (``widths[1]``) → ReLU → maxpool → fc1 → ReLU → fc2.

    Layer names follow LeNet-5's (``conv1``, ``conv2``, ``fc1``, ``fc2``) so hints can pair them.
    """

    def __init__(self, in_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10,
                 widths: Sequence[int] = (8, 16), hidden: int = 32) -> None:
        super().__init__()
        channels, height, width = in_shape
        out_h, out_w = ((height - 4) // 2 - 4) // 2, ((width - 4) // 2 - 4) // 2  # 28 → 24 → 12 → 8 → 4
        if out_h < 1 or out_w < 1:
            raise ConfigError("TinyCNN in_shape", "images of at least 16x16 pixels", f"<{height}x{width}>",
                              "use a task with larger images (e.g. mnist5k)")
        self.conv1 = nn.Conv2d(channels, widths[0], 5)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(widths[0], widths[1], 5)
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(widths[1] * out_h * out_w, hidden)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool1(self.relu(self.conv1(x)))  # [B, w0, 12, 12] at 28x28
        x = self.pool2(self.relu(self.conv2(x)))  # [B, w1, 4, 4]
        x = self.relu(self.fc1(self.flatten(x)))  # [B, hidden]
        return self.fc2(x)  # [B, classes]


class TinyMLP(nn.Module):
    """flatten → fc1 (``hidden``) → ReLU → fc2 (classes).

    Example:
        >>> sum(p.numel() for p in TinyMLP(in_shape=(1, 8, 8), hidden=16).parameters())
        1210
    """

    def __init__(self, in_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10, hidden: int = 32) -> None:
        super().__init__()
        in_features = 1
        for d in in_shape:
            in_features *= int(d)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(in_features, hidden)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.relu(self.fc1(self.flatten(x))))  # [B, C*H*W] → [B, hidden] → [B, classes]


class PatchTransformer(nn.Module):
    """A small vision transformer: ``patch``x``patch`` patches → linear embedding + learned positions → pre-norm
    encoder layers → mean over patches → LayerNorm → Linear."""

    def __init__(self, in_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10, patch: int = 4, dim: int = 64,
                 depth: int = 2, heads: int = 4) -> None:
        super().__init__()
        channels, height, width = in_shape
        if height % patch or width % patch:
            raise ConfigError("PatchTransformer patch", f"a divisor of the image size {height}x{width}", patch,
                              "use patch 4 for 28x28 images")
        self.patch = patch
        self.embed = nn.Linear(channels * patch * patch, dim)
        self.position = nn.Parameter(torch.zeros(1, (height // patch) * (width // patch), dim))
        layer = nn.TransformerEncoderLayer(dim, heads, dim * 2, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        b, c, _, _ = x.shape
        p = self.patch
        patches = x.unfold(2, p, p).unfold(3, p, p)  # [B, C, H/p, W/p, p, p]
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(b, -1, c * p * p)  # [B, N, C*p*p]
        tokens = self.embed(patches) + self.position  # [B, N, dim]
        return self.head(self.norm(self.encoder(tokens).mean(dim=1)))  # [B, classes]


def minilm_layers(layers: Sequence[int] = (0, 2, 4)) -> nn.Module:
    """all-MiniLM-L6-v2 with only the listed transformer layers (in order), initialized from them.

    Example:
        >>> model = minilm_layers([0, 5])
        >>> len(model.bert.encoder.layer), model.bert.config.num_hidden_layers
        (2, 2)
    """
    from modelpress.zoo.minilm import load_minilm

    model = load_minilm()
    encoder = model.bert.encoder
    count = len(encoder.layer)
    chosen = [int(i) for i in layers]
    if not chosen or any(not 0 <= i < count for i in chosen) or len(set(chosen)) != len(chosen):
        raise ConfigError("minilm_layers: layers", f"distinct layer indices in [0, {count})", f"<{chosen}>",
                          "e.g. layers: [0, 2, 4]")
    encoder.layer = nn.ModuleList([encoder.layer[i] for i in chosen])
    model.bert.config.num_hidden_layers = len(chosen)
    return model
