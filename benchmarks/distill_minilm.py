"""Claim: a 3-layer MiniLM student, initialized from every other layer of all-MiniLM-L6-v2 (layers 1, 3, 5) and
distilled on the ``sentences`` task's training part, reaches a mean cosine >= 0.93 to the 6-layer teacher's
embeddings on the held-out part, within 20 minutes on this machine (2 shared cores).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/distill_minilm.py [--recipe recipes/minilm-distill-3layer.yaml]
        [--extra-train all|N] [--evaluate-on held-out|validation]

``--extra-train all`` distils on the ``sentences-large`` training part (the 1,419 training sentences plus the
corpus's other 3,807 training-hash sentences; same 581 held-out sentences); ``--evaluate-on validation`` scores on
sentences disjoint from both (for choosing settings).

Runs the recipe through ``modelpress.run`` on ``zoo:minilm`` (the ``distill`` stage: cosine loss to the teacher's
sentence embeddings plus per-token hidden-state hints from the teacher layer each student layer was copied from,
the teacher running on each batch; word/position embeddings frozen; 16 epochs), prints the History rows (held-out
fidelity, params, file bytes, the stage's wall time), then packs the student, unpacks it (rebuilt from its factory
``modelpress.distill.students:minilm_layers`` with ``layers: [1, 3, 5]``) and checks the outputs are identical.
The untrained 3-layer student (same layers, no distillation) is evaluated too, for the gain.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch

from modelpress import unpack
from modelpress.distill.students import minilm_layers
from modelpress.recipe import run
from modelpress.tasks.sentences import SentencesTask
from modelpress.zoo.minilm import load_minilm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/minilm-distill-3layer.yaml")
    parser.add_argument("--extra-train", default="0", help="extra training-hash sentences: a number or 'all'")
    parser.add_argument("--evaluate-on", default="held-out", choices=["held-out", "validation"])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    extra = None if args.extra_train == "all" else int(args.extra_train)
    task = SentencesTask(quiet=True, extra_train=extra, evaluate_on=args.evaluate_on)
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} {platform.machine()} torch {torch.__version__} threads {args.threads}; "
          f"recipe {args.recipe}; sentences {task.describe()['train']} train / {task.describe()['held_out']} "
          f"{args.evaluate_on}")
    untrained = task.evaluate(minilm_layers([1, 3, 5]))
    print("untrained 3-layer student: " + ", ".join(f"{k} {v:.4f}" for k, v in untrained.items()), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "minilm3.mpz"
        result = run(args.recipe, load_minilm(), task, out=out, quiet=True)
        for row in result.history.rows:
            metrics = ", ".join(f"{k} {v:.4f}" for k, v in row.metrics.items())
            print(f"{row.stage:>18}: params {row.params:,}, file {row.file_bytes:,} B, {metrics}, "
                  f"stage wall time {row.wall_time_s / 60:.1f} min", flush=True)
        restored = unpack(out)
        inputs = task.example_inputs(4)
        same = torch.equal(restored(*inputs), result.model(*inputs))
        print(f"unpacked file ({out.stat().st_size:,} B) reproduces the student's outputs exactly: {same}")
    final = result.history.rows[-1]
    print(f"mean cosine {final.metrics['mean_cosine']:.4f} (target >= 0.93) in {final.wall_time_s / 60:.1f} min "
          f"(target <= 20)")


if __name__ == "__main__":
    main()
