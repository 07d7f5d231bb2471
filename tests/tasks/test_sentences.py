"""The standard-library sentence corpus and the MiniLM fidelity task."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import modelpress.tasks.sentences as sentences_module
from modelpress.errors import TaskError
from modelpress.tasks import SentencesTask, build_corpus
from modelpress.tasks.corpus import corpus_digest, is_clean, is_held_out, split_corpus
from modelpress.tasks.sentences import fidelity_metrics
from modelpress.zoo.minilm import SentenceEncoder, load_minilm, minilm_weights_digest

# SHA-256 of the default 2,000-sentence corpus on CPython 3.11.7: the corpus is the same on every machine.
GOLDEN_CORPUS_SHA256 = "3c79ab39fde75fbc"


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return build_corpus()


@pytest.fixture(scope="module")
def task() -> SentencesTask:
    # the project's cache directory, like the zoo's trained weights: the first run embeds the corpus, later runs read
    return SentencesTask(quiet=True)


@pytest.fixture(scope="module")
def minilm() -> SentenceEncoder:
    return load_minilm()


# ------------------------------------------------------------------------------------------------------- corpus


def test_corpus_has_enough_clean_unique_sentences(corpus: list[str]) -> None:
    assert len(corpus) == 2000 >= 1500
    assert len(set(corpus)) == len(corpus)
    assert all(is_clean(s) for s in corpus)
    assert "Deep copy operation on arbitrary Python objects." in build_corpus(max_sentences=None)


def test_corpus_is_identical_in_a_fresh_process_with_another_hash_seed(corpus: list[str]) -> None:
    code = "from modelpress.tasks.corpus import build_corpus, corpus_digest; print(corpus_digest(build_corpus()))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # str hashing differs, set iteration order differs
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == corpus_digest(corpus)
    assert build_corpus() == corpus  # and twice in one process


@pytest.mark.skipif(sys.version_info[:3] != (3, 11, 7), reason="the golden corpus is CPython 3.11.7's stdlib")
def test_corpus_matches_golden_digest(corpus: list[str]) -> None:
    assert corpus_digest(corpus)[:16] == GOLDEN_CORPUS_SHA256


def test_corpus_prefix_is_stable_under_max_sentences(corpus: list[str]) -> None:
    assert build_corpus(max_sentences=1500) == corpus[:1500]


def test_clean_filter_rejects_code_and_markup() -> None:
    assert is_clean("Return the number of tasks required to trip the barrier.")
    for bad in [
        "Call os.path.join to build the full path of the file.",  # dotted name
        "Use the value of self.max_size when nothing was passed in.",  # dotted name
        "The function returns None if called with no_args at all here.",  # identifier
        ">>> Return the number of tasks required to trip it.",  # doctest
        "Set x = 3 before calling this function on the object.",  # code
        "This is a sentence without the final punctuation mark",  # no period
        "this sentence starts with a lowercase letter and ends.",  # no capital
        "Too short to count.",  # < 40 characters
        "Unix, DOS/Windows), they are most likely lists of strings to add.",  # unbalanced bracket
        "If None, there is no limit. chunksize: if greater than one, split it.",  # missed sentence split
    ]:
        assert not is_clean(bad), bad


def test_too_few_sentences_is_a_clear_error() -> None:
    with pytest.raises(TaskError, match=r"^sentence corpus: expected at least 1000000 clean sentences in the standard "
                                        r"library, got \d+\. Fix: run with a full Python installation"):
        build_corpus(min_sentences=1_000_000, max_sentences=None)


def test_split_is_disjoint_stable_and_about_30_percent(corpus: list[str]) -> None:
    train, held_out = split_corpus(corpus)
    assert set(train).isdisjoint(held_out) and sorted(train + held_out) == sorted(corpus)
    assert 0.25 < len(held_out) / len(corpus) < 0.35
    assert (train, held_out) == split_corpus(corpus)
    # a sentence's side depends on the sentence alone: splitting a subset gives the subsets of both parts
    sub_train, sub_held_out = split_corpus(corpus[:500])
    assert set(sub_train) <= set(train) and set(sub_held_out) <= set(held_out)
    assert all(is_held_out(s) for s in held_out) and not any(is_held_out(s) for s in train)


# ------------------------------------------------------------------------------------------------------ metrics


def test_fidelity_metrics_of_identical_embeddings_are_one() -> None:
    ref = torch.nn.functional.normalize(torch.randn(40, 16))
    assert fidelity_metrics(ref, ref) == pytest.approx(
        {"mean_cosine": 1.0, "min_cosine": 1.0, "spearman": 1.0, "nn_agreement": 1.0}, abs=1e-12)
    scaled = fidelity_metrics(3.0 * ref, ref)  # cosines ignore scale
    assert scaled["mean_cosine"] == pytest.approx(1.0, abs=1e-12) and scaled["nn_agreement"] == 1.0


def test_fidelity_metrics_detect_shuffled_and_constant_embeddings() -> None:
    ref = torch.nn.functional.normalize(torch.randn(60, 16))
    shuffled = fidelity_metrics(ref[torch.randperm(60)], ref)  # each row now belongs to another sentence
    assert shuffled["mean_cosine"] < 0.5 and shuffled["nn_agreement"] < 0.5
    assert abs(shuffled["spearman"]) < 0.2
    constant = fidelity_metrics(torch.ones(60, 16), ref)
    assert constant["spearman"] == 0.0 and constant["min_cosine"] < constant["mean_cosine"]
    noisy = fidelity_metrics(ref + 0.05 * torch.randn(60, 16), ref)
    assert 0.9 < noisy["mean_cosine"] < 1.0 and 0.5 < noisy["spearman"] < 1.0


def test_fidelity_metrics_reject_mismatched_shapes() -> None:
    with pytest.raises(TaskError, match=r"^fidelity_metrics: expected \[N, D\] embeddings with N >= 2, shaped like "
                                        r"the reference \[5, 4\], got <\[5, 3\]>"):
        fidelity_metrics(torch.zeros(5, 3), torch.zeros(5, 4))


# --------------------------------------------------------------------------------------------------------- task


def test_task_inputs_come_from_held_out_part_at_full_length(task: SentencesTask) -> None:
    ids, mask = task.example_inputs(3)
    assert ids.shape == mask.shape == (3, 128) and ids.dtype == mask.dtype == torch.int64
    first = task.held_out_tokens[0]
    assert ids[0, :len(first)].tolist() == first and bool((ids[0, len(first):] == 0).all())
    assert mask[0].sum() == len(first)
    assert task.example_inputs(len(task.held_out_tokens) + 1)[0].shape == (len(task.held_out_tokens) + 1, 128)
    assert task.describe() == {"name": "sentences", "primary_metric": "mean_cosine", "reference": "all-MiniLM-L6-v2",
                               "corpus": "Python standard-library docstring sentences",
                               "corpus_sha256": GOLDEN_CORPUS_SHA256 if sys.version_info[:3] == (3, 11, 7)
                               else task.corpus_sha256[:16], "train": task.num_train_examples(),
                               "held_out": len(task.held_out_tokens), "max_length": 128}


def test_train_batches_cover_training_part_once_with_reference_targets(task: SentencesTask) -> None:
    train_reference, _ = task.reference_embeddings()
    row_of = {tuple(t): i for i, t in enumerate(task.train_tokens)}
    seen: list[tuple[int, ...]] = []
    for (ids, mask), targets in task.train_batches(256, torch.Generator().manual_seed(0)):
        assert ids.shape == mask.shape and targets.shape == (len(ids), 384)
        assert int(mask.sum(1).max()) == ids.shape[1]  # padded to the longest in the batch, not to 128
        for row, target in zip(ids, targets, strict=True):
            tokens = tuple(row[row != 0].tolist())
            seen.append(tokens)
            assert torch.equal(target, train_reference[row_of[tokens]])
    assert sorted(seen) == sorted(tuple(t) for t in task.train_tokens)
    assert {tuple(t) for t in task.train_tokens}.isdisjoint(tuple(t) for t in task.held_out_tokens)
    order = [b[0][0][0, :5].tolist() for b in task.train_batches(256, torch.Generator().manual_seed(0))]
    again = [b[0][0][0, :5].tolist() for b in task.train_batches(256, torch.Generator().manual_seed(0))]
    other = [b[0][0][0, :5].tolist() for b in task.train_batches(256, torch.Generator().manual_seed(1))]
    assert order == again != other


def test_calibration_batches_use_training_inputs_only(task: SentencesTask) -> None:
    train = {tuple(t) for t in task.train_tokens}
    batches = list(task.calibration_batches(num_batches=3, batch_size=16))
    assert len(batches) == 3
    for ids, mask in batches:
        assert ids.shape == (16, int(mask.sum(1).max()))
        assert all(tuple(row[row != 0].tolist()) in train for row in ids)


def test_loss_is_one_minus_cosine(task: SentencesTask) -> None:
    ref = torch.nn.functional.normalize(torch.randn(8, 384))
    assert float(task.loss(ref, ref)) == pytest.approx(0.0, abs=1e-6)
    assert float(task.loss(-ref, ref)) == pytest.approx(2.0, abs=1e-6)
    outputs = torch.randn(8, 384, requires_grad=True)
    task.loss(outputs, ref).backward()
    assert outputs.grad is not None and float(outputs.grad.abs().sum()) > 0


def test_reference_model_scores_one_against_itself(task: SentencesTask, minilm: SentenceEncoder) -> None:
    minilm.train()  # evaluate must switch to eval mode (dropout off) and restore the mode afterwards
    metrics = task.evaluate(minilm)
    assert minilm.training
    minilm.eval()
    assert metrics["mean_cosine"] == pytest.approx(1.0, abs=1e-6)
    assert metrics["min_cosine"] == pytest.approx(1.0, abs=1e-6)
    assert metrics["spearman"] == pytest.approx(1.0, abs=1e-6)
    assert metrics["nn_agreement"] == 1.0


def test_perturbed_model_scores_lower(task: SentencesTask, minilm: SentenceEncoder) -> None:
    noisy = copy.deepcopy(minilm)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in noisy.bert.encoder.named_parameters():
            if name.endswith("weight") and param.dim() == 2:  # the Linear layers of all 6 blocks
                param.add_(0.3 * param.std() * torch.randn(param.shape, generator=generator))
    metrics = task.evaluate(noisy)
    assert 0.5 < metrics["mean_cosine"] < 0.999
    assert metrics["min_cosine"] < metrics["mean_cosine"]
    assert 0.3 < metrics["spearman"] < 0.999
    assert 0.2 < metrics["nn_agreement"] < 1.0


def test_evaluate_rejects_a_model_that_returns_no_embedding_tensor(tmp_path: Path, minilm: SentenceEncoder) -> None:
    small = SentencesTask(cache_dir=tmp_path, corpus_size=40, quiet=True)
    with pytest.raises(TaskError, match=r"^model on task 'sentences': expected one embedding tensor \[\d+, D\], got "
                                        r"<BaseModelOutputWithPoolingAndCrossAttentions>\. Fix: wrap"):
        small.evaluate(minilm.bert)  # the bare BertModel returns a ModelOutput, not [B, D]


def test_reference_embeddings_are_cached_and_reused(task: SentencesTask, monkeypatch: pytest.MonkeyPatch) -> None:
    train_reference, held_out_reference = task.reference_embeddings()
    path = task.cache_path()
    with safe_open(str(path), framework="pt") as f:
        assert f.metadata()["weights_sha256"] == minilm_weights_digest()
        assert f.metadata()["corpus_sha256"] == task.corpus_sha256

    def no_model() -> None:
        raise AssertionError("the cached embeddings should have been used")

    monkeypatch.setattr(sentences_module, "load_minilm", no_model)
    again = SentencesTask(quiet=True)
    assert again.cache_path() == path
    assert torch.equal(again.reference_embeddings()[0], train_reference)
    assert torch.equal(again.reference_embeddings()[1], held_out_reference)


def test_corrupt_cache_file_is_recomputed(tmp_path: Path) -> None:
    small = SentencesTask(cache_dir=tmp_path, corpus_size=40, quiet=True)
    train, held_out = small.reference_embeddings()
    assert train.shape == (small.num_train_examples(), 384) and held_out.shape == (len(small.held_out_tokens), 384)
    small.cache_path().write_bytes(b"not a safetensors file")
    fresh = SentencesTask(cache_dir=tmp_path, corpus_size=40, quiet=True)
    assert torch.equal(fresh.reference_embeddings()[1], held_out)
    with safe_open(str(fresh.cache_path()), framework="pt") as f:  # rewritten as a valid file
        assert sorted(f.keys()) == ["held_out", "train"]


# ------------------------------------------------------------------------------------- larger training part


def test_extra_training_sentences_leave_the_held_out_part_alone(task: SentencesTask) -> None:
    large = SentencesTask(extra_train=None, quiet=True)
    assert large.held_out_sentences == task.held_out_sentences  # the same 581 sentences: comparable figures
    assert large.train_sentences[:len(task.train_sentences)] == task.train_sentences
    assert len(large.train_sentences) == 5226
    assert set(large.train_sentences).isdisjoint(large.held_out_sentences)
    assert not any(is_held_out(s) for s in large.train_sentences)
    assert large.cache_path() != task.cache_path()  # its reference embeddings cover other sentences
    assert SentencesTask(extra_train=100, quiet=True).num_train_examples() == 1519


def test_validation_sentences_are_disjoint_from_training_and_held_out(task: SentencesTask) -> None:
    validation = SentencesTask(extra_train=None, evaluate_on="validation", quiet=True)
    assert len(validation.held_out_sentences) == len(task.held_out_sentences)
    assert set(validation.held_out_sentences).isdisjoint(task.held_out_sentences)
    assert set(validation.held_out_sentences).isdisjoint(validation.train_sentences)
    assert validation.describe()["evaluated_on"] == "validation"


def test_bad_extra_train_and_evaluate_on_are_rejected() -> None:
    with pytest.raises(TaskError, match=r"extra_train: expected a number of sentences >= 0.*got -1"):
        SentencesTask(extra_train=-1, quiet=True)
    with pytest.raises(TaskError, match="evaluate_on: expected 'held-out' or 'validation', got 'test'"):
        SentencesTask(evaluate_on="test", quiet=True)


def test_sentences_large_is_a_registered_task() -> None:
    from modelpress.tasks.registry import resolve_task

    large = resolve_task("sentences-large")
    assert large.name == "sentences-large" and large.num_train_examples() == 5226
