"""Claim: modelpress's dependency-graph channel pruning matches Torch-Pruning on the same networks: at 50% of the
channels of every coupled group, MACs equal or lower and latency equal or better, at batch 1 and batch 32.

    MODELPRESS_TIMING=1 PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/structured_vs_torch_pruning.py \
        --threads 2 --size 224

The same untrained ResNet-18-style and MobileNetV2-style networks (defined here: there is no CPU torchvision; layer
sizes as torchvision's resnet18 and mobilenet_v2 at width 1.0, 1000 classes, ImageNet-like ``3 x size x size``
input) are pruned in one run by modelpress (``prune_channels``, L2 criterion, uniform 50%) and by Torch-Pruning
(``tp.pruner.MagnitudePruner``, ``MagnitudeImportance(p=2)``, ``pruning_ratio=0.5``, the classifier ignored). MACs
come from Torch-Pruning's own counter (``tp.utils.count_ops_and_params``) for all three models, so the counts are
comparable; latencies are medians of interleaved rounds of ``modelpress.evaluate.latency.measure_latency`` (the
original, the modelpress model and the Torch-Pruning model timed in turn, ``--rounds`` rounds). Torch-Pruning is a
benchmark peer only; modelpress never imports it.
"""

from __future__ import annotations

import argparse
import copy
import statistics
from collections.abc import Callable

import torch
import torch_pruning as tp
from torch import Tensor, nn

from modelpress.evaluate.latency import measure_latency
from modelpress.structured import PruneChannelsConfig, prune_channels


class Basic(nn.Module):
    """torchvision's BasicBlock."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(out + self.down(x))


class ResNet18(nn.Module):
    """torchvision's resnet18 layout: 7x7/2 stem, max pool, four stages of two BasicBlocks, 1000 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        blocks, cin = [], 64
        for i, width in enumerate((64, 128, 256, 512)):
            blocks += [Basic(cin, width, 1 if i == 0 else 2), Basic(width, width, 1)]
            cin = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, 1000)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1), 1))


class Inverted(nn.Module):
    """torchvision's InvertedResidual."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
        layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
                   nn.ReLU6(), nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    """torchvision's mobilenet_v2 layout at width 1.0: 32-channel stem, 17 inverted residuals, 1280-channel head."""

    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1))

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32),
                                                 nn.ReLU6())]
        cin = 32
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                layers.append(Inverted(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(nn.Sequential(nn.Conv2d(cin, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.ReLU6()))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


def torch_pruning(model: nn.Module, example: Tensor, classifier: nn.Module) -> nn.Module:
    """Torch-Pruning's magnitude pruner (L2, 50% of every group, the classifier left whole)."""
    pruner = tp.pruner.MagnitudePruner(model, example, importance=tp.importance.MagnitudeImportance(p=2),
                                       pruning_ratio=0.5, ignored_layers=[classifier])
    pruner.step()
    return model


def latencies(models: dict[str, nn.Module], x: Tensor, threads: int, rounds: int, runs: int) -> dict[str, float]:
    """Median over rounds of each model's median latency (ms), the models timed in turn within every round."""
    per: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            per[name].append(measure_latency(model, (x,), threads=threads, warmup=2, runs=runs).median_ms)
    return {name: statistics.median(values) for name, values in per.items()}


def compare(name: str, build: Callable[[], nn.Module], classifier: Callable[[nn.Module], nn.Module],
            args: argparse.Namespace) -> None:
    """Prune one architecture with both libraries and print MACs and latencies."""
    torch.manual_seed(0)
    original = build().eval()
    example = torch.randn(1, 3, args.size, args.size)
    ours = prune_channels(copy.deepcopy(original), PruneChannelsConfig(ratio=0.5, criterion="l2"), (example,))
    theirs = copy.deepcopy(original)
    theirs = torch_pruning(theirs, example, classifier(theirs)).eval()
    models = {"original": original, "modelpress": ours, "torch-pruning": theirs}
    macs = {key: tp.utils.count_ops_and_params(model, example)[0] for key, model in models.items()}
    params = {key: sum(p.numel() for p in model.parameters()) for key, model in models.items()}
    with torch.no_grad():
        assert ours(example).shape == theirs(example).shape == original(example).shape
    same = [p.shape for p in ours.parameters()] == [p.shape for p in theirs.parameters()]
    print(f"\n{name} at 3x{args.size}x{args.size}, {args.threads} threads; every layer the same shape in both "
          f"pruned models: {same}")
    print(f"{'model':<14} {'MACs':>10} {'params':>11} {'b1 ms':>9} {'b1 x':>6} {'b32 ms':>9} {'b32 x':>6}")
    b1 = latencies(models, example, args.threads, args.rounds, args.runs)
    b32 = latencies(models, example.expand(32, -1, -1, -1).contiguous(), args.threads, args.rounds, args.runs_b32)
    for key in models:
        print(f"{key:<14} {macs[key] / 1e9:>9.3f}G {params[key]:>11,} {b1[key]:>9.2f} "
              f"{b1['original'] / b1[key]:>5.2f}x {b32[key]:>9.1f} {b32['original'] / b32[key]:>5.2f}x")


def main() -> None:
    """Run both comparisons."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=224, help="input height and width")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=10, help="timed runs per round at batch 1")
    parser.add_argument("--runs-b32", type=int, default=3, help="timed runs per round at batch 32")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, torch-pruning {tp.__version__}")
    compare("ResNet-18", ResNet18, lambda m: m.fc, args)
    compare("MobileNetV2", MobileNetV2, lambda m: m.classifier[1], args)


if __name__ == "__main__":
    main()
