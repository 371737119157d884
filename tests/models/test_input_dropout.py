"""Embedding dropout and word dropout on token inputs (``model.input``)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.models import InputEncoder, InputSpec
from rnnkit.models.inputs import drop_words, embedding_dropout
from rnnkit.models.tagger import LanguageModel, LanguageModelConfig


def _encoder(**options: object) -> InputEncoder:
    spec = InputSpec("embedding", vocab_size=30, embedding_dim=6, padding_idx=0, **options)
    return InputEncoder(spec)


@settings(max_examples=25, deadline=None)
@given(p=st.floats(0.05, 0.9), seed=st.integers(0, 2**16))
def test_embedding_dropout_is_the_lookup_in_a_row_masked_matrix(p: float, seed: int) -> None:
    """AWD-LSTM's form: ``F.embedding(ids, weight * m[:, None])`` with ``m`` in {0, 1/(1-p)}."""
    weight = torch.randn(30, 6)
    ids = torch.randint(0, 30, (4, 9))
    torch.manual_seed(seed)
    out = embedding_dropout(F.embedding(ids, weight), ids, p, vocab_size=30)
    torch.manual_seed(seed)
    keep = torch.empty(30).bernoulli_(1 - p).div_(1 - p)
    assert torch.allclose(out, F.embedding(ids, weight * keep[:, None]))


def test_embedding_dropout_drops_word_types_not_positions() -> None:
    """Every occurrence of a word type in the batch is kept or dropped together."""
    encoder = _encoder(embedding_dropout=0.5).train()
    ids = torch.randint(1, 30, (8, 40))
    torch.manual_seed(3)
    x = encoder(ids)  # (B, T, E)
    plain = encoder.embedding(ids)
    dropped = (x == 0).all(-1)  # (B, T)
    assert 0 < dropped.float().mean() < 1
    for token in ids.unique():
        where = ids == token
        assert dropped[where].all() or not dropped[where].any(), int(token)
    assert torch.allclose(x[~dropped], 2.0 * plain[~dropped])  # scaled by 1 / (1 - p)


def test_dropped_word_types_get_no_gradient() -> None:
    encoder = _encoder(embedding_dropout=0.5).train()
    ids = torch.randint(1, 30, (4, 20))
    torch.manual_seed(0)
    encoder(ids).sum().backward()
    grad = encoder.embedding.weight.grad
    seen = ids.unique()
    rows_with_gradient = grad[seen].abs().sum(-1) > 0
    assert 0 < rows_with_gradient.sum() < len(seen)


def test_eval_mode_applies_neither_regulariser() -> None:
    encoder = _encoder(embedding_dropout=0.5, word_dropout=0.5, unk_idx=1).eval()
    ids = torch.randint(0, 30, (3, 12))
    assert torch.equal(encoder(ids), encoder.embedding(ids))


def test_word_dropout_replaces_tokens_by_unk_and_keeps_padding() -> None:
    ids = torch.randint(2, 30, (50, 40))
    ids[:, 30:] = 0  # padding
    torch.manual_seed(0)
    out = drop_words(ids, 0.25, replacement=1, padding_idx=0)
    assert torch.equal(out[:, 30:], ids[:, 30:])
    changed = out != ids
    assert (out[changed] == 1).all()
    assert changed[:, :30].float().mean().item() == pytest.approx(0.25, abs=0.03)


def test_word_dropout_falls_back_to_padding_without_an_unknown_token() -> None:
    encoder = _encoder(word_dropout=0.999).train()  # no unk_idx: padding (a zero vector)
    x = encoder(torch.randint(1, 30, (2, 50)))
    assert (x == 0).all(-1).float().mean() > 0.9


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "identity", "input_size": 3, "embedding_dropout": 0.1}, "kind='embedding'"),
        ({"kind": "linear", "input_size": 3, "embedding_dim": 2, "word_dropout": 0.1}, "token"),
        ({"kind": "one_hot", "vocab_size": 5, "padding_idx": None, "word_dropout": 0.1}, "unk"),
        (
            {"kind": "embedding", "vocab_size": 5, "embedding_dim": 2, "embedding_dropout": 1.0},
            r"embedding_dropout in \[0, 1\)",
        ),
        (
            {"kind": "embedding", "vocab_size": 5, "embedding_dim": 2, "unk_idx": 7},
            r"unk_idx must be in \[0, vocab_size=5\)",
        ),
    ],
)
def test_input_regulariser_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        InputSpec(**kwargs)


def test_the_language_model_passes_both_to_its_input() -> None:
    config = LanguageModelConfig(vocab_size=20, embedding_dropout=0.2, word_dropout=0.1, unk_idx=1)
    spec = LanguageModel(config).encoder.spec
    assert (spec.embedding_dropout, spec.word_dropout, spec.replacement_idx) == (0.2, 0.1, 1)
    with pytest.raises(ValueError, match="word_dropout needs"):
        LanguageModelConfig(vocab_size=20, input_kind="one_hot", word_dropout=0.1)
