"""Claim (MNIST-5k): LeNet-5 pruned to 97% sparsity recovers more when its fine-tuning distils from the dense model
(``finetune: {distill: ...}``, teacher = the run's original model) than when it fine-tunes on the labels alone.

    # the scarce-data setting (session 3): fine-tune on 1,000 of the training digits; stream, epochs, T and alpha
    # chosen on validation
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/distill_pruned_kd.py --train-digits 1000 --epochs 40 80 \
        --augment none mild --grid 2,0.5 2,0.9 4,0.5 4,0.9 --threads 1
    # session 5: the KD arm with FitNets feature hints from the dense model (each layer's MSE divided by the teacher
    # feature's mean square); validation grids (one process per stream / layer set), then the chosen setting
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/distill_pruned_kd.py --train-digits 1000 --epochs 40 80 \
        --augment none --grid 4,0.5 --hints conv1,conv2,fc1,fc2 --hint-weight 0.1 1 10 --threads 1 --validate-only
    #   ... the same with --augment mild; then --epochs 80 --augment mild --hints conv2 (and fc1) --hint-weight 0.1 1
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/distill_pruned_kd.py --train-digits 1000 --chosen mild,80,4,0.5,1 \
        --hints conv2 --seeds 0 1 2 --threads 1
    # session 8: scarcer fine-tuning data (250 and 500 digits; the dense model still learned from all 4,000)
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/distill_pruned_kd.py --train-digits 250 --epochs 80 240 \
        --augment none mild mild-mixup0.2 mild-mixup1 --grid 4,0.5 4,0.9 2,0.5 4,1 --threads 1 --validate-only
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/distill_pruned_kd.py --train-digits 250 \
        --chosen mild-mixup1,240,4,0.5 --labels-chosen mild-mixup0.2,240 --seeds 0 1 2 3 4 5 --threads 1
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/distill_pruned_kd.py --train-digits 500 --epochs 80 240 \
        --augment none mild-mixup0.2 mild-mixup1 --grid 4,0.5 4,0.9 4,1 --threads 1 --validate-only
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/distill_pruned_kd.py --train-digits 500 \
        --chosen mild-mixup0.2,240,4,0.5 --labels-chosen mild-mixup0.2,240 --seeds 0 1 2 3 4 5 --threads 1
    # all 4,000 training digits (sessions 1 and 2)
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/distill_pruned_kd.py [--seeds 0 1 2] [--epochs 3] [--augment mild]

Both arms run the same one-stage recipe through ``modelpress.run`` from the zoo's LeNet-5 (trained on all 4,000
training digits): one-shot global magnitude pruning of 97.15% of the conv and fc weights (97.02% of all parameters,
as recipes/lenet5-prune97.yaml), then the same fine-tuning (Adam, cosine, lr 1e-3, batch 64, same epochs, data
order and stream; the mask keeper holds the zeros):

* labels: ``finetune: {epochs: E, lr: 1e-3}``;
* KD: the same plus ``distill: {temperature: T, alpha: a}``;
* with ``--hints L1,L2,..``, the KD arm also gets ``hints:`` pairing each named layer of the pruned model with the same
  layer of the dense one (unstructured pruning keeps every width: no adapter), FitNets feature MSE at weight
  ``w / ms(L)``, where ``ms(L)`` is the mean square of the teacher's ``L`` output on the fine-tuning digits (so ``w``
  weighs every layer's *relative* error alike: the raw MSE scales differ by orders of magnitude between layers; the
  teacher labels only training digits). The ``--hint-weight`` values ``w`` are part of the validation grid (0: no
  hints).

``--train-digits N``: both arms fine-tune on the same stratified N training digits (``train_subset`` of
distill_kd_mnist.py). ``--augment``: the run's task is ``TransferTask(task, AUGMENT[...])``, so both arms see the
same randomly shifted/rotated/zoomed digits; evaluation is unperturbed. Several ``--augment``/``--epochs`` values and
the ``--grid`` of (T, alpha) are scored on a validation split carved from the training digits (seed 0), never on the
held-out digits; the best KD setting is run with every seed, with the labels arm on the same stream and epochs (and
labels at its own best validation setting too, if that differs). Validation split: without ``--train-digits``,
3,000 / 1,000 of the training digits (seed 1234); with it, the same N digits and 1,000 of the other training digits.
With ``--train-digits`` the model pruned for validation is, by default (``--validation-teacher retrained``), a LeNet-5
trained by the zoo's recipe on every training digit except the validation ones, since the zoo LeNet-5 was trained on
them. The recipe seed is the benchmark seed (data order). Accuracy on the 1,000 held-out digits; mean +- sample std.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from modelpress import zoo
from modelpress.distill.transfer import AugmentConfig, TransferTask
from modelpress.recipe import parse_recipe, run
from modelpress.task import ClassificationTask, Task
from modelpress.tasks.mnist import mnist5k

sys.path.insert(0, str(Path(__file__).parent))
from distill_kd_mnist import AUGMENT, train_subset  # the same perturbations and stratified subset

SPARSITY = 0.9715
GRID = ((1.0, 0.5), (2.0, 0.5), (4.0, 0.5), (2.0, 0.9), (4.0, 0.9))  # (temperature, alpha)


def validation_task(task: ClassificationTask, digits: int | None = None) -> ClassificationTask:
    """Training digits only, for choosing settings without the held-out digits (split seed 1234).

    ``digits`` None: the 4,000 training digits split 3,000 / 1,000. Else: fine-tune on the same stratified ``digits``
    the held-out run uses (``train_subset``) and validate on 1,000 of the other training digits.
    """
    if digits is None:
        order = torch.randperm(len(task.x_train), generator=torch.Generator().manual_seed(1234))
        fit_idx, val_idx = order[:3000], order[3000:]
        return ClassificationTask("mnist5k-validation", task.x_train[fit_idx], task.y_train[fit_idx],
                                  task.x_train[val_idx], task.y_train[val_idx], num_classes=task.num_classes)
    from sklearn.model_selection import train_test_split

    # the same call as train_subset (same stratified digits); validate on 1,000 of the digits it leaves out
    fit_idx, rest = train_test_split(torch.arange(len(task.x_train)).numpy(), train_size=digits,
                                     stratify=task.y_train.numpy(), random_state=1234)
    rest = torch.from_numpy(rest)
    val_idx = rest[torch.randperm(len(rest), generator=torch.Generator().manual_seed(1234))[:1000]]
    subset = train_subset(task, digits)
    assert torch.equal(subset.x_train, task.x_train[torch.from_numpy(fit_idx)])
    return ClassificationTask(f"mnist5k-train{digits}-validation", subset.x_train, subset.y_train,
                              task.x_train[val_idx], task.y_train[val_idx], num_classes=task.num_classes)


def validation_teacher(task: ClassificationTask, val: ClassificationTask) -> torch.nn.Module:
    """LeNet-5 trained by the zoo's recipe on every training digit except ``val``'s validation digits.

    The zoo LeNet-5 was trained on the validation digits too; a model pruned from it starts out knowing them. This
    one does not, so it stands to the validation digits as the zoo model stands to the held-out digits.
    """
    kept = [i for i, row in enumerate(task.x_train.flatten(1)) if not (val.x_test.flatten(1) == row).all(1).any()]
    assert len(kept) == len(task.x_train) - len(val.x_test)
    fit_task = ClassificationTask(f"mnist5k-without-validation{len(val.x_test)}", task.x_train[kept],
                                  task.y_train[kept], val.x_test, val.y_test, num_classes=task.num_classes)
    return zoo.load("lenet5", fit_task)


def feature_scales(model: torch.nn.Module, x: torch.Tensor, layers: list[str]) -> dict[str, float]:
    """Mean square of each named layer's output of ``model`` on the inputs ``x`` ``[N, 1, 28, 28]`` (hint
    normalizers).

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
        >>> with torch.no_grad():
        ...     _ = net[1].weight.fill_(1.0), net[1].bias.zero_()
        >>> feature_scales(net, torch.ones(3, 1, 2, 2), ["1"])
        {'1': 16.0}
    """
    if not layers:
        return {}
    modules = dict(model.named_modules())
    sums = dict.fromkeys(layers, 0.0)  # sum over examples of each example's mean square
    handles = [modules[name].register_forward_hook(
        lambda _m, _i, out, name=name: sums.__setitem__(name, sums[name] + float(out.double().pow(2).flatten(1)
                                                                                   .mean(1).sum())))
        for name in layers]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in x.split(256):
                model(batch)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return {name: total / len(x) for name, total in sums.items()}


def kd_section(base: dict, temperature: float, alpha: float, hint_weight: float,
               scales: dict[str, float]) -> dict:
    """The KD arm's ``finetune`` section: ``base`` plus distillation, plus a hint on every layer of ``scales`` at
    weight ``hint_weight / scale`` when ``hint_weight`` > 0.

    Example:
        >>> kd_section({"epochs": 1}, 4.0, 0.5, 2.0, {"conv2": 4.0})["hints"]
        [{'student': 'conv2', 'teacher': 'conv2', 'weight': 0.5}]
    """
    section = {**base, "distill": {"temperature": temperature, "alpha": alpha}}
    if hint_weight > 0 and scales:
        section["hints"] = [{"student": name, "teacher": name, "weight": hint_weight / scale}
                            for name, scale in scales.items()]
    return section


def accuracy(task: Task, finetune: dict, seed: int, dense: torch.nn.Module) -> tuple[float, float]:
    """Held-out accuracy and parameter sparsity after pruning a copy of ``dense`` and fine-tuning as ``finetune``
    says."""
    recipe = parse_recipe({"name": "bench", "seed": seed, "measure": {"runs": 3, "warmup": 1}, "stages": [
        {"type": "prune", "sparsity": SPARSITY, "scope": "global", "finetune": finetune}]})
    result = run(recipe, copy.deepcopy(dense), task, quiet=True)
    params = list(result.model.parameters())
    sparsity = sum(int((p == 0).sum()) for p in params) / sum(p.numel() for p in params)
    return result.history.rows[-1].metrics["accuracy"], sparsity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=float, nargs="+", default=[3], help="several: chosen on validation")
    parser.add_argument("--augment", choices=["none", *sorted(AUGMENT)], nargs="+", default=["none"],
                        help="streams to choose from on validation (both arms train on the chosen one)")
    parser.add_argument("--train-digits", type=int, default=None,
                        help="fine-tune on a stratified subset this big (the scarce-data setting)")
    parser.add_argument("--validation-teacher", choices=["dense", "retrained"], default="retrained",
                        help="model pruned for validation: the zoo LeNet-5 (trained on the validation digits too) or "
                        "LeNet-5 trained by the same recipe without them (only with --train-digits)")
    parser.add_argument("--chosen", default=None, help="augment,epochs,T,alpha[,hint weight] chosen by an earlier "
                        "validation run: skip validation (e.g. to add seeds)")
    parser.add_argument("--labels-chosen", default=None, help="with --chosen: augment,epochs of the labels arm's own "
                        "best validation setting, if it differs from the KD setting's")
    parser.add_argument("--validate-only", action="store_true", help="stop after the validation grid and the choice "
                        "(e.g. to split a grid over processes)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--grid", nargs="+", default=[f"{t:g},{a:g}" for t, a in GRID], help="T,alpha pairs")
    parser.add_argument("--hints", default=None, help="comma-separated LeNet-5 layers (conv1, conv2, fc1, fc2) whose "
                        "outputs the KD arm matches to the dense model's (FitNets hints); default: none")
    parser.add_argument("--hint-weight", type=float, nargs="+", default=[1.0], help="with --hints: weights w of the "
                        "normalized hint MSE (each layer's MSE / teacher mean square), chosen on validation; 0: none")
    args = parser.parse_args()
    grid = [tuple(float(v) for v in pair.split(",")) for pair in args.grid]
    layers = args.hints.split(",") if args.hints else []
    hint_weights = args.hint_weight if layers else [0.0]
    torch.set_num_threads(args.threads)
    plain = mnist5k()

    def wrap(task: ClassificationTask, augment: str) -> Task:
        return task if augment == "none" else TransferTask(task, AugmentConfig(**AUGMENT[augment]))

    dense = zoo.load("lenet5", plain)
    subset = train_subset(plain, args.train_digits)
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} {platform.machine()} torch {torch.__version__} "
          f"threads {args.threads}; LeNet-5 dense {plain.evaluate(dense)['accuracy']:.4f}; one-shot global magnitude "
          f"{SPARSITY}; fine-tune on {len(subset.x_train)} training digits, lr 1e-3, batch 64", flush=True)
    label_scores: dict[tuple, float] = {}
    if args.chosen is not None:
        augment, epochs_text, temperature_text, alpha_text, *weight_text = args.chosen.split(",")
        epochs, temperature, alpha = float(epochs_text), float(temperature_text), float(alpha_text)
        hint_weight = float(weight_text[0]) if weight_text and layers else 0.0
        label_scores[(augment, epochs)] = 0.0  # no validation: the labels arm uses the chosen stream and epochs
        if args.labels_chosen is not None:  # and its own best validation setting, given
            label_augment, label_epochs = args.labels_chosen.split(",")
            label_scores[(label_augment, float(label_epochs))] = 1.0
    else:
        val = validation_task(plain, args.train_digits)
        val_dense = dense
        if args.train_digits is not None and args.validation_teacher == "retrained":
            val_dense = validation_teacher(plain, val)
            print(f"validation teacher: LeNet-5 trained without the validation digits, validation accuracy "
                  f"{val.evaluate(val_dense)['accuracy']:.4f}", flush=True)
        val_scales = feature_scales(val_dense, val.x_train, layers)
        if layers:
            print("hint normalizers (validation teacher's mean square on the fine-tuning digits): "
                  + ", ".join(f"{name} {scale:.4g}" for name, scale in val_scales.items()), flush=True)
        kd_scores: dict[tuple, float] = {}
        for augment in args.augment:
            for epochs in args.epochs:
                base = {"epochs": epochs, "lr": 1e-3, "batch_size": 64}
                label_scores[(augment, epochs)] = accuracy(wrap(val, augment), base, 0, val_dense)[0]
                print(f"validation augment={augment} epochs={epochs:g} labels: {label_scores[(augment, epochs)]:.4f}",
                      flush=True)
                for temperature, alpha in grid:
                    for weight in hint_weights:
                        section = kd_section(base, temperature, alpha, weight, val_scales)
                        key = (augment, epochs, temperature, alpha, weight)
                        kd_scores[key] = accuracy(wrap(val, augment), section, 0, val_dense)[0]
                        hint_text = f" hints={args.hints} w={weight:g}" if layers else ""
                        print(f"validation augment={augment} epochs={epochs:g} T={temperature:g} alpha={alpha:g}"
                              f"{hint_text}: {kd_scores[key]:.4f}", flush=True)
        augment, epochs, temperature, alpha, hint_weight = max(kd_scores, key=kd_scores.__getitem__)
    base = {"epochs": epochs, "lr": 1e-3, "batch_size": 64}
    label_best = max(label_scores, key=label_scores.__getitem__)
    scales = feature_scales(dense, subset.x_train, layers)  # the dense model's, on the digits the arms fine-tune on
    hint_text = ""
    if layers:
        hint_text = f", hints {args.hints} w={hint_weight:g}"
        print("hint normalizers (dense model's mean square on the fine-tuning digits): "
              + ", ".join(f"{name} {scale:.4g}" for name, scale in scales.items()))
    print(f"chosen (best KD on validation): augment={augment}, epochs={epochs:g}, T={temperature:g}, alpha={alpha:g}"
          f"{hint_text}; best labels setting on validation: augment={label_best[0]}, epochs={label_best[1]:g}")
    if args.validate_only:
        return
    arms = {"labels": (augment, base),
            "KD from dense": (augment, kd_section(base, temperature, alpha, hint_weight, scales))}
    if label_best != (augment, epochs):  # labels at its own best validation setting too, so KD is not flattered
        arms["labels (own best)"] = (label_best[0], {"epochs": label_best[1], "lr": 1e-3, "batch_size": 64})
    results: dict[str, list[float]] = {name: [] for name in arms}
    for seed in args.seeds:
        row = []
        for name, (stream, section) in arms.items():
            acc, sparsity = accuracy(wrap(subset, stream), section, seed, dense)
            results[name].append(acc)
            row.append(f"{name} {acc:.4f} (sparsity {sparsity:.4f})")
        print(f"seed {seed}: " + ", ".join(row), flush=True)
    for name, values in results.items():
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{name:>17}: {statistics.mean(values):.4f} +- {std:.4f}")
    for name in (n for n in results if n.startswith("labels")):
        gain = statistics.mean(results["KD from dense"]) - statistics.mean(results[name])
        wins = sum(k > v for k, v in zip(results["KD from dense"], results[name], strict=True))
        print(f"KD - {name}: {100 * gain:+.2f} points, better in {wins}/{len(args.seeds)} seeds")


if __name__ == "__main__":
    main()
