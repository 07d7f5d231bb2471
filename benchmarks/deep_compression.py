"""Deep Compression on LeNet-300-100 and LeNet-5 (MNIST-5k): file size against the fp32 state_dict, and accuracy.

For each recipe (default: ``recipes/deep-compression-lenet300.yaml`` and ``recipes/deep-compression-lenet5.yaml``,
prune -> fine-tune -> cluster -> fine-tune centroids; ``pack`` entropy-codes), this script

* evaluates the dense zoo model on the held-out 1,000 MNIST-5k digits;
* measures the baselines: the bytes of ``torch.save(model.state_dict())`` of the dense fp32 model (the acceptance
  baseline) and of a plain safetensors fp32 file of the same state dict;
* runs the recipe (the same code as ``modelpress compress``), writes the compressed file, then loads the model back
  from the file alone (``unpack``, as ``modelpress eval OUT`` does) and evaluates it on the held-out split;
* prints the ratio, the accuracy drop, the process CPU time of the run, and per layer: sparsity, distinct nonzero
  values, stored bytes, bits per weight and the codec chain.

Run (from the repository root; a few minutes per recipe on 2 cores):
``HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python benchmarks/deep_compression.py [--out-dir out/deep-compression]``
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import torch

from modelpress.format import describe_file
from modelpress.pack import unpack
from modelpress.recipe.run import run
from modelpress.sources import load_model
from modelpress.tasks.mnist import mnist5k

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {"lenet300": ROOT / "recipes" / "deep-compression-lenet300.yaml",
           "lenet5": ROOT / "recipes" / "deep-compression-lenet5.yaml"}


def state_dict_bytes(model: torch.nn.Module) -> tuple[int, int]:
    """Bytes of ``torch.save(model.state_dict())`` and of a safetensors fp32 file of the same tensors."""
    from safetensors.torch import save as save_safetensors

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    return len(buffer.getvalue()), len(save_safetensors(tensors))


def bench(name: str, recipe: Path, out_dir: Path, quiet: bool) -> None:
    """Run one recipe and print its figures."""
    task = mnist5k()
    dense = load_model(f"zoo:{name}", task)
    dense_accuracy = task.evaluate(dense)["accuracy"]
    torch_bytes, safetensors_bytes = state_dict_bytes(dense)
    out = out_dir / f"deep-compression-{name}.mpz"
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    result = run(recipe, load_model(f"zoo:{name}", task), task, out=out, quiet=quiet)
    cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start_wall
    file_bytes = out.stat().st_size
    restored = unpack(out)
    accuracy = task.evaluate(restored)["accuracy"]
    print(f"\n## {name}: {recipe.relative_to(ROOT)}\n")
    print(f"- dense accuracy (held-out 1,000): {dense_accuracy:.4f}")
    print(f"- fp32 state_dict, torch.save: {torch_bytes:,} bytes; plain safetensors fp32: {safetensors_bytes:,} bytes")
    print(f"- compressed file: {file_bytes:,} bytes -> {torch_bytes / file_bytes:.1f}x smaller than torch.save "
          f"({safetensors_bytes / file_bytes:.1f}x vs safetensors)")
    print(f"- accuracy of the model unpacked from the file: {accuracy:.4f} ({100 * (accuracy - dense_accuracy):+.1f} "
          f"points; the run's last History row: {result.history.rows[-1].metrics['accuracy']:.4f})")
    print(f"- run (apply, fine-tune, measure after each stage, pack): {cpu:.0f} s CPU, {wall:.0f} s wall")
    print("\n| tensor | shape | sparsity | distinct nonzero | stored bytes | bits/weight | chain |")
    print("|---|---|---:|---:|---:|---:|---|")
    state = restored.state_dict()
    for row in describe_file(out):
        tensor = state[row["name"]]
        nonzero = tensor[tensor != 0]
        print(f"| {row['name']} | {list(tensor.shape)} | {float((tensor == 0).float().mean()):.1%} | "
              f"{int(nonzero.unique().numel()):,} | {row['stored_bytes']:,} | {row['bits_per_element']:.3f} | "
              f"`{row['chain']}` |")
    total = sum(p.numel() for p in restored.parameters())
    print(f"| all | {total:,} params | | | {file_bytes:,} (file) | {8 * file_bytes / total:.3f} | |")


def main() -> None:
    """Run the selected recipes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(RECIPES), default=list(RECIPES))
    parser.add_argument("--out-dir", type=Path, default=ROOT / "out" / "deep-compression")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name in args.models:
        bench(name, RECIPES[name], args.out_dir, args.quiet)


if __name__ == "__main__":
    main()
