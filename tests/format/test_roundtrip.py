"""Files round-trip exactly, are deterministic, describe themselves, and are valid safetensors files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.numpy import load_file

from modelpress.codec import DTYPES, bits_to_tensor, tensor_to_bits
from modelpress.errors import FormatError
from modelpress.format import describe_file, from_bytes, read_file, to_bytes, write_file
from tests.codec.strategies import random_bits, shapes
from tests.format.forge import sample_tensors, split_file


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise equality with dtype and shape (NaN-safe)."""
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(tensor_to_bits(a), tensor_to_bits(b))


@st.composite
def tensor_dicts(draw):
    count = draw(st.integers(0, 4))
    names = draw(st.lists(st.text(min_size=1, max_size=12).filter(lambda n: n != "__metadata__"),
                          min_size=count, max_size=count, unique=True))
    out = {}
    for name in names:
        dtype = DTYPES[draw(st.sampled_from(sorted(DTYPES)))]
        shape = draw(shapes(max_numel=300))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        bits = random_bits(rng, dtype, int(np.prod(shape, dtype=np.int64)), draw(st.sampled_from([0.0, 0.6, 0.97])),
                           draw(st.sampled_from([None, 1, 5, 200])))
        out[name] = bits_to_tensor(bits, dtype, shape)
    return out


metadata_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8)


@settings(max_examples=40, deadline=None)
@given(tensor_dicts(), st.dictionaries(st.text(max_size=8), metadata_values, max_size=4))
def test_any_tensors_and_metadata_roundtrip_bit_exactly(tensors, metadata):
    data = to_bytes(tensors, metadata)
    restored, model = from_bytes(data)
    assert list(restored) == list(tensors)
    assert all(same(restored[name], tensors[name]) for name in tensors)
    assert model == metadata
    assert to_bytes(tensors, metadata) == data  # deterministic


def test_write_read_describe(tmp_path):
    tensors = sample_tensors()
    path = tmp_path / "sample.mpz"
    size = write_file(path, tensors, {"arch": "sample"})
    assert size == path.stat().st_size and size % 8 == 0
    restored, model = read_file(path)
    assert model == {"arch": "sample"}
    assert all(same(restored[name], tensors[name]) for name in tensors)
    rows = describe_file(path)
    assert [row["name"] for row in rows] == list(tensors)
    for row in rows:
        tensor = tensors[row["name"]]
        assert row["shape"] == list(tensor.shape) and row["dtype"] == str(tensor.dtype).removeprefix("torch.")
        assert row["bits_per_element"] == pytest.approx(8 * row["stored_bytes"] / max(tensor.numel(), 1))
        assert row["chain"].split("[")[0].split("(")[0] in {"dense", "planes", "codebook", "sparse"}
    assert sum(row["stored_bytes"] for row in rows) < size


def test_safetensors_opens_the_file_and_lists_the_tensors(tmp_path):
    tensors = sample_tensors()
    path = tmp_path / "sample.mpz"
    write_file(path, tensors, {"arch": "sample"})
    with safe_open(str(path), framework="pt") as handle:
        assert sorted(handle.keys()) == sorted(tensors)
        metadata = handle.metadata()
        assert metadata["modelpress.version"] == "1"
        assert json.loads(metadata["modelpress.model"]) == {"arch": "sample"}
        index = json.loads(metadata["modelpress.tensors"])
        for entry in index:
            payload = handle.get_tensor(entry["name"])
            assert payload.dtype == torch.uint8 and payload.numel() == entry["offsets"][1] - entry["offsets"][0]
    arrays = load_file(str(path))
    assert all(array.dtype == np.uint8 for array in arrays.values())


def test_payloads_are_eight_byte_aligned():
    data = to_bytes(sample_tensors())
    header, _ = split_file(data)
    start = 8 + int.from_bytes(data[:8], "little")
    assert start % 8 == 0
    offsets = sorted(value["data_offsets"] for key, value in header.items() if key != "__metadata__")
    assert all((start + begin) % 8 == 0 for begin, _ in offsets)


def test_compressed_file_is_small_for_a_pruned_clustered_model():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(300, 784, generator=g)
    w = torch.where(w.abs() > 1.645, torch.round(w * 4) / 4, torch.zeros(()))  # ~10% kept, few distinct values
    data = to_bytes({"w": w})
    assert len(data) < w.numel() * 4 / 25


@pytest.mark.parametrize(("tensors", "metadata", "message"), [
    ({"__metadata__": torch.zeros(1)}, {}, r"write_file: tensor name: expected a string of 1 to 1024 characters"),
    ({"": torch.zeros(1)}, {}, r"write_file: tensor name: expected a string of 1 to 1024"),
    ({"x": [1, 2]}, {}, r"write_file: tensor 'x': expected a torch.Tensor, got <list>"),
    ({"x": torch.zeros(1)}, {"v": float("nan")}, r"write_file: metadata: expected a JSON-serializable dict"),
    ({"x": torch.zeros(1)}, {"v": object()}, r"write_file: metadata: expected a JSON-serializable dict"),
    ({"x": torch.zeros(1, dtype=torch.complex64)}, {}, r"tensor 'x': expected a dtype among"),
])
def test_bad_inputs_are_rejected_before_anything_is_written(tmp_path, tensors, metadata, message):
    path = tmp_path / "out.mpz"
    with pytest.raises(FormatError, match=message):
        write_file(path, tensors, metadata)
    assert list(tmp_path.iterdir()) == []
