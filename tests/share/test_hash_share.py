"""HashedLinear and the ``hash-share`` stage: gradients reach the shared values as HashedNets says, LeNet-300-100
keeps the asked fraction of its weights, pack -> unpack rebuilds bit-identical outputs from a file holding only the
values and biases, and bad configs are rejected with the house message."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from modelpress.config import FinetuneConfig
from modelpress.errors import ConfigError, FormatError
from modelpress.format import read_file
from modelpress.pack import pack, unpack
from modelpress.provenance import Provenance, get_provenance, replay_transforms, set_provenance
from modelpress.quantize.cast import CastConfig
from modelpress.recipe import parse_recipe
from modelpress.recipe.registry import StageContext, apply_stage
from modelpress.share.config import HashShareConfig
from modelpress.share.hash_share import apply_hash_share
from modelpress.share.hashed_linear import HashedLinear
from modelpress.task import ClassificationTask
from modelpress.train import fit
from modelpress.zoo.models import LeNet5, LeNet300

LENET300 = "modelpress.zoo.models:LeNet300"


def lenet300() -> nn.Module:
    model = LeNet300()
    set_provenance(model, Provenance(source={"kind": "factory", "ref": LENET300}))
    return model


@pytest.mark.parametrize("sign", [True, False])
def test_each_value_gets_the_sign_corrected_sum_of_its_positions_gradients(sign: bool) -> None:
    layer = HashedLinear(12, 7, buckets=10, sign=sign, seed=5, dtype=torch.float64)
    x = torch.randn(9, 12, dtype=torch.float64)
    target = torch.randn(9, 7, dtype=torch.float64)
    ((layer(x) - target) ** 2).sum().backward()
    # The same loss through a dense copy of the virtual weight: its gradient dL/dV[i, j] per position.
    dense = layer.virtual_weight().detach().requires_grad_(True)
    bias = layer.bias.detach().clone().requires_grad_(True)
    ((x @ dense.T + bias - target) ** 2).sum().backward()
    flip = layer.flip if sign else torch.ones(7, 12, dtype=torch.float64)
    expected = torch.zeros(10, dtype=torch.float64).index_add_(0, layer.bucket.reshape(-1),
                                                               (flip * dense.grad).reshape(-1))
    assert torch.allclose(layer.values.grad, expected, rtol=1e-12, atol=1e-12)
    assert torch.allclose(layer.bias.grad, bias.grad, rtol=1e-12, atol=1e-12)
    assert layer.values.grad.abs().sum() > 0


def test_projection_is_the_least_squares_fit() -> None:
    linear = nn.Linear(10, 6)
    hashed = HashedLinear.from_linear(linear, buckets=7, sign=True, seed=2)
    with torch.no_grad():
        base = float(((hashed.virtual_weight() - linear.weight) ** 2).sum())
        for k in range(7):  # moving any single value away from the fit can only increase the squared error
            for delta in (1e-3, -1e-3):
                hashed.values[k] += delta
                assert float(((hashed.virtual_weight() - linear.weight) ** 2).sum()) > base
                hashed.values[k] -= delta


def test_lenet300_keeps_the_asked_fraction_and_records_notes() -> None:
    model = lenet300()
    dense_params = sum(p.numel() for p in model.parameters())  # 266,610
    ctx = StageContext()
    model = apply_stage(model, HashShareConfig(fraction=0.125), ctx)
    assert all(isinstance(getattr(model, n), HashedLinear) for n in ("fc1", "fc2", "fc3"))
    assert sorted(model.state_dict()) == sorted(f"{n}.{p}" for n in ("fc1", "fc2", "fc3") for p in ("values", "bias"))
    params = sum(p.numel() for p in model.parameters())
    assert params == 29400 + 3750 + 125 + 300 + 100 + 10
    assert abs(params / dense_params - 0.125) < 0.002  # the biases (410) are kept whole
    assert ctx.notes["fraction"] == 0.125 and ctx.notes["stored_values"] == 33275
    assert ctx.notes["layers"]["fc1"]["buckets"] == 29400 and ctx.notes["layers"]["fc3"]["fraction"] == 0.125
    assert 0 < ctx.notes["layers"]["fc2"]["relative_error"] < 1
    assert get_provenance(model).transforms[-1]["type"] == "hash-share"
    assert ctx.skipped == []


def test_overrides_set_a_layers_fraction() -> None:
    ctx = StageContext()
    model = apply_stage(lenet300(), HashShareConfig(fraction=0.125, overrides=[{"layers": ["fc3"],
                                                                                 "fraction": 1.0}]), ctx)
    assert model.fc3.values.numel() == 1000 and model.fc1.values.numel() == 29400


def test_pack_unpack_is_bit_identical_and_the_file_is_small(tmp_path: Path) -> None:
    dense = lenet300()
    dense_bytes = pack(dense, tmp_path / "dense.mpz")
    model = apply_stage(copy.deepcopy(dense), HashShareConfig(fraction=0.125, seed=3))
    hashed_bytes = pack(model, tmp_path / "hashed.mpz")
    tensors, metadata = read_file(tmp_path / "hashed.mpz")
    assert sorted(tensors) == sorted(model.state_dict())  # values and biases only: no bucket, no sign
    assert metadata["provenance"]["transforms"][0]["hash"] == "splitmix64-v1"
    assert hashed_bytes < 0.14 * dense_bytes
    restored = unpack(tmp_path / "hashed.mpz")
    assert isinstance(restored.fc1, HashedLinear) and restored.fc1.seed == model.fc1.seed
    x = torch.randn(32, 1, 28, 28)
    assert torch.equal(restored(x), model.eval()(x))


def test_a_cast_after_hashing_replays_in_order(tmp_path: Path) -> None:
    model = apply_stage(lenet300(), HashShareConfig(fraction=0.25, sign=False, init="random"))
    model = apply_stage(model, CastConfig(dtype="bfloat16"))
    pack(model, tmp_path / "m.mpz")
    restored = unpack(tmp_path / "m.mpz")
    assert restored.fc2.values.dtype == torch.bfloat16 and restored.fc2.flip is None
    x = torch.randn(8, 1, 28, 28)
    assert torch.equal(restored(x), model.eval()(x))


def test_a_bare_linear_model_is_replaced_and_keeps_its_provenance(tmp_path: Path) -> None:
    model = nn.Linear(40, 20)
    set_provenance(model, Provenance(source={"kind": "factory", "ref": "torch.nn:Linear",
                                             "kwargs": {"in_features": 40, "out_features": 20}}))
    hashed = apply_hash_share(model, HashShareConfig(fraction=0.5), StageContext())
    assert isinstance(hashed, HashedLinear) and get_provenance(hashed) is get_provenance(model)
    pack(hashed, tmp_path / "m.mpz")
    x = torch.randn(3, 40)
    assert torch.equal(unpack(tmp_path / "m.mpz")(x), hashed.eval()(x))


def test_layers_it_cannot_handle_are_skipped_with_the_reason() -> None:
    ctx = StageContext()
    model = apply_stage(LeNet5(), HashShareConfig(exclude=["fc2"]), ctx)
    reasons = {s.layer: s.reason for s in ctx.skipped}
    assert reasons == {"conv1": "Conv2d is not a Linear layer (hash-share replaces plain nn.Linear)",
                       "conv2": "Conv2d is not a Linear layer (hash-share replaces plain nn.Linear)",
                       "fc2": "excluded by the stage's exclude patterns"}
    assert isinstance(model.fc1, HashedLinear) and type(model.fc2) is nn.Linear
    ctx = StageContext()
    apply_stage(model, HashShareConfig(), ctx)  # fc1 again
    assert {s.layer: s.reason for s in ctx.skipped}["fc1"] == "already hashed"

    tied = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2))
    tied[1].weight = tied[0].weight
    ctx = StageContext()
    apply_stage(tied, HashShareConfig(), ctx)
    assert [(s.layer, s.reason) for s in ctx.skipped] == [
        ("0", "its weight is tied to another layer's (hashing it would untie them)"),
        ("1", "its weight is tied to another layer's (hashing it would untie them)")]
    assert isinstance(tied[2], HashedLinear)


@pytest.mark.parametrize("fraction", [0, 1.5])
def test_a_bad_fraction_is_rejected(fraction: float) -> None:
    with pytest.raises(ConfigError) as err:
        HashShareConfig(fraction=fraction)
    assert str(err.value) == f"fraction: expected a number in (0, 1], got {fraction}"


def test_a_bad_fraction_in_a_recipe_is_located() -> None:
    with pytest.raises(ConfigError) as err:
        parse_recipe({"stages": [{"type": "hash-share", "fraction": 0}]})
    assert "stages[0].fraction: expected a number in (0, 1], got 0" in str(err.value).splitlines()
    assert parse_recipe({"stages": [{"type": "hash-share", "fraction": 0.125}]}).stages[0].fraction == 0.125


def test_patterns_selecting_no_linear_layer_are_rejected() -> None:
    with pytest.raises(ConfigError) as err:
        apply_stage(lenet300(), HashShareConfig(include=["conv*"]))
    assert str(err.value) == ("hash-share: include: expected patterns that select at least one Linear layer, got "
                              "['conv*']. Fix: use names of this model's Linear layers: fc1, fc2, fc3")
    with pytest.raises(ConfigError) as err:
        apply_stage(lenet300(), HashShareConfig(exclude=["fc*"]))
    assert str(err.value).startswith("hash-share: exclude: expected patterns that select at least one Linear layer, "
                                     "got ['fc*']")
    with pytest.raises(ConfigError) as err:
        apply_stage(lenet300(), HashShareConfig(include=["fc1"], overrides=[{"layers": ["fc9"], "fraction": 0.5}]))
    assert str(err.value) == ("hash-share: overrides[0].layers: expected patterns matching a selected layer, got "
                              "['fc9']. Fix: use names among the selected layers: fc1")
    with pytest.raises(ConfigError, match=r"^hash-share: model: expected a model with at least one Linear layer"):
        apply_stage(nn.Sequential(nn.Conv2d(1, 2, 3)), HashShareConfig())


def test_a_record_with_an_unknown_hash_or_a_wrong_layer_is_refused() -> None:
    record = {"type": "hash-share", "hash": "splitmix64-v9", "layers": []}
    with pytest.raises(FormatError) as err:
        replay_transforms(LeNet300(), [record])
    assert str(err.value) == ("hash-share transform: hash: expected 'splitmix64-v1', got 'splitmix64-v9'. "
                              "Fix: this file needs a newer modelpress")
    layer = {"name": "fc1", "in_features": 300, "out_features": 100, "buckets": 10, "bias": True, "sign": True,
             "seed": 0, "dtype": "float32"}
    with pytest.raises(FormatError, match=r"^hash-share transform: layer 'fc1': expected a Linear of shape \[100, "
                                          r"300\], got <Linear>"):
        replay_transforms(LeNet300(), [{"type": "hash-share", "hash": "splitmix64-v1", "layers": [layer]}])


def test_finetuning_trains_the_shared_values() -> None:
    # A small toy problem (4 linearly separable classes): the real MNIST runs are in benchmarks/hashednets.py.
    torch.set_num_threads(1)  # tiny matrices: a second thread only adds synchronization (conftest resets it)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(640, 20, generator=generator)
    y = (x @ torch.randn(20, 4, generator=generator)).argmax(1)
    task = ClassificationTask("toy", x[:512], y[:512], x[512:], y[512:], num_classes=4)
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 4))
    model = apply_stage(model, HashShareConfig(fraction=0.25, init="random"))
    before = model[0].values.detach().clone()
    fit(model, task, FinetuneConfig(epochs=10, lr=1e-2, batch_size=64), quiet=True)
    assert not torch.equal(before, model[0].values)
    assert task.evaluate(model)["accuracy"] > 0.8  # held-out examples; chance is ~0.25
