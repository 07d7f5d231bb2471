"""Tensor codecs and chains: every forced chain round-trips bit-exactly through its JSON form, ``encode_tensor``
is lossless for every dtype (NaN payloads, -0.0, infinities included) and picks small chains where they exist."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from modelpress.codec import (
    DTYPES,
    EncodedTensor,
    TensorSpec,
    attach,
    bits_to_tensor,
    build_node,
    decode_chain,
    decode_tensor,
    encode_tensor,
    parse_chain,
    tensor_to_bits,
)
from modelpress.codec.choose import Planner
from modelpress.codec.sparse import SPARSE
from modelpress.errors import FormatError
from tests.codec.strategies import bit_streams, force_chain, random_bits, shapes


@settings(max_examples=250, deadline=None)
@given(bit_streams(), st.data())
def test_any_forced_chain_roundtrips_through_its_json(stream, data):
    values, spec = stream
    node = force_chain(data.draw, values, spec)
    skeleton = parse_chain(node.to_json(), spec, "test")
    restored = decode_chain(attach(skeleton, memoryview(node.payload()), "test"), "test")
    assert restored.dtype == spec.dtype.bits
    assert np.array_equal(restored, values)


@settings(max_examples=120, deadline=None)
@given(st.sampled_from(sorted(DTYPES)), shapes(), st.integers(0, 2**32 - 1), st.sampled_from([0.0, 0.5, 0.95, 1.0]),
       st.sampled_from([None, 1, 2, 32, 256]))
def test_encode_tensor_is_lossless(dtype_name, shape, seed, sparsity, distinct):
    dtype = DTYPES[dtype_name]
    bits = random_bits(np.random.default_rng(seed), dtype, int(np.prod(shape, dtype=np.int64)), sparsity, distinct)
    tensor = bits_to_tensor(bits, dtype, shape)
    encoded = encode_tensor(tensor, "t")
    restored = decode_tensor(encoded)
    assert restored.dtype == tensor.dtype and tuple(restored.shape) == shape
    assert np.array_equal(tensor_to_bits(restored), bits)  # bitwise: NaN payloads and -0.0 survive
    assert encoded.nbytes <= bits.size * dtype.itemsize  # never worse than dense


def test_special_floats_survive_bitwise():
    values = torch.tensor([float("nan"), -0.0, 0.0, float("inf"), -float("inf"), 1e-45, -1.5] * 20)
    payload_nan = torch.from_numpy(np.array([0x7FC00001, 0xFFFFFFFF], np.uint32).view(np.float32))
    tensor = torch.cat([values, payload_nan])
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        t = tensor.to(dtype) if dtype != torch.float32 else tensor
        restored = decode_tensor(encode_tensor(t, "special"))
        assert np.array_equal(tensor_to_bits(restored), tensor_to_bits(t))


def pruned_clustered_weights(rows: int = 300, cols: int = 784, sparsity: float = 0.9, clusters: int = 32,
                             seed: int = 0) -> torch.Tensor:
    """A Deep-Compression-like layer: magnitude-pruned normal weights, survivors snapped to a few shared values."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, cols, generator=g) * 0.05
    threshold = w.abs().flatten().kthvalue(int(sparsity * w.numel())).values
    kept = w.abs() > threshold
    levels = torch.linspace(float(w[kept].min()), float(w[kept].max()), clusters)
    snapped = levels[(w.unsqueeze(-1) - levels).abs().argmin(-1)]
    return torch.where(kept, snapped, torch.zeros(()))


def test_pruned_clustered_layer_takes_a_codebook_chain_under_one_bit_per_weight():
    w = pruned_clustered_weights()
    encoded = encode_tensor(w, "fc1.weight")
    assert torch.equal(decode_tensor(encoded), w)
    assert "codebook" in encoded.chain.text()
    assert 8 * encoded.nbytes / w.numel() < 0.8  # dense float32 is 32 bits per weight


def sparse_sizes(variant: str) -> dict[int, int]:
    """Planned bytes of a 90%-sparse clustered 300x784 layer through ``sparse[variant, bits=b]``, b = 1..8."""
    w = pruned_clustered_weights()
    bits = tensor_to_bits(w)
    spec = TensorSpec(DTYPES["float32"], bits.size)
    planner = Planner()
    sizes = {}
    for b in range(1, 9):
        split = SPARSE.split(bits, spec, variant=variant, bits=b)
        sizes[b] = sum(planner.plan(child, child_spec, allow_sparse=False).size
                       for _, child, child_spec in split.children)
    return sizes


def test_escape_code_beats_fillers_and_frees_the_choice_of_width():
    escape, fillers = sparse_sizes("escape"), sparse_sizes("fillers")
    # Fillers spend a position and a value on every gap longer than 2^b - 1; the escape code spends only the gap.
    for b in (2, 3):
        assert escape[b] < 0.87 * fillers[b], (b, escape[b], fillers[b])
    assert escape[4] < 0.95 * fillers[4]
    assert all(escape[b] <= fillers[b] for b in range(1, 9))
    # With entropy coding the escape variant is within 1% of its best at every width; fillers need tuning.
    assert max(escape.values()) < 1.01 * min(escape.values())
    assert min(escape.values()) <= min(fillers.values())


def test_bias_and_small_tensors_stay_small():
    zeros = torch.zeros(300)
    assert encode_tensor(zeros, "b").nbytes == 0
    ones = torch.ones(384)
    enc = encode_tensor(ones, "ln.weight")
    assert enc.nbytes <= 8 and torch.equal(decode_tensor(enc), ones)
    bias = torch.randn(10)
    assert encode_tensor(bias, "b").nbytes <= 40


@pytest.mark.parametrize("tensor", [torch.zeros(1 << 20), torch.ones(1 << 20), torch.full((1 << 18,), 7),
                                    torch.ones(1 << 20, dtype=torch.bool)], ids=["zeros", "ones", "int64", "bool"])
def test_expansion_bound_is_respected_by_the_encoder(tensor):
    # 1 MiB elements: the bound needs >= (decoded - 65536) / 4096 payload bytes, so no 4-byte constant chain.
    encoded = encode_tensor(tensor, "t")
    assert encoded.nbytes * 4096 + 65536 >= tensor.numel() * tensor.element_size()
    assert encoded.nbytes <= tensor.numel() / 8 + 16  # one bit per element at most: mask or codebook index
    assert torch.equal(decode_tensor(encoded), tensor)


def test_unsupported_dtype_is_a_format_error():
    with pytest.raises(FormatError, match=r"tensor 'c': expected a dtype among float32, .*got <torch.complex64>"):
        encode_tensor(torch.zeros(2, dtype=torch.complex64), "c")


def test_decoded_bool_must_be_zero_or_one():
    bits = np.array([0, 1, 2], np.uint8)
    node = build_node("dense", bits, TensorSpec(DTYPES["bool"], 3), {}, None)
    with pytest.raises(FormatError, match=r"expected bool bytes 0x00 or 0x01, got <0x02>"):
        decode_tensor(EncodedTensor("m", DTYPES["bool"], (3,), node))
