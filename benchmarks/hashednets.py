"""Claim: HashedNets (Chen et al. 2015) on LeNet-300-100 at 1/8 of the weights, against a plain smaller MLP with the
same number of stored parameters and the same training budget (MNIST-5k, accuracy on the 1,000 held-out digits).

    PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/hashednets.py [--seeds 0 1 2] [--epochs 20]

Arms (every one trained with the zoo's LeNet-300 recipe, ``TRAINING["lenet300"]``: 20 epochs, Adam 1e-3, cosine,
batch 64; ``--epochs`` shortens all arms alike):

* hashed-scratch: LeNet-300-100 whose three Linear layers are ``hash-share`` layers at ``fraction`` 1/8 (``init:
  random``: 29,400 + 3,750 + 125 shared values, biases kept whole: 33,685 parameters), trained from scratch;
* hashed-project: the zoo's trained LeNet-300-100 (94.2%), hashed at 1/8 with each value the least-squares fit of
  the dense weights hashed to it (``init: project``), then trained with the same budget;
* plain-mlp: a 784-h1-h2-10 MLP, ``h2 = round(h1 / 3)`` as in 300-100, sized so its parameter count is the closest
  to the hashed net's (784-42-14-10: 33,722 parameters), trained from scratch;
* plain-mlp-1h: the other natural equal-budget shape, one hidden layer 784-h-10 (784-42-10: 33,400 parameters).

The seed sets the hash functions, the initialization and the data order (the zoo model is trained once, seed 0).
Each arm is packed with ``modelpress.pack`` (its provenance: a factory or the zoo, plus the hash-share record), and
the file is unpacked and checked to give bit-identical outputs; the bytes printed are that file's size.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
from pathlib import Path

import torch
from torch import nn

from modelpress import zoo
from modelpress.config import FinetuneConfig
from modelpress.pack import pack, unpack
from modelpress.provenance import Provenance, set_provenance
from modelpress.recipe.registry import StageContext, apply_stage
from modelpress.share.config import HashShareConfig
from modelpress.task import ClassificationTask
from modelpress.tasks.mnist import mnist5k
from modelpress.train import fit
from modelpress.zoo.models import LeNet300
from modelpress.zoo.reference import TRAINING

FRACTION = 1 / 8


def small_mlp(h1: int, h2: int = 0, in_features: int = 784, classes: int = 10) -> nn.Module:
    """The plain baseline: flatten -> Linear(in, h1) -> ReLU [-> Linear(h1, h2) -> ReLU] -> Linear(., classes)
    (``h2 = 0``: one hidden layer)."""
    layers: list[nn.Module] = [nn.Flatten(), nn.Linear(in_features, h1), nn.ReLU()]
    if h2:
        layers += [nn.Linear(h1, h2), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(h2 or h1, classes))


def mlp_params(h1: int, h2: int = 0, in_features: int = 784, classes: int = 10) -> int:
    """Parameters (weights and biases) of :func:`small_mlp`."""
    if not h2:
        return (in_features + 1) * h1 + (h1 + 1) * classes
    return (in_features + 1) * h1 + (h1 + 1) * h2 + (h2 + 1) * classes


def equal_budget(target: int, two_hidden: bool) -> tuple[int, int]:
    """``(h1, h2)`` (``h2 = round(h1 / 3)``, or 0 for one hidden layer) whose parameter count is closest to
    ``target``."""
    shapes = ((h1, max(1, round(h1 / 3)) if two_hidden else 0) for h1 in range(1, 301))
    return min(shapes, key=lambda h: abs(mlp_params(*h) - target))


def params(model: nn.Module) -> int:
    """Stored parameters."""
    return sum(p.numel() for p in model.parameters())


def packed_bytes(model: nn.Module, task: ClassificationTask, directory: Path, name: str) -> int:
    """Pack ``model``, unpack it, check the outputs are bit-identical; returns the file's size in bytes."""
    path = directory / f"{name}.mpz"
    size = pack(model, path)
    restored = unpack(path)
    x = task.x_test[:256]
    with torch.no_grad():
        if not torch.equal(model.eval()(x), restored(x)):
            raise SystemExit(f"{name}: unpacked outputs differ from the packed model's")
    return size


def hashed(model: nn.Module, init: str, seed: int) -> nn.Module:
    """Apply the ``hash-share`` stage at 1/8 to every Linear layer."""
    return apply_stage(model, HashShareConfig(fraction=FRACTION, init=init, seed=seed), StageContext(seed=seed))


