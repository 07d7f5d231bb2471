"""Every user error of the CLI: one line on stderr saying what was expected and how to fix it, exit code 2,
no traceback unless --debug."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from modelpress.cli import main


def _fail(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith("error: ")
    assert "Traceback" not in err
    return err


def test_bad_path(capsys: pytest.CaptureFixture[str]) -> None:
    err = _fail(capsys, ["eval", "missing/model.mpz", "--task", "mnist5k"])
    assert "model 'missing/model.mpz': expected zoo:NAME, package.module:factory, a checkpoint" in err
    assert "got <no such file or directory>. Fix: check the path" in err


def test_unknown_zoo_name(capsys: pytest.CaptureFixture[str]) -> None:
    err = _fail(capsys, ["analyze", "zoo:lenet", "--task", "mnist5k"])
    assert err == ("error: zoo model: expected one of lenet300, lenet5, minilm, mobilenet-small, resnet-small, "
                   "got 'lenet'. Fix: use zoo:lenet300, say")


def test_unknown_task(capsys: pytest.CaptureFixture[str]) -> None:
    err = _fail(capsys, ["eval", "zoo:lenet300", "--task", "imagenet"])
    assert ("task: expected one of digits, mnist5k, sentences, sentences-large, sentences-xl or "
            "package.module:factory, got 'imagenet'") in err


def test_malformed_yaml(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("stages:\n  - type: cast\n  dtype: [oops\n")
    err = _fail(capsys, ["compress", "zoo:lenet300", "--task", "mnist5k", "--recipe", str(recipe),
                         "--out", str(tmp_path / "o.mpz")])
    assert f"{recipe}:3: expected valid YAML, got a syntax error" in err
    assert not (tmp_path / "o.mpz").exists()


def test_invalid_recipe_value_rejected_before_running(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("stages:\n  - type: cast\n    dtype: float8\n")
    err = _fail(capsys, ["compress", "zoo:lenet300", "--task", "mnist5k", "--recipe", str(recipe),
                         "--out", str(tmp_path / "o.mpz")])
    assert err == f"error: {recipe}:3: stages[0].dtype: expected one of 'float16' or 'bfloat16', got 'float8'"


def test_model_fails_on_task_inputs(capsys: pytest.CaptureFixture[str]) -> None:
    err = _fail(capsys, ["eval", "zoo:lenet5", "--task", "digits"])
    assert "zoo:lenet5 input: expected images of at least 16x16 pixels, got <8x8>" in err
    err = _fail(capsys, ["analyze", "tests.cli.factories:wrong_input_model", "--task", "digits"])
    assert "model on task 'digits': expected a model that accepts inputs of shape [2, 1, 8, 8]" in err


def test_bad_checkpoint(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import torch

    path = tmp_path / "m.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    err = _fail(capsys, ["eval", str(path), "--task", "digits"])
    assert "expected a dict with keys 'arch' and 'state_dict', got <['weights']>" in err


def test_non_positive_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    err = _fail(capsys, ["bench", "zoo:lenet300", "--batch", "0"])
    assert err == "error: --batch: expected a whole number ≥ 1, got 0. Fix: pass --batch 1 or more"


def test_missing_task_for_non_zoo_model(capsys: pytest.CaptureFixture[str]) -> None:
    err = _fail(capsys, ["eval", "torch.nn:Identity"])
    assert "--task: expected a task name for a model outside the zoo" in err


def test_real_process_exit_code_and_debug() -> None:
    cmd = [sys.executable, "-m", "modelpress.cli", "analyze", "zoo:nope"]
    plain = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 2
    assert plain.stdout == ""
    assert plain.stderr.strip().startswith("error: zoo model: expected one of")
    assert "Traceback" not in plain.stderr
    debug = subprocess.run([*cmd[:3], "--debug", *cmd[3:]], capture_output=True, text=True, timeout=120)
    assert "Traceback" in debug.stderr
