"""Trained reference weights for the small zoo models: trained by modelpress on first use, then cached.

Training is fixed (seed, recipe, thread count) so the cached weights are the same on every machine of this kind; the
cache key includes the recipe and a digest of the task's data, so changing either retrains instead of silently
reusing stale weights (two tasks with the same name and split sizes but different digits get different weights).

Example:
    >>> spec = TRAINING["lenet300"]
    >>> spec.epochs, spec.lr
    (20.0, 0.001)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from modelpress.atomic import atomic_path
from modelpress.cache import cache_dir
from modelpress.config import FinetuneConfig
from modelpress.progress import console, is_quiet
from modelpress.task import ClassificationTask
from modelpress.train import fit

__all__ = ["TRAINING", "TRAINING_SEED", "TRAINING_THREADS", "data_digest", "trained_weights"]

TRAINING_SEED = 0
TRAINING_THREADS = 2  # fixed so the float reductions (and so the weights) do not depend on the machine's core count

# The reference training recipe of each zoo classifier (Adam, cosine schedule).
TRAINING: dict[str, FinetuneConfig] = {
    "lenet300": FinetuneConfig(epochs=20, lr=1e-3, batch_size=64),
    "lenet5": FinetuneConfig(epochs=15, lr=1e-3, batch_size=64),
    "resnet-small": FinetuneConfig(epochs=8, lr=2e-3, batch_size=64, weight_decay=1e-4, optimizer="adamw"),
    "mobilenet-small": FinetuneConfig(epochs=10, lr=2e-3, batch_size=64, weight_decay=1e-4, optimizer="adamw"),
}


def data_digest(task: ClassificationTask) -> str:
    """SHA-256 of the task's tensors (training and held-out inputs and labels, with their dtypes and shapes).

    Example:
        >>> x, y = torch.zeros(4, 2), torch.zeros(4, dtype=torch.long)
        >>> a = ClassificationTask("t", x, y, x, y, num_classes=2)
        >>> b = ClassificationTask("t", x + 1, y, x, y, num_classes=2)
        >>> data_digest(a) == data_digest(b), len(data_digest(a))
        (False, 64)
    """
    digest = hashlib.sha256()
    for tensor in (task.x_train, task.y_train, task.x_test, task.y_test):
        digest.update(f"{tensor.dtype}{list(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _cache_key(name: str, task: ClassificationTask, config: FinetuneConfig) -> str:
    recipe = json.dumps({"name": name, "task": task.describe(), "data": data_digest(task), "config": config.to_dict(),
                         "seed": TRAINING_SEED, "torch": torch.__version__}, sort_keys=True)
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def trained_weights(name: str, build: Callable[[], nn.Module], task: ClassificationTask) -> dict[str, torch.Tensor]:
    """The reference state dict of zoo model ``name`` on ``task``: from the cache, or trained now and cached."""
    config = TRAINING[name]
    path = cache_dir() / "zoo" / f"{name}-{task.name}-{_cache_key(name, task, config)}.safetensors"
    if path.exists():
        return load_file(path)
    if not is_quiet():
        console.print(f"[dim]training reference weights for zoo:{name} on {task.name} (first use; cached in {path})")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(TRAINING_THREADS)
    try:
        torch.manual_seed(TRAINING_SEED)
        model = build()
        fit(model, task, config, seed=TRAINING_SEED, description=f"train {name}")
    finally:
        torch.set_num_threads(previous_threads)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp))
    return state
