"""The fused (compile-friendly) W8A8 formulation and CompiledInference: exact integer products, agreement with the
eager blocked path, the compiled model against the eager one, and the eager fallback when compiling fails."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import modelpress.kernels.compiled as compiled_module
from modelpress.kernels import CompiledInference, Int8DynamicLinear
from modelpress.kernels.int8_dynamic import CHUNK_ROWS, quantize_per_token


def _layer(k: int, n: int, bias: bool = True, seed: int = 0) -> Int8DynamicLinear:
    torch.manual_seed(seed)
    return Int8DynamicLinear.from_linear(torch.nn.Linear(k, n, bias=bias))


@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 40), k=st.integers(1, 70), n=st.integers(1, 20), bias=st.booleans(), seed=st.integers(0, 99))
def test_fused_forward_is_the_exact_integer_product(m: int, k: int, n: int, bias: bool, seed: int) -> None:
    layer = _layer(k, n, bias, seed)
    x = torch.randn(m, k, generator=torch.Generator().manual_seed(seed)) * 3
    qx, sx = quantize_per_token(x)
    acc = qx.long() @ layer.weight_int8.long().T  # int64 reference of the integer product
    expected = acc.float() * sx * layer.weight_scale + (layer.bias if bias else 0)
    assert torch.equal(layer.fused_forward(x), expected)


@pytest.mark.parametrize("m", [1, 7, CHUNK_ROWS + 3])
def test_fused_forward_equals_the_blocked_forward(m: int) -> None:
    layer = _layer(48, 24)
    x = torch.randn(2, m, 48)
    x[0, 0] = 0  # an all-zero token: scale 1, output = bias
    fused, blocked = layer.fused_forward(x), layer(x)
    assert fused.shape == blocked.shape == (2, m, 24)
    torch.testing.assert_close(fused, blocked, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fused[0, 0], layer.bias)


def test_disabled_compilation_runs_the_eager_model() -> None:
    model = torch.nn.Sequential(_layer(16, 8), torch.nn.GELU(), _layer(8, 4, seed=1))
    wrapped = CompiledInference(model, enabled=False)
    x = torch.randn(5, 16)
    assert torch.equal(wrapped(x), model(x))
    assert not wrapped.compiled and wrapped.fallback_reason == "compilation disabled"
    assert wrapped.compile_seconds is None


def test_compiler_failure_falls_back_to_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_compile(model: torch.nn.Module, **kwargs: object) -> object:
        def call(*args: object) -> object:
            raise RuntimeError("C++ compiler not found\nmore detail")
        return call

    monkeypatch.setattr(compiled_module.torch, "compile", broken_compile)
    model = torch.nn.Sequential(_layer(16, 8))
    wrapped = CompiledInference(model)
    x = torch.randn(3, 16)
    with pytest.warns(UserWarning, match="torch.compile failed, running eagerly: RuntimeError: C\\+\\+ compiler"):
        out = wrapped(x)
    assert torch.equal(out, model(x))
    assert not wrapped.compiled and wrapped.fallback_reason == "RuntimeError: C++ compiler not found"
    assert torch.equal(wrapped(x), model(x))  # later calls stay eager, without warning again


def test_compiled_int8_model_matches_eager_within_rounding() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(_layer(32, 64), torch.nn.GELU(), torch.nn.LayerNorm(64), _layer(64, 16, seed=1))
    wrapped = CompiledInference(model, dynamic=False)
    x = torch.randn(2, 10, 32)
    out = wrapped(x)
    assert wrapped.compiled, wrapped.fallback_reason
    assert wrapped.compile_seconds is not None and wrapped.compile_seconds > 0
    with torch.inference_mode():
        eager = model(x)
    # a token on an int8 rounding boundary may round the other way in the fused kernel: close, not bitwise
    assert out.shape == eager.shape
    assert float((out - eager).abs().max()) < 0.02 * float(eager.abs().max())
