"""Small test models for structured pruning: residual, concat + split, depthwise, grouped, attention with tied
embeddings. Each is a factory (``tests.structured.models:NAME``) so a pruned model can be packed and unpacked."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from modelpress.zoo.models import MobileNetSmall, ResNetSmall


def residual() -> nn.Module:
    """ResNet-style: residual adds with and without 1x1 projections."""
    torch.manual_seed(0)
    return ResNetSmall(in_shape=(1, 12, 12), widths=(8, 16, 16))


class TinyMobile(MobileNetSmall):
    """zoo:mobilenet-small's blocks with fewer, thinner stages (fast tests)."""

    SETTINGS = ((1, 8, 1, 1), (4, 12, 2, 2), (4, 16, 2, 1))


def depthwise() -> nn.Module:
    """MobileNetV2-style: depthwise 3x3 convs between 1x1 convs, inverted residuals."""
    torch.manual_seed(0)
    return TinyMobile(in_shape=(1, 12, 12), last_channels=32)


class ConcatSplit(nn.Module):
    """Two branches concatenated; a conv's output split in halves, one half convolved, the halves concatenated."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(14)
        self.c = nn.Conv2d(14, 12, 1)
        self.d = nn.Conv2d(6, 6, 3, padding=1)
        self.fc = nn.Linear(12 * 4 * 4, 5)

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn(torch.cat([self.a(x), self.b(x)], dim=1)).relu()  # [B, 14, 8, 8]
        left, right = self.c(y).chunk(2, dim=1)  # two [B, 6, 8, 8]
        z = torch.cat([left, self.d(right)], 1)  # [B, 12, 8, 8]
        return self.fc(nn.functional.max_pool2d(z, 2).flatten(1))  # flatten: each channel spreads over 16 features


class Grouped(nn.Module):
    """A grouped conv (4 groups) and a depthwise conv between plain convs."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 1)
        self.grouped = nn.Conv2d(16, 24, 3, padding=1, groups=4)
        self.dw = nn.Conv2d(24, 24, 3, padding=1, groups=24)
        self.conv2 = nn.Conv2d(24, 8, 1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = self.dw(self.grouped(self.conv1(x).relu())).relu()
        return self.fc(self.conv2(x).mean((2, 3)))


class TinyLM(nn.Module):
    """Embedding -> one TransformerEncoderLayer (nn.MultiheadAttention) -> LayerNorm -> head tied to the
    embedding."""

    def __init__(self, vocab: int = 40, width: int = 16, heads: int = 4) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(vocab, width)
        self.layer = nn.TransformerEncoderLayer(width, heads, 32, dropout=0.0, batch_first=True)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab, bias=False)
        self.head.weight = self.embed.weight  # tied

    def forward(self, tokens: Tensor) -> Tensor:
        return self.head(self.norm(self.layer(self.embed(tokens))))


def encoder_layer() -> nn.Module:
    """A bare TransformerEncoderLayer: its residual stream is the model's input, only heads and FFN can go."""
    torch.manual_seed(0)
    return nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True)


def image(batch: int = 2, channels: int = 1, size: int = 12) -> tuple[Tensor]:
    """A fixed random image batch."""
    return (torch.randn(batch, channels, size, size, generator=torch.Generator().manual_seed(1)),)


def tokens(batch: int = 2, length: int = 7) -> tuple[Tensor]:
    """A fixed random token batch."""
    return (torch.randint(0, 40, (batch, length), generator=torch.Generator().manual_seed(1)),)


# factory name -> (factory, example inputs)
MODELS = {
    "residual": (residual, lambda: image()),
    "depthwise": (depthwise, lambda: image()),
    "concat_split": (ConcatSplit, lambda: image(channels=3, size=8)),
    "grouped": (Grouped, lambda: image(channels=3, size=8)),
    "tiny_lm": (TinyLM, tokens),
    "encoder_layer": (encoder_layer, lambda: (torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(1)),)),
}
