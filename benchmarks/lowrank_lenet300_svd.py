"""Claim: LeNet-300-100 with fc1 factorized by truncated SVD at rank 32 (784 -> 32 -> 300) stays within 0.5 points of
the dense model's held-out accuracy (94.2%) after fine-tuning (``recipes/lenet300-svd.yaml``).

    PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/lowrank_lenet300_svd.py [--ranks 8 16 32 64]

For each rank: the accuracy right after the factorization (no training), after the recipe's fine-tuning (3 epochs,
Adam 1e-3, cosine: the recipe's own ``finetune`` section, rank replaced), the parameters and the bytes of the packed
file. The file is unpacked and checked to give bit-identical outputs. Accuracy is on the 1,000 held-out MNIST-5k
digits (the fine-tuning uses the training split only).
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from pathlib import Path

import torch

from modelpress import zoo
from modelpress.pack import unpack
from modelpress.recipe import load_recipe
from modelpress.recipe.registry import StageContext, apply_stage
from modelpress.recipe.run import run
from modelpress.tasks.mnist import mnist5k

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[8, 16, 32, 64])
    args = parser.parse_args()
    torch.set_num_threads(2)
    task = mnist5k()
    recipe = load_recipe(ROOT / "recipes" / "lenet300-svd.yaml")
    original = zoo.load("lenet300", task).eval()
    print(f"dense: accuracy {task.evaluate(original)['accuracy']:.4f}, params "
          f"{sum(p.numel() for p in original.parameters()):,}; torch {torch.__version__}")
    print("rank | params fc1 | params model | file bytes | acc no fine-tune | acc fine-tuned | round trip")
    for rank in args.ranks:
        stage = recipe.stages[0].model_copy(update={"rank": rank})
        raw = apply_stage(copy.deepcopy(original), stage.model_copy(update={"finetune": None}), StageContext())
        raw_acc = task.evaluate(raw)["accuracy"]
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "m.mpz"
            result = run(recipe.model_copy(update={"stages": (stage,)}), copy.deepcopy(original), task, out=out,
                         quiet=True)
            x = task.example_inputs(64)[0]
            model = result.model.eval()
            same = torch.equal(model(x), unpack(out).eval()(x))
        last = result.history.rows[-1]
        fc1 = last.notes["layers"]["fc1"]["params_after"]
        print(f"{rank:4d} | {fc1:10,} | {last.params:12,} | {last.file_bytes:10,} | {raw_acc:16.4f} | "
              f"{last.metrics['accuracy']:14.4f} | {'bit-identical' if same else 'DIFFERS'}")


if __name__ == "__main__":
    main()
