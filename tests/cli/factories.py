"""Model factories the CLI tests load as ``tests.cli.factories:NAME``."""

from __future__ import annotations

from torch import nn


def wrong_input_model() -> nn.Module:
    """A model expecting 10 features: it fails on the digits task's [B, 1, 8, 8] images."""
    return nn.Sequential(nn.Flatten(), nn.Linear(10, 2))


def digits_mlp() -> nn.Module:
    """A small MLP for the digits task's [B, 1, 8, 8] images."""
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
