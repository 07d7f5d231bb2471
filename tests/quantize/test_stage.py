"""The ``quantize`` stage on LeNet-300-100 (MNIST-5k held-out split): skips with reasons, files that store integers
and load back bit for bit, accuracy after dynamic int8, and the errors of a bad selection or a corrupted record."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from modelpress import zoo
from modelpress.errors import ConfigError, FormatError
from modelpress.format import read_file
from modelpress.history import Skip
from modelpress.kernels import Int4WeightOnlyLinear, Int8DynamicLinear, Int8WeightOnlyLinear
from modelpress.pack import pack, unpack
from modelpress.provenance import Provenance, get_provenance, set_provenance
from modelpress.quantize import QuantizeConfig, quantize_
from modelpress.recipe import load_recipe, run
from modelpress.recipe.registry import StageContext, apply_stage
from modelpress.recipe.schema import parse_recipe


@pytest.fixture(scope="module")
def lenet300(mnist):
    return zoo.load("lenet300", mnist)


@pytest.fixture(scope="module")
def fp32_file(lenet300, tmp_path_factory) -> int:
    return pack(lenet300, tmp_path_factory.mktemp("fp32") / "fp32.mpz")


@pytest.mark.parametrize(("mode", "kind", "ratio"), [("dynamic-int8", Int8DynamicLinear, 0.30),
                                                    ("weight-int8", Int8WeightOnlyLinear, 0.30)])
def test_int8_file_stores_integers_and_round_trips(mode, kind, ratio, lenet300, fp32_file, mnist,
                                                   tmp_path: Path) -> None:
    model = quantize_(copy.deepcopy(lenet300), QuantizeConfig(mode=mode))
    assert all(isinstance(getattr(model, n), kind) for n in ("fc1", "fc2", "fc3"))
    path = tmp_path / "q.mpz"
    size = pack(model, path)
    assert size == path.stat().st_size and size < ratio * fp32_file  # about a quarter of the fp32 file
    tensors, _ = read_file(path)
    assert {k: v.dtype for k, v in tensors.items() if k.endswith("weight_int8")} == {
        f"fc{i}.weight_int8": torch.int8 for i in (1, 2, 3)}
    assert not any(k.endswith(".weight") for k in tensors)  # no float weight left in the file
    restored = unpack(path)
    assert type(restored.fc1) is kind
    x = mnist.example_inputs(64)[0]
    assert torch.equal(restored(x), model(x))  # bit-identical outputs
    assert get_provenance(restored).transforms[-1]["mode"] == mode


def test_dynamic_int8_keeps_lenet300_accuracy(lenet300, mnist) -> None:
    dense = mnist.evaluate(lenet300)["accuracy"]
    quantized = mnist.evaluate(quantize_(copy.deepcopy(lenet300), QuantizeConfig(mode="dynamic-int8")))["accuracy"]
    assert abs(quantized - dense) <= 0.005  # within 0.5 points on the held-out 1,000 digits


def test_int4_skips_layers_the_group_size_does_not_divide(lenet300, mnist, tmp_path: Path) -> None:
    ctx = StageContext()
    model = apply_stage(copy.deepcopy(lenet300), QuantizeConfig(mode="weight-int4", group_size=16), ctx)
    assert isinstance(model.fc1, Int4WeightOnlyLinear)  # 784 = 16 * 49
    assert type(model.fc2) is torch.nn.Linear  # 300 inputs: 16 does not divide them
    assert ctx.skipped == [Skip("fc2", "group_size 16 does not divide its 300 input features"),
                           Skip("fc3", "group_size 16 does not divide its 100 input features")]
    assert ctx.notes["dequantize_only"] == ["fc1"]  # 300 outputs (not a multiple of 16): stored int4, no CPU kernel
    path = tmp_path / "q4.mpz"
    pack(model, path)
    tensors, _ = read_file(path)
    assert tensors["fc1.weight_uint4x2"].dtype == torch.uint8 and tuple(tensors["fc1.weight_uint4x2"].shape) == (
        300, 392)
    x = mnist.example_inputs(8)[0]
    assert torch.equal(unpack(path)(x), model(x))
    assert mnist.evaluate(model)["accuracy"] >= mnist.evaluate(lenet300)["accuracy"] - 0.01


def test_include_exclude_and_skip_reasons(lenet300) -> None:
    ctx = StageContext()
    model = apply_stage(copy.deepcopy(lenet300), QuantizeConfig(include=["fc*"], exclude=["fc3"]), ctx)
    assert type(model.fc3) is torch.nn.Linear
    assert ctx.skipped == [Skip("fc3", "excluded by the stage's exclude patterns")]
    again = StageContext()
    apply_stage(model, QuantizeConfig(), again)  # a second pass leaves the integer layers alone
    assert Skip("fc1", "already quantized (Int8DynamicLinear)") in again.skipped


def tiny_embedder() -> torch.nn.Module:
    """A factory for the round trip below: token embeddings and a Linear head."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Embedding(40, 32), torch.nn.Linear(32, 16))


