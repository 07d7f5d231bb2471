"""A clustered, pruned model packs small (sparse positions + codebook indices + entropy coding) and unpacks
exactly."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from modelpress.format import describe_file
from modelpress.pack import pack, unpack
from modelpress.prune.config import PruneConfig
from modelpress.recipe.registry import StageContext, apply_stage
from modelpress.share.config import ClusterConfig
from modelpress.zoo.models import LeNet5, LeNet300


def _entropy_bytes(weight: torch.Tensor) -> float:
    """The zero-order entropy of the weight's values (zeros included) in bytes: what an ideal coder of
    independent symbols spends, and what the planner's chain should come close to."""
    _, counts = weight.detach().reshape(-1).unique(return_counts=True)
    p = counts.double() / counts.sum()
    return float(-(counts * p.log2()).sum()) / 8


def test_pruned_clustered_lenet300_round_trip_is_exact_and_small(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = LeNet300()
    ctx = StageContext(quiet=True)
    model = apply_stage(model, PruneConfig(sparsity=0.9, criterion="magnitude", scope="global"), ctx)
    model = apply_stage(model, ClusterConfig(linear_bits=4, overrides=[{"layers": ["fc3"], "bits": 6}]), ctx)
    path = tmp_path / "m.mpz"
    nbytes = pack(model, path, source="modelpress.zoo.models:LeNet300")
    assert nbytes == path.stat().st_size
    restored = unpack(path)
    for key, value in model.state_dict().items():
        assert torch.equal(restored.state_dict()[key], value), key
    x = torch.randn(8, 1, 28, 28)
    assert torch.equal(model.eval()(x), restored(x))
    rows = {row["name"]: row for row in describe_file(path)}
    for name, bits in (("fc1", 4), ("fc2", 4), ("fc3", 6)):
        chain = rows[f"{name}.weight"]["chain"]
        size = re.search(r"codebook\[size=(\d+)\]", chain)
        assert size is not None and int(size.group(1)) <= 2 ** bits + 1, chain  # +1: the zero, if not sparse
        # sparse positions and codebook indices, entropy coded: within 3% (+ a table's bytes) of the entropy
        ideal = _entropy_bytes(getattr(model, name).weight)
        assert rows[f"{name}.weight"]["stored_bytes"] <= 1.03 * ideal + 2 ** bits * 4 + 64, (chain, ideal)
    assert re.search(r"(huffman|ans)", rows["fc1.weight"]["chain"])


def test_clustered_conv_model_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = LeNet5()
    model = apply_stage(model, ClusterConfig(conv_bits=5, linear_bits=3), StageContext(quiet=True))
    path = tmp_path / "m.mpz"
    pack(model, path, source="modelpress.zoo.models:LeNet5")
    restored = unpack(path)
    x = torch.randn(4, 1, 28, 28)
    assert torch.equal(model.eval()(x), restored(x))
    rows = {row["name"]: row for row in describe_file(path)}
    assert "codebook[size=32]" in rows["conv2.weight"]["chain"]
    for name in ("conv1", "conv2", "fc1", "fc2"):
        assert rows[f"{name}.weight"]["stored_bytes"] <= 1.03 * _entropy_bytes(getattr(model, name).weight) + 200
