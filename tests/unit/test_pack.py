"""``pack``/``unpack`` of hand-built models: a ``source=`` factory that cannot rebuild the model is refused before
any file is written (a file that can never be unpacked is worse than no file)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from modelpress.errors import ConfigError
from modelpress.pack import pack, unpack
from modelpress.zoo.models import LeNet300


def test_hand_built_model_round_trips_with_its_factory(tmp_path: Path) -> None:
    model = LeNet300()
    path = tmp_path / "m.mpz"
    assert pack(model, path, source="modelpress.zoo.models:LeNet300") == path.stat().st_size
    x = torch.randn(3, 1, 28, 28)
    assert torch.equal(unpack(path)(x), model.eval()(x))


def test_source_of_another_architecture_is_refused_and_nothing_written(tmp_path: Path) -> None:
    model = LeNet300()
    model.fc1 = torch.nn.Linear(784, 200)  # a structure change the factory does not know about
    path = tmp_path / "m.mpz"
    with pytest.raises(ConfigError, match=r"pack: source: expected a factory that builds this model's architecture"
                                          r".*got <modelpress.zoo.models:LeNet300: differs at fc1.weight, fc1.bias>"):
        pack(model, path, source="modelpress.zoo.models:LeNet300")
    assert not path.exists() and not list(tmp_path.iterdir())


def test_model_without_provenance_needs_a_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"pass source='package\.module:factory'"):
        pack(torch.nn.Linear(2, 2), tmp_path / "m.mpz")


def test_a_fresh_process_unpacks_a_structure_changed_model(tmp_path: Path) -> None:
    """The rebuilders of structure-changing stages register on import of their technique module; ``unpack`` in a
    process that never imported it must still find them (a bug: it raised 'unknown architecture transform')."""
    import subprocess
    import sys

    from modelpress.provenance import Provenance, set_provenance
    from modelpress.recipe.registry import apply_stage
    from modelpress.share.config import HashShareConfig

    model = LeNet300()
    set_provenance(model, Provenance(source={"kind": "factory", "ref": "modelpress.zoo.models:LeNet300"}))
    model = apply_stage(model, HashShareConfig(fraction=0.25)).eval()
    path = tmp_path / "hashed.mpz"
    pack(model, path)
    torch.save(torch.randn(2, 1, 28, 28), tmp_path / "x.pt")
    code = ("import sys, torch; from modelpress.pack import unpack; m = unpack(sys.argv[1]); "
            "x = torch.load(sys.argv[2]); print(type(m.fc1).__name__, repr(m(x).sum().item()))")
    out = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "x.pt")], capture_output=True,
                         text=True, check=True).stdout.split()
    x = torch.load(tmp_path / "x.pt")
    assert out == ["HashedLinear", repr(model(x).sum().item())]
