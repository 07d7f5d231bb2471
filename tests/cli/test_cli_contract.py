"""The CLI's JSON contract that other tools and the issues' checks rely on: one JSON object on stdout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from modelpress.cli import main
from modelpress.zoo.models import LeNet5


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1, "exactly one JSON line on stdout"
    return json.loads(out)


def test_analyze_lenet5(capsys: pytest.CaptureFixture[str]) -> None:
    data = _json(capsys, ["analyze", "zoo:lenet5", "--json", "--runs", "3"])
    with FlopCounterMode(display=False) as counter:
        LeNet5()(torch.zeros(1, 1, 28, 28))
    assert data["params"] == 431080
    assert data["flops"] == counter.get_total_flops() == 4586000
    assert data["nonzeros"] == 431080
    assert 0 < data["bytes"] < 431080 * 4  # the packed file: lossless, smaller than raw fp32
    assert [layer["name"] for layer in data["layers"]] == ["conv1", "conv2", "fc1", "fc2"]
    assert data["latency"]["batch"] == 1 and data["latency_ms"] > 0


def test_eval_zoo_and_file_and_bench(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from modelpress import zoo
    from modelpress.pack import pack

    data = _json(capsys, ["eval", "zoo:lenet300", "--task", "mnist5k", "--json"])
    assert data["bytes"] is None
    accuracy = data["metrics"]["accuracy"]
    path = tmp_path / "lenet300.mpz"
    pack(zoo.load("lenet300"), path)
    from_file = _json(capsys, ["eval", str(path), "--task", "mnist5k", "--json"])
    assert from_file["metrics"]["accuracy"] == accuracy
    assert from_file["bytes"] == path.stat().st_size

    bench = _json(capsys, ["bench", str(path), "--task", "mnist5k", "--batch", "4", "--threads", "1", "--runs", "5",
                           "--warmup", "1", "--baseline", "zoo:lenet300", "--json"])
    assert bench["batch"] == 4 and bench["threads"] == 1 and bench["runs"] == 5
    assert bench["latency_ms"] > 0 and bench["speedup"] > 0

    listing = _json(capsys, ["inspect", str(path), "--json"])
    assert listing["bytes"] == path.stat().st_size
    assert {t["name"] for t in listing["tensors"]} == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias",
                                                        "fc3.weight", "fc3.bias"}


def test_checkpoint_model_spec(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from modelpress import zoo
    from modelpress.sources import save_checkpoint

    path = tmp_path / "lenet300.pt"
    save_checkpoint(zoo.load("lenet300"), "zoo:lenet300", path)
    data = _json(capsys, ["eval", str(path), "--task", "mnist5k", "--json"])
    direct = _json(capsys, ["eval", "zoo:lenet300", "--task", "mnist5k", "--json"])
    # the checkpoint is the model: the same held-out accuracy to the last bit (and a trained one, not chance)
    assert data["metrics"]["accuracy"] == direct["metrics"]["accuracy"] > 0.9


@pytest.mark.slow
def test_minilm_against_itself(capsys: pytest.CaptureFixture[str]) -> None:
    data = _json(capsys, ["eval", "zoo:minilm", "--task", "sentences", "--json"])
    assert data["metrics"]["mean_cosine"] == pytest.approx(1.0, abs=1e-6)
    assert data["metrics"]["spearman"] == pytest.approx(1.0, abs=1e-9)
    assert data["metrics"]["nn_agreement"] == 1.0
