"""The distillation-only transfer sentences: more standard-library text, none of it ever scored."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from modelpress.errors import TaskError
from modelpress.tasks import SentencesTask, build_corpus
from modelpress.tasks.corpus import corpus_digest
from modelpress.tasks.transfer_corpus import comment_blocks, is_loose_text, reference_topics, transfer_sentences

# SHA-256 of the transfer sentences on CPython 3.11.7: the same list on every machine.
GOLDEN_TRANSFER_SHA256 = "3ffe6d08045232cc"


@pytest.fixture(scope="module")
def transfer() -> list[str]:
    return transfer_sentences()


def test_transfer_sentences_are_many_unique_and_outside_the_scored_corpus(transfer: list[str]) -> None:
    assert len(transfer) == 19027
    folded = [s.casefold() for s in transfer]
    assert len(set(folded)) == len(folded)  # the tokenizer lowercases: one input, one sentence
    scored = {s.casefold() for s in build_corpus(max_sentences=None)}  # training, held-out and validation parts
    assert scored.isdisjoint(folded)
    assert all(is_loose_text(s) for s in transfer)


def test_transfer_sentences_match_golden_digest(transfer: list[str]) -> None:
    assert corpus_digest(transfer)[:16] == GOLDEN_TRANSFER_SHA256


def test_comment_blocks_join_consecutive_comments(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("# First line of a block\n#   continues here.\n\nx = 1  # trailing note\ny = 2\n# last one\n")
    assert list(comment_blocks(source)) == ["First line of a block continues here.", "trailing note", "last one"]


def test_comment_blocks_of_a_broken_file_keep_what_came_first(tmp_path: Path) -> None:
    source = tmp_path / "broken.py"
    source.write_text("# a comment\nx = (1,\n")  # unterminated bracket: tokenize fails at the end
    assert list(comment_blocks(source)) == ["a comment"]


def test_reference_topics_are_read_as_literals() -> None:
    topics = reference_topics()
    assert len(topics) > 50 and all(isinstance(t, str) for t in topics)
    assert reference_topics(Path("/nonexistent")) == []


@given(st.text(max_size=400))
def test_loose_text_bounds(sentence: str) -> None:
    if is_loose_text(sentence):
        assert 30 <= len(sentence) <= 300 and sentence[0].isalpha()
        visible = [c for c in sentence if not c.isspace()]
        assert sum(c.isalpha() for c in visible) >= 0.7 * len(visible)


def test_transfer_extends_training_part_only() -> None:
    base = SentencesTask(quiet=True)
    extended = SentencesTask(transfer=500, quiet=True)
    assert extended.held_out_sentences == base.held_out_sentences
    assert extended.train_sentences == base.train_sentences + transfer_sentences()[:500]
    assert extended.cache_path() != base.cache_path()


def test_negative_transfer_is_rejected() -> None:
    with pytest.raises(TaskError, match=r"transfer: expected a number of sentences >= 0.*got -2"):
        SentencesTask(transfer=-2, quiet=True)


def test_sentences_xl_is_a_registered_task() -> None:
    from modelpress.tasks.registry import resolve_task

    xl = resolve_task("sentences-xl")
    assert xl.name == "sentences-xl" and xl.num_train_examples() == 5226 + 19027
    assert xl.describe()["batches"] == "bucketed by length"


def test_bucketed_batches_cover_every_sentence_once_with_little_padding() -> None:
    task = SentencesTask(transfer=3000, bucket=True, quiet=True)
    n = task.num_train_examples()
    # reference rows that name their sentence, so each batch's targets say which sentences it holds
    task._reference = (torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 4), torch.zeros(2, 4))
    seen: list[int] = []
    padded = 0
    for (ids, mask), reference in task.train_batches(32, torch.Generator().manual_seed(0)):
        rows = reference[:, 0].long().tolist()
        seen += rows
        padded += ids.numel()
        for row, row_mask, index in zip(ids.tolist(), mask.tolist(), rows, strict=True):
            tokens = task.train_tokens[index]
            assert row[:len(tokens)] == tokens and all(t == task.pad_id for t in row[len(tokens):])
            assert sum(row_mask) == len(tokens)
    assert sorted(seen) == list(range(n))  # every training sentence exactly once
    real = sum(len(t) for t in task.train_tokens)
    assert padded < 1.1 * real  # random batches of these lengths pad to about 2x
    again = [r[:, 0].tolist() for _, r in task.train_batches(32, torch.Generator().manual_seed(0))]
    first = [r[:, 0].tolist() for _, r in task.train_batches(32, torch.Generator().manual_seed(0))]
    assert again == first  # seeded