def run_seed(task: ClassificationTask, seed: int, train: FinetuneConfig, shapes: dict[str, tuple[int, int]],
             directory: Path) -> dict[str, dict[str, float]]:
    """The three arms for one seed: accuracy, parameters and packed bytes of each."""
    results: dict[str, dict[str, float]] = {}

    torch.manual_seed(seed)
    model = LeNet300()
    set_provenance(model, Provenance(source={"kind": "factory", "ref": "modelpress.zoo.models:LeNet300"}))
    model = hashed(model, "random", seed)
    fit(model, task, train, seed=seed, quiet=True, description="hashed-scratch")
    results["hashed-scratch"] = {"accuracy": task.evaluate(model)["accuracy"], "params": params(model),
                                 "bytes": packed_bytes(model, task, directory, f"scratch-{seed}")}

    model = hashed(zoo.load("lenet300", task), "project", seed)
    projected = task.evaluate(model)["accuracy"]
    fit(model, task, train, seed=seed, quiet=True, description="hashed-project")
    results["hashed-project"] = {"accuracy": task.evaluate(model)["accuracy"], "params": params(model),
                                 "bytes": packed_bytes(model, task, directory, f"project-{seed}"),
                                 "after projection": projected}

    for arm, (h1, h2) in shapes.items():
        torch.manual_seed(seed)
        model = small_mlp(h1, h2)
        set_provenance(model, Provenance(source={"kind": "factory", "ref": "benchmarks.hashednets:small_mlp",
                                                 "kwargs": {"h1": h1, "h2": h2}}))
        fit(model, task, train, seed=seed, quiet=True, description=arm)
        results[arm] = {"accuracy": task.evaluate(model)["accuracy"], "params": params(model),
                        "bytes": packed_bytes(model, task, directory, f"{arm}-{seed}")}
    return results


def summary(values: list[float]) -> str:
    """``mean +- std`` (sample std; just the value for one seed)."""
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} +- {statistics.stdev(values):.4f}"


def main() -> None:
    """Run every arm for every seed and print the per-seed figures and the summary table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=float, default=None, help="training epochs of every arm (default: the "
                        "zoo's LeNet-300 recipe, 20)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train = TRAINING["lenet300"]
    if args.epochs is not None:
        train = train.model_copy(update={"epochs": args.epochs})
    task = mnist5k()
    dense = zoo.load("lenet300", task)
    target = params(hashed(LeNet300(), "random", 0))
    shapes = {"plain-mlp": equal_budget(target, two_hidden=True), "plain-mlp-1h": equal_budget(target, False)}
    print(f"torch {torch.__version__}, {platform.machine()}, {torch.get_num_threads()} thread(s); training: "
          f"{train.epochs:g} epochs, {train.optimizer} lr {train.lr:g}, batch {train.batch_size}, {train.schedule}")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        dense_bytes = packed_bytes(dense, task, directory, "dense")
        print(f"dense zoo LeNet-300-100: accuracy {task.evaluate(dense)['accuracy']:.4f}, {params(dense):,} params, "
              f"{dense_bytes:,} bytes packed")
        plain = "; ".join(f"{arm} 784-{'-'.join(str(h) for h in shape if h)}-10: {mlp_params(*shape):,} params"
                          for arm, shape in shapes.items())
        print(f"hashed nets: {target:,} params; {plain}")
        runs = []
        for seed in args.seeds:
            result = run_seed(task, seed, train, shapes, directory)
            runs.append(result)
            for arm, figures in result.items():
                extra = (f", after projection (before training) {figures['after projection']:.4f}"
                         if "after projection" in figures else "")
                print(f"seed {seed} {arm:15s} accuracy {figures['accuracy']:.4f}, {int(figures['params']):,} params, "
                      f"{int(figures['bytes']):,} bytes{extra}", flush=True)
    print(f"\n| arm | params | packed bytes | accuracy (mean +- std over seeds {args.seeds}) |")
    print("|---|---|---|---|")
    print(f"| dense LeNet-300-100 (zoo) | {params(dense):,} | {dense_bytes:,} | "
          f"{task.evaluate(dense)['accuracy']:.4f} |")
    for arm in runs[0]:
        sizes_seen = sorted({int(r[arm]["bytes"]) for r in runs})
        shown = f"{sizes_seen[0]:,}" if len(sizes_seen) == 1 else f"{sizes_seen[0]:,}-{sizes_seen[-1]:,}"
        print(f"| {arm} | {int(runs[0][arm]['params']):,} | {shown} | "
              f"{summary([r[arm]['accuracy'] for r in runs])} |")


if __name__ == "__main__":
    main()
