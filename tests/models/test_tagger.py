"""SequenceTagger and LanguageModel: per-step logits, weight tying, generation."""

from __future__ import annotations

import pytest
import torch

from rnnkit.models import (
    InputSpec,
    LanguageModel,
    LanguageModelConfig,
    RecurrentSpec,
    SequenceTagger,
    TaggerConfig,
)
from tests.helpers import assert_close

V = 11


def _lm(cell: str = "lstm", **options: object) -> LanguageModel:
    cfg = LanguageModelConfig(
        vocab_size=V, embedding_dim=6, rnn=RecurrentSpec(cell, 8, num_layers=2), **options
    )
    return LanguageModel(cfg)


def test_tagger_shapes_and_state() -> None:
    cfg = TaggerConfig(
        input=InputSpec("embedding", vocab_size=V, embedding_dim=4),
        num_classes=5,
        rnn=RecurrentSpec("gru", 6, bidirectional=True),
    )
    model = SequenceTagger(cfg)
    logits, state = model(torch.randint(V, (3, 7)), torch.tensor([7, 3, 1]))
    assert logits.shape == (3, 7, 5) and state.shape == (2, 3, 6)
    logits, _ = model(torch.randint(V, (1, 4)))  # a batch of one
    assert logits.shape == (1, 4, 5)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "mingru", "minlstm"])
def test_carrying_state_equals_rerunning_the_prefix(cell: str) -> None:
    model = _lm(cell).eval()
    text = torch.randint(V, (2, 9))
    full, _ = model(text)
    logits, state = model(text[:, :4])
    pieces = [logits]
    for t in range(4, 9):
        logits, state = model(text[:, t : t + 1], state=state)
        pieces.append(logits)
    assert_close(torch.cat(pieces, dim=1), full, what="step-wise logits")


@pytest.mark.parametrize("cell", ["lstm", "mingru"])
def test_generate_top_k_1_is_greedy_on_the_whole_prefix(cell: str) -> None:
    """top_k=1 picks the argmax, and carrying state = re-reading the prefix every step."""
    model = _lm(cell).eval()
    prompt = torch.randint(V, (3, 2))
    out = model.generate(prompt, 6, top_k=1)
    assert out.shape == (3, 8) and torch.equal(out[:, :2], prompt)
    expected = prompt
    for _ in range(6):
        logits, _ = model(expected)  # the whole prefix again
        expected = torch.cat([expected, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out, expected)


def test_generate_is_reproducible_with_a_generator() -> None:
    model = _lm(dropout=0.3)
    prompt = torch.randint(V, (2, 3))
    a = model.generate(prompt, 10, temperature=1.5, generator=torch.Generator().manual_seed(3))
    b = model.generate(prompt, 10, temperature=1.5, generator=torch.Generator().manual_seed(3))
    c = model.generate(prompt, 10, temperature=1.5, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_generate_uses_eval_mode_and_restores_the_mode() -> None:
    model = _lm(dropout=0.5).train()
    prompt = torch.randint(V, (2, 3))
    a = model.generate(prompt, 8, top_k=1)
    assert model.training
    b = model.generate(prompt, 8, top_k=1)  # dropout off: no randomness left
    assert torch.equal(a, b)
    model.eval()
    model.generate(prompt, 1)
    assert not model.training


def test_generate_top_k_samples_only_among_the_top_k() -> None:
    model = _lm().eval()
    prompt = torch.randint(V, (200, 1))
    out = model.generate(prompt, 1, top_k=3, generator=torch.Generator().manual_seed(0))
    logits, _ = model(prompt)
    top3 = logits[:, -1].topk(3, dim=-1).indices
    assert (out[:, 1:] == top3).any(dim=1).all()


def test_generate_continues_from_a_state() -> None:
    model = _lm().eval()
    text = torch.randint(V, (1, 5))
    _, state = model(text[:, :3])
    out = model.generate(text[:, 3:], 4, top_k=1, state=state)
    assert torch.equal(out, model.generate(text, 4, top_k=1)[:, 3:])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"temperature": 0.0}, r"temperature must be > 0, got 0.0"),
        ({"temperature": -1.0}, r"temperature must be > 0"),
        ({"top_k": 0}, r"top_k must be an integer >= 1 or None, got 0"),
    ],
)
def test_generate_validates_sampling_options(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _lm().generate(torch.zeros(1, 2, dtype=torch.long), 3, **kwargs)


def test_generate_validates_the_prompt() -> None:
    with pytest.raises(
        ValueError, match=r"prompt of shape \(B, T0\) with T0 >= 1, got shape \(1, 0\)"
    ):
        _lm().generate(torch.zeros(1, 0, dtype=torch.long), 3)
    assert _lm().generate(torch.zeros(1, 2, dtype=torch.long), 0).shape == (1, 2)


def test_weight_tying_shares_the_embedding() -> None:
    model = _lm(tie_weights=True)  # hidden 8 != embedding 6: a projection is added
    assert model.output.weight is model.encoder.embedding.weight
    assert model.projection is not None and model.projection.out_features == 6
    n_tied = sum(p.numel() for p in model.parameters())
    n_untied = sum(p.numel() for p in _lm().parameters())
    assert n_tied < n_untied
    same = LanguageModel(
        LanguageModelConfig(
            vocab_size=V, embedding_dim=8, rnn=RecurrentSpec("gru", 8), tie_weights=True
        )
    )
    assert same.projection is None


def test_one_hot_language_model() -> None:
    """The course's "hello" toy: one-hot characters into a vanilla RNN."""
    cfg = LanguageModelConfig(vocab_size=4, input_kind="one_hot", rnn=RecurrentSpec("rnn", 5))
    model = LanguageModel(cfg)
    logits, h = model(torch.tensor([[0, 1, 2, 2]]))  # h, e, l, l
    assert logits.shape == (1, 4, 4) and h.shape == (1, 1, 5)
    assert model.encoder.embedding is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rnn": RecurrentSpec("gru", 4, bidirectional=True)}, r"must be unidirectional"),
        ({"tie_weights": True, "input_kind": "one_hot"}, r"tie_weights=True needs input_kind"),
        ({"input_kind": "onehot"}, r"did you mean 'one_hot'\?"),
    ],
)
def test_language_model_config_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LanguageModelConfig(**kwargs)
