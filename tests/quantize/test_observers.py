"""Calibration observers: the ranges they choose, the histogram they keep, and their errors without data."""

from __future__ import annotations

import pytest
import torch

from modelpress.errors import ConfigError
from modelpress.quantize.observers import (
    KLObserver,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    MSEObserver,
    PercentileObserver,
    calibrate,
)
from modelpress.quantize.primitives import fake_quantize, qparams_from_min_max


def test_min_max_per_tensor_and_per_channel() -> None:
    obs = calibrate(MinMaxObserver(axis=1), [torch.tensor([[1.0, -2.0]]), torch.tensor([[3.0, 0.5], [0.0, 0.0]])])
    lo, hi = obs.min_max()
    assert lo.tolist() == [0.0, -2.0] and hi.tolist() == [3.0, 0.5]


def test_moving_average_follows_batches() -> None:
    obs = MovingAverageMinMaxObserver(momentum=0.25)
    for top in (4.0, 8.0, 8.0):
        obs.update(torch.tensor([-1.0, top]))
    assert float(obs.min_max()[1]) == pytest.approx(4.0 + 0.25 * 4 + 0.25 * 3)  # 4 -> 5 -> 5.75


def test_histogram_doubling_keeps_every_count() -> None:
    obs = PercentileObserver(percentile=100.0, bins=64)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(1000, generator=g) * s for s in (0.1, 1.0, 30.0)]
    for b in batches:
        obs.update(b)
    assert obs.hist.sum() == 3000
    top = max(float(b.abs().max()) for b in batches)
    assert top <= obs.upper < 2 * top  # doubled just enough
    assert float(obs.min_max()[1]) >= top - obs.width  # the 100th percentile reaches the largest value's bin


def test_percentile_ignores_rare_outliers() -> None:
    x = torch.cat([torch.linspace(-1, 1, 100_000), torch.tensor([1000.0])])
    obs = calibrate(PercentileObserver(percentile=99.9), [x])
    lo, hi = obs.min_max()
    assert 0.99 < float(hi) <= 0.999 + obs.width and float(lo) == -float(hi)  # exact up to one bin of the histogram


def test_kl_clips_outliers_and_keeps_the_bulk_more_precise() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50_000, generator=g)
    x = torch.cat([x, torch.tensor([40.0, -40.0])])
    _, t = calibrate(KLObserver(levels=128, bins=1024), [x]).min_max()
    assert 2.0 < float(t) < 20.0  # well inside the 40.0 outliers, well outside one sigma
    error = {}
    for name, top in (("kl", float(t)), ("minmax", 40.0)):
        qp = qparams_from_min_max(torch.tensor(-top), torch.tensor(top), 8, True)
        bulk = x[:50_000]
        error[name] = float((fake_quantize(bulk, qp) - bulk).pow(2).mean())
    assert error["kl"] < error["minmax"]


def test_mse_clipping_lowers_int4_error_per_channel() -> None:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(16, 256, generator=g)
    w[:, 0] = 12.0  # one outlier per row
    obs = calibrate(MSEObserver(bits=4, symmetric=True, axis=0), [w])
    lo, hi = obs.min_max()
    assert lo.shape == (16,) and bool((hi < 12.0).all())
    minmax = qparams_from_min_max(w.amin(1), w.amax(1), 4, True, axis=0)
    mse = obs.qparams(4, True)
    err = {n: float((fake_quantize(w, qp) - w).pow(2).mean()) for n, qp in (("minmax", minmax), ("mse", mse))}
    assert err["mse"] < 0.8 * err["minmax"]


@pytest.mark.parametrize("observer", [MinMaxObserver(), MovingAverageMinMaxObserver(), PercentileObserver(),
                                      KLObserver(), MSEObserver()])
def test_no_data_is_a_clear_error(observer) -> None:
    name = type(observer).__name__
    with pytest.raises(ConfigError, match=rf"^{name}: expected at least one calibration tensor, got <none>. Fix: "
                                          "call update"):
        observer.min_max()
    observer.update(torch.zeros(0))  # an empty tensor is no data either
    with pytest.raises(ConfigError, match=r"^calibrate: expected at least one non-empty calibration tensor, got "
                                          r"<none>. Fix: give the task calibration data"):
        calibrate(observer, [])


def test_bad_observer_settings() -> None:
    with pytest.raises(ConfigError, match=r"^percentile: expected a number in \(0, 100\], got 150"):
        PercentileObserver(percentile=150)
    with pytest.raises(ConfigError, match=r"^momentum: expected a number in \(0, 1\], got 0"):
        MovingAverageMinMaxObserver(momentum=0)
    with pytest.raises(ConfigError, match=r"^bits: expected an integer in \[1, 8\], got 9"):
        MSEObserver(bits=9)
