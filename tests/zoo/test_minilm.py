"""all-MiniLM-L6-v2 rebuilt from transformers alone, and loading of arbitrary local Hugging Face directories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel
from transformers import PreTrainedTokenizerBase as Tokenizer

from modelpress.errors import ModelpressError
from modelpress.provenance import get_provenance
from modelpress.zoo.minilm import (
    HFEncoder,
    Pooling,
    SentenceEncoder,
    load_hf_directory,
    load_minilm,
    load_tokenizer,
    minilm_directory,
    minilm_weights_digest,
    pool_tokens,
)

SENTENCES = [
    "Return the number of tasks required to trip the barrier.",
    "Deep copy operation on arbitrary Python objects.",
    "A buffered reader object and buffered writer object put together to form a sequential IO object that "
    "can read and write.",
    "Hi.",
]


@pytest.fixture(scope="module")
def minilm() -> SentenceEncoder:
    return load_minilm()


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return load_tokenizer()


def _embed(model: torch.nn.Module, tokenizer: Tokenizer, sentences: list[str]) -> torch.Tensor:
    batch = tokenizer(sentences, padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.inference_mode():
        return model(batch["input_ids"], batch["attention_mask"])


def test_minilm_has_published_size_and_reachable_bert(minilm: SentenceEncoder) -> None:
    assert sum(p.numel() for p in minilm.parameters()) == 22_713_216  # the "22.7M" of the model card
    assert isinstance(minilm.bert, BertModel)
    assert len(minilm.bert.encoder.layer) == 6
    assert minilm.bert.config.num_attention_heads == 12 and minilm.bert.config.intermediate_size == 1536
    assert not minilm.training and not minilm.bert.training  # dropout off after loading
    assert get_provenance(minilm).source == {"kind": "zoo", "name": "minilm"}


def test_minilm_matches_sentence_transformers(minilm: SentenceEncoder, tokenizer: Tokenizer) -> None:
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(minilm_directory()), device="cpu").encode(
        SENTENCES, convert_to_tensor=True, normalize_embeddings=False)
    ours = _embed(minilm, tokenizer, SENTENCES)
    assert ours.shape == (len(SENTENCES), 384) and ours.dtype == torch.float32
    cosine = torch.nn.functional.cosine_similarity(ours, reference.cpu().float(), dim=1)
    assert bool((cosine > 0.9999).all()), cosine
    assert torch.allclose(ours.norm(dim=1), torch.ones(len(SENTENCES)), atol=1e-5)  # L2-normalized


def test_padding_does_not_change_an_embedding(minilm: SentenceEncoder, tokenizer: Tokenizer) -> None:
    alone = _embed(minilm, tokenizer, SENTENCES[3:])  # "Hi." with no padding
    padded = _embed(minilm, tokenizer, SENTENCES)[3:]  # "Hi." padded to the longest sentence's length
    assert torch.allclose(alone, padded, atol=1e-5)


def test_different_sentences_get_different_embeddings(minilm: SentenceEncoder, tokenizer: Tokenizer) -> None:
    emb = _embed(minilm, tokenizer, SENTENCES)
    sims = emb @ emb.T
    off_diagonal = sims[~torch.eye(len(SENTENCES), dtype=torch.bool)]
    assert float(off_diagonal.max()) < 0.9


def test_weights_digest_is_stable_sha256() -> None:
    assert minilm_weights_digest() == minilm_weights_digest()
    assert len(minilm_weights_digest()) == 64 and int(minilm_weights_digest(), 16) >= 0


@pytest.mark.parametrize(("pooling", "expected"), [
    (Pooling.MEAN, [[2.0, 20.0]]),
    (Pooling.MAX, [[3.0, 30.0]]),
    (Pooling.CLS, [[1.0, 10.0]]),
])
def test_pool_tokens_ignores_padding(pooling: Pooling, expected: list[list[float]]) -> None:
    hidden = torch.tensor([[[1.0, 10.0], [3.0, 30.0], [500.0, 900.0]]])  # [1, 3, 2]; the last token is padding
    assert pool_tokens(hidden, torch.tensor([[1, 1, 0]]), pooling).tolist() == expected


def test_load_hf_directory_of_minilm_is_a_sentence_encoder(minilm: SentenceEncoder, tokenizer: Tokenizer) -> None:
    model = load_hf_directory(minilm_directory())
    assert isinstance(model, SentenceEncoder) and model.pooling is Pooling.MEAN and model.normalize
    assert get_provenance(model).source == {"kind": "hf", "path": str(minilm_directory().resolve())}
    assert torch.equal(_embed(model, tokenizer, SENTENCES[:2]), _embed(minilm, tokenizer, SENTENCES[:2]))


def _tiny_bert(directory: Path) -> BertModel:
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=32, max_position_embeddings=32))
    bert.save_pretrained(directory)
    return bert.eval()


def test_load_hf_directory_of_plain_model_returns_pooled_tensor(tmp_path: Path) -> None:
    bert = _tiny_bert(tmp_path)
    model = load_hf_directory(tmp_path)
    assert isinstance(model, HFEncoder) and not model.training
    ids = torch.tensor([[1, 5, 9, 0, 0], [2, 6, 7, 8, 3]])  # [2, 5]; first row padded after 3 tokens
    mask = (ids != 0).long()
    with torch.inference_mode():
        out = model(ids, mask)
        hidden = bert(input_ids=ids, attention_mask=mask).last_hidden_state  # [2, 5, 16]
    assert out.shape == (2, 16)
    assert torch.allclose(out[0], hidden[0, :3].mean(0), atol=1e-6)  # padding left out of the mean
    assert torch.allclose(out[1], hidden[1].mean(0), atol=1e-6)


def test_load_hf_directory_of_non_model_directory_says_what_is_there(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ModelpressError) as info:
        load_hf_directory(tmp_path)
    assert str(info.value) == (
        f"model directory {str(tmp_path)!r}: expected a Hugging Face model directory (config.json and weights) or "
        "a sentence-transformers directory (modules.json), got <a directory holding notes.txt>. Fix: point at the "
        "folder that save_pretrained() or SentenceTransformer.save() wrote")


def test_load_hf_directory_of_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ModelpressError, match="expected an existing directory, got <no such directory>"):
        load_hf_directory(tmp_path / "absent")


def test_load_hf_directory_with_config_but_no_weights(tmp_path: Path) -> None:
    _tiny_bert(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(ModelpressError, match=r"expected a config.json and weights that transformers' AutoModel "
                                              r"can load, got <OSError: .*Fix: point at the folder"):
        load_hf_directory(tmp_path)


def test_load_hf_directory_refuses_unknown_sentence_transformers_module(tmp_path: Path) -> None:
    _tiny_bert(tmp_path)
    (tmp_path / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Dense", "type": "sentence_transformers.models.Dense"},
    ]))
    with pytest.raises(ModelpressError, match=r"expected modules Transformer, Pooling and Normalize only, got "
                                              r"'sentence_transformers\.models\.Dense'"):
        load_hf_directory(tmp_path)


def test_load_hf_directory_reads_cls_pooling(tmp_path: Path) -> None:
    _tiny_bert(tmp_path)
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    (tmp_path / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]))
    model = load_hf_directory(tmp_path)
    assert isinstance(model, SentenceEncoder) and model.pooling is Pooling.CLS and not model.normalize


def test_load_tokenizer_of_non_tokenizer_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelpressError, match=r"tokenizer in .*: expected tokenizer files"):
        load_tokenizer(tmp_path)
