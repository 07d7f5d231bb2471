"""Shared fixtures. Tests run quiet, on 2 threads, with the project's cache directory (trained zoo weights are
reused across runs; the first run trains them with fixed seeds)."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MODELPRESS_QUIET", "1")


@pytest.fixture(autouse=True)
def _fixed_threads_and_seed() -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def mnist():
    from modelpress.tasks.mnist import mnist5k

    return mnist5k()


@pytest.fixture(scope="session")
def digits_task():
    from modelpress.tasks.mnist import digits

    return digits()