@pytest.mark.parametrize(("mode", "bound"), [("dynamic-int8", 35.0), ("weight-int4", 15.0)])
def test_embeddings_are_quantized_on_request(mode: str, bound: float, tmp_path: Path) -> None:
    model = tiny_embedder()
    set_provenance(model, Provenance(source={"kind": "factory", "ref": "tests.quantize.test_stage:tiny_embedder"}))
    ctx = StageContext()
    out = apply_stage(copy.deepcopy(model), QuantizeConfig(mode=mode, embeddings=True), ctx)
    assert type(out[0]).__name__ == "QuantizedEmbedding" and ctx.notes["layers"] == ["0", "1"]
    ids = torch.tensor([[1, 2, 39], [0, 0, 5]])
    with torch.no_grad():
        reference = model(ids)
        error = (out(ids) - reference).pow(2).sum()
    assert float(10 * torch.log10(reference.pow(2).sum() / error)) > bound
    path = tmp_path / "e.mpz"
    pack(out, path)
    tensors, _ = read_file(path)
    assert tensors["0.weight_int8" if mode == "dynamic-int8" else "0.weight_uint4x2"].dtype in (torch.int8, torch.uint8)
    assert torch.equal(unpack(path)(ids), out(ids))
    skipped = StageContext()
    apply_stage(copy.deepcopy(model), QuantizeConfig(mode=mode), skipped)  # embeddings off: the table is not touched
    assert skipped.skipped == []


def test_selection_that_matches_nothing_is_an_error(lenet300) -> None:
    with pytest.raises(ConfigError, match=r"^quantize.include: expected patterns matching at least one Linear "
                                          r"layer, got \['conv\*'\]. Fix: use names among: fc1, fc2, fc3"):
        apply_stage(copy.deepcopy(lenet300), QuantizeConfig(include=["conv*"]))


def test_recipe_validation(lenet300) -> None:
    with pytest.raises(ConfigError, match=r"stages\[0\].mode: expected one of .*dynamic-int8.*got 'int3'"):
        parse_recipe({"stages": [{"type": "quantize", "mode": "int3"}]})
    with pytest.raises(ConfigError, match=r"stages\[0\].finetune: expected no fine-tuning of integer layers"):
        parse_recipe({"stages": [{"type": "quantize", "finetune": {"epochs": 1}}]})
    with pytest.raises(ConfigError, match=r"stages\[0\].group_size: input should be a multiple of 2, got 3"):
        parse_recipe({"stages": [{"type": "quantize", "mode": "weight-int4", "group_size": 3}]})
    with pytest.raises(ConfigError, match=r"stages\[1\]: expected no cast after an integer quantize stage"):
        parse_recipe({"stages": [{"type": "quantize"}, {"type": "cast"}]})
    recipe = parse_recipe({"stages": [{"type": "quantize", "mode": "weight-int4", "group_size": 64}]})
    assert recipe.stages[0] == QuantizeConfig(mode="weight-int4", group_size=64)


def test_recipe_run_records_the_file_and_skips(lenet300, mnist, tmp_path: Path) -> None:
    result = run(load_recipe([QuantizeConfig(mode="dynamic-int8", exclude=["fc3"])]), copy.deepcopy(lenet300), mnist,
                 out=tmp_path / "r.mpz", quiet=True)
    original, last = result.history.rows
    assert last.file_bytes < 0.5 * original.file_bytes
    assert last.skipped == [Skip("fc3", "excluded by the stage's exclude patterns")]
    assert (tmp_path / "r.mpz").stat().st_size == last.file_bytes


def test_corrupted_record_is_a_format_error(lenet300, tmp_path: Path) -> None:
    model = quantize_(copy.deepcopy(lenet300), QuantizeConfig(mode="weight-int4", group_size=16, include=["fc1"]))
    provenance = get_provenance(model)
    provenance.transforms[-1]["group_size"] = 7
    path = tmp_path / "bad.mpz"
    pack(model, path)
    with pytest.raises(FormatError, match=r"quantize transform: layer 'fc1': group_size: expected an even divisor "
                                          r"of 784, got 7. Fix: the file is corrupted"):
        unpack(path)
    provenance.transforms[-1]["mode"] = "int3"
    pack(model, path)
    with pytest.raises(FormatError, match=r"quantize transform: mode: expected one of .*got 'int3'"):
        unpack(path)
