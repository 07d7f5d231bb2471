"""The sentence-embedding task: how faithfully a (compressed) encoder reproduces all-MiniLM-L6-v2.

Data: the standard-library docstring corpus (:mod:`modelpress.tasks.corpus`), split by hash into a training part
(fine-tuning, distillation, calibration) and a held-out part (evaluation only). Inputs are
``(input_ids, attention_mask)`` int64 ``[B, T]`` from the MiniLM tokenizer, at most 128 tokens. Targets are the
original MiniLM's embeddings ``[B, 384]``, computed once and cached as a safetensors file keyed by the corpus, the
split and the weights file. :meth:`SentencesTask.evaluate` compares a model's held-out embeddings with the
reference ones (see :func:`fidelity_metrics`).

Example:
    >>> from modelpress.zoo.minilm import load_minilm
    >>> task = SentencesTask(quiet=True)
    >>> [tuple(t.shape) for t in task.example_inputs(4)]
    [(4, 128), (4, 128)]
    >>> metrics = task.evaluate(load_minilm())
    >>> round(metrics["mean_cosine"], 6), round(metrics["spearman"], 6), metrics["nn_agreement"]
    (1.0, 1.0, 1.0)
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from modelpress.atomic import atomic_path
from modelpress.cache import cache_dir
from modelpress.errors import TaskError
from modelpress.progress import progress_bar
from modelpress.task import Batch, Task, check_model_runs
from modelpress.tasks.corpus import build_corpus, corpus_digest, split_corpus
from modelpress.tasks.transfer_corpus import transfer_sentences
from modelpress.zoo.minilm import load_minilm, load_tokenizer, minilm_weights_digest

__all__ = ["SentencesTask", "fidelity_metrics"]

# Bump when the way reference embeddings are computed changes, so old cache files are not reused.
_CACHE_VERSION = "1"
_REFERENCE_NAME = "all-MiniLM-L6-v2"


def fidelity_metrics(embeddings: Tensor, reference: Tensor) -> dict[str, float]:
    """How closely embeddings ``[N, D]`` reproduce reference embeddings ``[N, D]`` of the same N sentences.

    * ``mean_cosine`` / ``min_cosine``: mean and worst per-sentence cosine between the two embeddings;
    * ``spearman``: Spearman rank correlation between the upper triangles (i < j) of the two pairwise
      cosine-similarity matrices, i.e. whether the model ranks sentence pairs by similarity as the reference does
      (0.0 when the model's similarities are all equal, e.g. constant outputs: no ranking at all);
    * ``nn_agreement``: fraction of sentences whose nearest other sentence is the same under both.

    Computed in float64 so a model compared with itself scores 1.0 to ~1e-12.

    Example:
        >>> ref = torch.nn.functional.normalize(torch.randn(50, 8, generator=torch.Generator().manual_seed(0)))
        >>> {k: round(v, 6) for k, v in fidelity_metrics(ref, ref).items()}
        {'mean_cosine': 1.0, 'min_cosine': 1.0, 'spearman': 1.0, 'nn_agreement': 1.0}
    """
    from scipy.stats import spearmanr  # scipy.stats takes ~0.5 s to import; only evaluation needs it

    if embeddings.dim() != 2 or embeddings.shape != reference.shape or len(embeddings) < 2:
        raise TaskError("fidelity_metrics", f"[N, D] embeddings with N >= 2, shaped like the reference "
                        f"{list(reference.shape)}", f"<{list(embeddings.shape)}>",
                        "pass the model's and the reference's embeddings of the same sentences")
    a = nn.functional.normalize(embeddings.detach().double(), dim=1)  # [N, D] unit rows (zero rows stay zero)
    b = nn.functional.normalize(reference.detach().double(), dim=1)
    cosine = (a * b).sum(dim=1)  # [N]
    sim_a, sim_b = a @ a.T, b @ b.T  # [N, N] pairwise cosine similarities
    rows, cols = torch.triu_indices(len(a), len(a), offset=1)  # each unordered pair once
    with warnings.catch_warnings():  # constant input warns and gives NaN, handled just below
        warnings.simplefilter("ignore")
        rho = float(spearmanr(sim_a[rows, cols].numpy(), sim_b[rows, cols].numpy()).statistic)
    if rho != rho and bool(torch.isfinite(sim_a).all()):  # NaN from finite input: constant similarities
        rho = 0.0
    eye = torch.eye(len(a), dtype=torch.bool)
    nearest_a = sim_a.masked_fill(eye, float("-inf")).argmax(dim=1)  # [N]: a sentence is not its own neighbour
    nearest_b = sim_b.masked_fill(eye, float("-inf")).argmax(dim=1)
    return {
        "mean_cosine": float(cosine.mean()),
        "min_cosine": float(cosine.min()),
        "spearman": rho,
        "nn_agreement": float((nearest_a == nearest_b).double().mean()),
    }


def _pad(sequences: Sequence[list[int]], length: int, pad_id: int) -> tuple[Tensor, Tensor]:
    # -> input_ids [B, length] int64 (pad_id after each sentence), attention_mask [B, length] int64 (1 = real token)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, :len(seq)] = 1
    return ids, mask


class SentencesTask(Task):
    """Fidelity of sentence embeddings to all-MiniLM-L6-v2 on standard-library docstring sentences.

    ``cache_dir`` holds the reference embeddings (default :func:`modelpress.cache.cache_dir`). ``corpus_size``
    sentences are split about ``1 - held_out_fraction`` / ``held_out_fraction`` (1,419 / 581 by default).
    Sentences are truncated to ``max_length`` tokens. The first use of the reference embeddings on a machine
    embeds the corpus with MiniLM (about 10 s on 2 idle CPU cores); later uses read the cache file.

    The rest of the corpus (sentences after the first ``corpus_size`` in hash order, about 5,460) is never
    evaluated by default. Distillation only needs the teacher's embeddings, so ``extra_train`` adds up to that
    many of its *training-hash* sentences to the training part (``None``: all 3,807) while the held-out part stays
    the same 581 sentences, so figures stay comparable. ``evaluate_on="validation"`` scores on the rest's
    *held-out-hash* sentences instead (up to ``held_out`` of them; 1,655 exist), a validation set for choosing
    settings that is disjoint from both the training part and the held-out part. ``transfer`` adds that many of
    the standard library's other sentences (:mod:`modelpress.tasks.transfer_corpus`: comments, code-bearing
    docstring sentences, the reference manual; ``None``: all 19,027), none of them in any scored part. ``bucket``
    batches sentences of similar length together (each still once per epoch), which cuts padding on mixed lengths.

    Example:
        >>> task = SentencesTask(quiet=True)
        >>> task.describe()["train"], task.describe()["held_out"]
        (1419, 581)
        >>> large = SentencesTask(extra_train=None, quiet=True)
        >>> large.describe()["train"], large.held_out_sentences == task.held_out_sentences
        (5226, True)
        >>> SentencesTask(extra_train=None, transfer=None, quiet=True).describe()["train"]
        24253
        >>> validation = SentencesTask(evaluate_on="validation", quiet=True)
        >>> len(validation.held_out_sentences), set(validation.held_out_sentences).isdisjoint(task.held_out_sentences)
        (581, True)
    """

    name = "sentences"
    primary_metric = "mean_cosine"
    higher_is_better = True

    def __init__(self, cache_dir: Path | None = None, corpus_size: int = 2000, held_out_fraction: float = 0.3,
                 max_length: int = 128, eval_batch_size: int = 64, quiet: bool = False, extra_train: int | None = 0,
                 evaluate_on: str = "held-out", transfer: int | None = 0, bucket: bool = False) -> None:
        if max_length < 2 or eval_batch_size < 1:
            raise TaskError("SentencesTask", "max_length >= 2 and eval_batch_size >= 1",
                            f"<max_length={max_length}, eval_batch_size={eval_batch_size}>", "use 128 and 64")
        if extra_train is not None and extra_train < 0:
            raise TaskError("SentencesTask extra_train", "a number of sentences >= 0, or None for all of them",
                            extra_train, "use 0 (the default), 3000, or None")
        if transfer is not None and transfer < 0:
            raise TaskError("SentencesTask transfer", "a number of sentences >= 0, or None for all of them",
                            transfer, "use 0 (the default), 5000, or None")
        if evaluate_on not in ("held-out", "validation"):
            raise TaskError("SentencesTask evaluate_on", "'held-out' or 'validation'", evaluate_on,
                            "use 'validation' to choose settings, 'held-out' to report")
        sentences = build_corpus(min_sentences=min(1500, corpus_size), max_sentences=corpus_size)
        self.train_sentences, self.held_out_sentences = split_corpus(sentences, held_out_fraction)
        if len(self.held_out_sentences) < 2 or not self.train_sentences:
            raise TaskError("SentencesTask", "at least 2 held-out and 1 training sentence",
                            f"<{len(self.train_sentences)} train, {len(self.held_out_sentences)} held out>",
                            "raise corpus_size or use a held_out_fraction near 0.3")
        digest_parts = list(sentences)
        if extra_train != 0 or evaluate_on == "validation":
            # the rest of the corpus, split by the same hash: its training-hash sentences can extend the training
            # part, its held-out-hash ones form the validation set; neither overlaps the held-out part above
            rest_train, rest_held_out = split_corpus(build_corpus(max_sentences=None)[corpus_size:],
                                                     held_out_fraction)
            self.train_sentences += rest_train[:extra_train]
            if evaluate_on == "validation":
                self.held_out_sentences = rest_held_out[:len(self.held_out_sentences)]
            # a different corpus part -> a different cache key and a different digest in reports
            digest_parts += [f"\x00extra_train={extra_train}", f"\x00evaluate_on={evaluate_on}"]
        if transfer != 0:
            # unlabeled standard-library text outside the evaluation corpus (no part of it is ever scored)
            extra = transfer_sentences()[:transfer]
            self.train_sentences += extra
            digest_parts += [f"\x00transfer={transfer}", *extra]
        self.evaluate_on = evaluate_on
        self.bucket = bucket
        self.cache_dir = cache_dir
        self.held_out_fraction = held_out_fraction
        self.max_length = max_length
        self.eval_batch_size = eval_batch_size
        self.quiet = quiet
        self.corpus_sha256 = corpus_digest(digest_parts)
        tokenizer = load_tokenizer()
        self.pad_id = int(tokenizer.pad_token_id)
        # token id lists, [CLS] ... [SEP], each at most max_length long; padding happens per batch
        self.train_tokens: list[list[int]] = tokenizer(self.train_sentences, truncation=True,
                                                       max_length=max_length)["input_ids"]
        self.held_out_tokens: list[list[int]] = tokenizer(self.held_out_sentences, truncation=True,
                                                          max_length=max_length)["input_ids"]
        self._reference: tuple[Tensor, Tensor] | None = None

    # ----------------------------------------------------------------------------------------- reference embeddings

    def cache_path(self) -> Path:
        """The safetensors file of the reference embeddings, named by a hash of corpus, split, weights and length."""
        key = "|".join([_CACHE_VERSION, self.corpus_sha256, f"{self.held_out_fraction!r}", minilm_weights_digest(),
                        str(self.max_length)])
        directory = cache_dir() if self.cache_dir is None else Path(self.cache_dir)
        return directory / f"sentences-minilm-{hashlib.sha256(key.encode()).hexdigest()[:24]}.safetensors"

    def reference_embeddings(self) -> tuple[Tensor, Tensor]:
        """MiniLM's embeddings ``([N_train, 384], [N_held_out, 384])``: from the cache file, else computed and cached.

        A cache file that is unreadable or of the wrong shape is recomputed and replaced.
        """
        if self._reference is None:
            path = self.cache_path()
            self._reference = self._read_cache(path)
            if self._reference is None:
                self._reference = self._compute_reference()
                self._write_cache(path, *self._reference)
        return self._reference

    def _read_cache(self, path: Path) -> tuple[Tensor, Tensor] | None:
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as f:
                train, held_out = f.get_tensor("train"), f.get_tensor("held_out")
        except (SafetensorError, OSError, KeyError, ValueError):
            return None
        expected = [(len(self.train_tokens), train.shape[-1]), (len(self.held_out_tokens), train.shape[-1])]
        if [tuple(train.shape), tuple(held_out.shape)] != expected or train.dtype != torch.float32:
            return None
        return train, held_out

    def _write_cache(self, path: Path, train: Tensor, held_out: Tensor) -> None:
        metadata = {"reference": _REFERENCE_NAME, "corpus_sha256": self.corpus_sha256,
                    "weights_sha256": minilm_weights_digest(), "max_length": str(self.max_length),
                    "held_out_fraction": repr(self.held_out_fraction), "version": _CACHE_VERSION}
        try:
            with atomic_path(path) as tmp:
                save_file({"train": train.contiguous(), "held_out": held_out.contiguous()}, str(tmp), metadata)
        except OSError as e:  # an unwritable cache costs time on the next run, not correctness now
            warnings.warn(f"reference embeddings not cached at {path}: {e}", stacklevel=3)

    def _compute_reference(self) -> tuple[Tensor, Tensor]:
        model = load_minilm()
        total = len(self.train_tokens) + len(self.held_out_tokens)
        with progress_bar(f"embed corpus with {_REFERENCE_NAME}", total=total, quiet=self.quiet) as advance:
            # each part embedded with the exact batching evaluate() uses, so the reference model scores 1.0 bit-exactly
            train = self._embed(model, self.train_tokens, advance)
            held_out = self._embed(model, self.held_out_tokens, advance)
        return train, held_out

    # ------------------------------------------------------------------------------------------------- embedding

    def _embed(self, model: nn.Module, tokens: Sequence[list[int]], advance: Callable[..., None]) -> Tensor:
        """Embeddings ``[N, D]`` float32 of token lists in their given order, in eval mode and inference mode."""
        # sorted by length (ties by position, for a fixed order) so each batch pads to a similar length
        order = sorted(range(len(tokens)), key=lambda i: (len(tokens[i]), i))
        parts: list[Tensor] = []  # [b, D] per batch, in sorted order
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                for start in range(0, len(order), self.eval_batch_size):
                    batch = [tokens[i] for i in order[start:start + self.eval_batch_size]]
                    out = model(*_pad(batch, max(len(t) for t in batch), self.pad_id))
                    if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != len(batch):
                        shape = list(out.shape) if isinstance(out, Tensor) else type(out).__name__
                        raise TaskError(f"model on task {self.name!r}", f"one embedding tensor [{len(batch)}, D]",
                                        f"<{shape}>", "wrap a Hugging Face model with "
                                        "modelpress.zoo.minilm.SentenceEncoder or load_hf_directory")
                    parts.append(out.float())
                    advance(len(batch))
        finally:
            model.train(was_training)
        in_sorted_order = torch.cat(parts)  # [N, D]
        result = torch.empty_like(in_sorted_order)
        result[torch.tensor(order)] = in_sorted_order  # back to the given order
        return result

    # ------------------------------------------------------------------------------------------------ Task API

    def example_inputs(self, batch_size: int = 1) -> tuple[Tensor, ...]:
        """Held-out sentences (repeated if needed) padded to exactly ``max_length``: two int64 ``[B, 128]``."""
        batch = [self.held_out_tokens[i % len(self.held_out_tokens)] for i in range(batch_size)]
        return _pad(batch, self.max_length, self.pad_id)

    def train_batches(self, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        """One shuffled epoch: ``((input_ids, attention_mask), reference [B, 384])``, padded to the batch's longest."""
        train_reference, _ = self.reference_embeddings()
        order = torch.randperm(len(self.train_tokens), generator=generator)
        if self.bucket:
            batches = self._bucketed(order, batch_size, generator)
        else:
            batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
        for idx in batches:
            batch = [self.train_tokens[i] for i in idx.tolist()]
            yield _pad(batch, max(len(t) for t in batch), self.pad_id), train_reference[idx]

    def _bucketed(self, order: Tensor, batch_size: int, generator: torch.Generator) -> list[Tensor]:
        """Batches of similar length: the shuffled ``order`` cut into chunks of 64 batches, each chunk sorted by
        token count (stable), cut into batches, and the batches shuffled. Every sentence once, as without it; with
        random batches a batch pads to its longest sentence (2.75x the real tokens on sentences-xl), here about
        1.04x."""
        lengths = torch.tensor([len(self.train_tokens[i]) for i in order.tolist()])  # [N], in shuffled order
        batches: list[Tensor] = []
        chunk = batch_size * 64
        for start in range(0, len(order), chunk):
            part = order[start:start + chunk]
            part = part[torch.sort(lengths[start:start + chunk], stable=True).indices]
            batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
        return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]

    def calibration_batches(self, num_batches: int = 8, batch_size: int = 64,
                            seed: int = 0) -> Iterator[tuple[Tensor, ...]]:
        """Shuffled training-part inputs only (no reference embeddings needed, so no MiniLM pass on a cold cache)."""
        order = torch.randperm(len(self.train_tokens), generator=torch.Generator().manual_seed(seed))
        for start in range(0, min(len(order), num_batches * batch_size), batch_size):
            batch = [self.train_tokens[i] for i in order[start:start + batch_size].tolist()]
            yield _pad(batch, max(len(t) for t in batch), self.pad_id)

    def num_train_examples(self) -> int:
        """Number of training sentences."""
        return len(self.train_tokens)

    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        """Mean ``1 - cosine`` between embeddings ``[B, D]`` and reference embeddings ``[B, D]``.

        No MSE term: for unit vectors ``|a - b|^2 = 2 - 2 cos(a, b)``, so it would only rescale this loss.
        """
        return (1.0 - nn.functional.cosine_similarity(outputs.float(), targets.float(), dim=1)).mean()

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """:func:`fidelity_metrics` of the model's held-out embeddings against MiniLM's."""
        check_model_runs(model, self)
        _, held_out_reference = self.reference_embeddings()
        with progress_bar(f"evaluate on {self.name}", total=len(self.held_out_tokens), quiet=self.quiet) as advance:
            embeddings = self._embed(model, self.held_out_tokens, advance)
        if embeddings.shape != held_out_reference.shape:
            raise TaskError(f"model on task {self.name!r}", f"embeddings of width {held_out_reference.shape[1]}",
                            f"<width {embeddings.shape[1]}>", "keep the encoder's output size when compressing")
        return fidelity_metrics(embeddings, held_out_reference)

    def describe(self) -> dict[str, Any]:
        """Name, metric, reference model, corpus origin and digest, split sizes, token length, batching."""
        return {**super().describe(), "reference": _REFERENCE_NAME,
                "corpus": "Python standard-library docstring sentences", "corpus_sha256": self.corpus_sha256[:16],
                "train": len(self.train_tokens), "held_out": len(self.held_out_tokens),
                "max_length": self.max_length,
                **({"evaluated_on": "validation"} if self.evaluate_on == "validation" else {}),
                **({"batches": "bucketed by length"} if self.bucket else {})}
