"""Reference architectures, defined here because there is no CPU build of torchvision.

All take images ``[B, C, H, W]`` and return logits ``[B, num_classes]``.

* :class:`LeNet300` — LeNet-300-100 (fully connected 784-300-100-10): the Deep Compression anchor.
* :class:`LeNet5` — LeNet-5 with Caffe's sizes: conv 20 and 50 filters (5x5), fc 500. 431,080 parameters at 28x28.
* :class:`ResNetSmall` — a ResNet-style CNN (BasicBlocks with BN and residual adds, three stages).
* :class:`MobileNetSmall` — a MobileNetV2-style CNN (inverted residuals, depthwise 3x3 convs, BN, ReLU6).

Example:
    >>> import torch
    >>> sum(p.numel() for p in LeNet5().parameters())
    431080
    >>> LeNet300()(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from modelpress.errors import TaskError

__all__ = ["LeNet5", "LeNet300", "MobileNetSmall", "ResNetSmall"]


class LeNet300(nn.Module):
    """LeNet-300-100: flatten → fc1 (300) → ReLU → fc2 (100) → ReLU → fc3 (classes)."""

    def __init__(self, in_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10) -> None:
        super().__init__()
        in_features = 1
        for d in in_shape:
            in_features *= d
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(in_features, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, num_classes)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        x = self.flatten(x)  # [B, C*H*W]
        x = self.relu(self.fc1(x))  # [B, 300]
        x = self.relu(self.fc2(x))  # [B, 100]
        return self.fc3(x)  # [B, classes]


class LeNet5(nn.Module):
    """Caffe's LeNet: conv1 5x5x20 → maxpool → conv2 5x5x50 → maxpool → fc1 500 → ReLU → fc2.

    As in Caffe's ``lenet_train_test.prototxt`` there is no nonlinearity after the convolutions.
    """

    def __init__(self, in_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10) -> None:
        super().__init__()
        channels, height, width = in_shape
        # each conv (5x5, no padding) removes 4 pixels, each pool halves: 28 → 24 → 12 → 8 → 4
        out_h, out_w = ((height - 4) // 2 - 4) // 2, ((width - 4) // 2 - 4) // 2
        if out_h < 1 or out_w < 1:
            raise TaskError("zoo:lenet5 input", "images of at least 16x16 pixels", f"<{height}x{width}>",
                            "use a task with larger images (e.g. mnist5k) or zoo:lenet300")
        self.conv1 = nn.Conv2d(channels, 20, 5)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(50 * out_h * out_w, 500)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(500, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool1(self.conv1(x))  # [B, 20, 12, 12] at 28x28
        x = self.pool2(self.conv2(x))  # [B, 50, 4, 4]
        x = self.relu(self.fc1(self.flatten(x)))  # [B, 500]
        return self.fc2(x)


class BasicBlock(nn.Module):
    """ResNet basic block: conv3x3-BN-ReLU-conv3x3-BN, plus identity (or 1x1 conv-BN projection), then ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))  # residual add couples out_ch channels of both branches


class ResNetSmall(nn.Module):
    """ResNet-style: stem conv3x3 → three stages of two BasicBlocks (strides 1, 2, 2) → global pool → fc."""

    def __init__(self, in_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10,
                 widths: Sequence[int] = (32, 64, 128), blocks_per_stage: int = 2) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_shape[0], widths[0], 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU())
        stages, in_ch = [], widths[0]
        for i, width in enumerate(widths):
            blocks = []
            for j in range(blocks_per_stage):
                blocks.append(BasicBlock(in_ch, width, stride=2 if (i > 0 and j == 0) else 1))
                in_ch = width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(in_ch, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)  # [B, w0, H, W]
        x = self.layer3(self.layer2(self.layer1(x)))  # [B, w2, H/4, W/4]
        return self.fc(self.flatten(self.pool(x)))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand (BN, ReLU6) → 3x3 depthwise (BN, ReLU6) → 1x1 project (BN); add if shapes agree."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = in_ch * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(in_ch, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
        layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
                   nn.ReLU6(), nn.Conv2d(hidden, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch)]
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_ch == out_ch

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


class MobileNetSmall(nn.Module):
    """MobileNetV2-style: stem conv3x3 → inverted residual stages → 1x1 conv → global pool → fc."""

    # (expansion t, output channels c, repeats n, first stride s), as in the MobileNetV2 paper's table
    SETTINGS: tuple[tuple[int, int, int, int], ...] = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 2, 1))

    def __init__(self, in_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10, last_channels: int = 256) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_shape[0], 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6())
        blocks, in_ch = [], 32
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                blocks.append(InvertedResidual(in_ch, c, s if i == 0 else 1, t))
                in_ch = c
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Conv2d(in_ch, last_channels, 1, bias=False), nn.BatchNorm2d(last_channels),
                                  nn.ReLU6())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(last_channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.head(self.features(self.stem(x)))  # [B, last, H/4, W/4]
        return self.fc(self.flatten(self.pool(x)))
