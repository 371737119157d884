"""SequenceClassifier: lengths semantics, the conv front end, pooling."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.layers import last_step
from rnnkit.models import (
    ClassifierConfig,
    ConvFrontEnd,
    InputSpec,
    RecurrentSpec,
    SequenceClassifier,
)
from rnnkit.models.classifier import pooled_lengths
from tests.helpers import assert_close

POOLINGS = ["last", "mean", "max", "attention"]


def _model(
    pooling: str, *, conv: bool, cell: str = "lstm", tokens: bool = True
) -> SequenceClassifier:
    spec = (
        InputSpec("embedding", vocab_size=20, embedding_dim=6)
        if tokens
        else InputSpec("identity", input_size=4)
    )
    cfg = ClassifierConfig(
        input=spec,
        num_classes=3,
        rnn=RecurrentSpec(cell, 5, num_layers=2, bidirectional=True),
        conv_channels=4 if conv else 0,
        conv_kernel=4,  # even: asymmetric "same" padding
        pool_size=3,
        pooling=pooling,
        attention_dim=4,
        head_hidden=(6,),
    )
    return SequenceClassifier(cfg).eval()


def _batch(tokens: bool) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([10, 7, 4, 1])
    x = torch.randint(1, 20, (4, 10)) if tokens else torch.randn(4, 10, 4)
    return x, lengths


def _scramble_padding(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The same batch with different junk at every padded position."""
    x = x.clone()
    for b, n in enumerate(lengths.tolist()):
        x[b, n:] = torch.randint(1, 20, x[b, n:].shape) if not x.is_floating_point() else 99.0
    return x


@pytest.mark.parametrize("tokens", [True, False], ids=["tokens", "features"])
@pytest.mark.parametrize("conv", [False, True], ids=["rnn", "conv"])
@pytest.mark.parametrize("pooling", POOLINGS)
def test_padding_changes_nothing(pooling: str, conv: bool, tokens: bool) -> None:
    """Logits depend only on the valid steps: junk in the padding, or no padding at all."""
    model = _model(pooling, conv=conv, tokens=tokens)
    x, lengths = _batch(tokens)
    logits = model(x, lengths)
    assert_close(model(_scramble_padding(x, lengths), lengths), logits, what="scrambled padding")
    for b, n in enumerate(lengths.tolist()):
        alone = model(x[b : b + 1, :n], torch.tensor([n]))  # the same sequence, unpadded
        assert_close(alone, logits[b : b + 1], what=f"sequence {b} alone")


@pytest.mark.parametrize("pooling", POOLINGS)
def test_batch_of_one(pooling: str) -> None:
    model = _model(pooling, conv=True)
    assert model(torch.randint(1, 20, (1, 5)), torch.tensor([5])).shape == (1, 3)
    assert model(torch.randint(1, 20, (1, 5))).shape == (1, 3)  # no lengths: all full


@pytest.mark.parametrize("pooling", POOLINGS)
def test_zero_length_sequence_gives_finite_logits(pooling: str) -> None:
    model = _model(pooling, conv=True).train()
    x, _ = _batch(tokens=True)
    logits = model(x, torch.tensor([10, 0, 3, 1]))
    assert torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_bidirectional_last_pooling_is_last_step() -> None:
    """The forward half at the last valid step, the backward half at step 0."""
    model = _model("last", conv=False)
    x, lengths = _batch(tokens=True)
    seen = {}
    model.head.register_forward_hook(lambda m, args, out: seen.update(pooled=args[0]))
    model(x, lengths)
    out, _ = model.rnn(model.encoder(x), lengths=lengths)
    expected = last_step(out, lengths, batch_first=True, bidirectional=True)
    assert_close(seen["pooled"], expected, what="pooled")
    assert not torch.allclose(seen["pooled"][1:], out[1:, -1])  # not the padded out[:, -1]


def test_mean_and_max_pooling_by_hand() -> None:
    model = _model("mean", conv=False)
    x, lengths = _batch(tokens=True)
    out, _ = model.rnn(model.encoder(x), lengths=lengths)
    pooled = model.pooling(out, lengths)
    for b, n in enumerate(lengths.tolist()):
        assert_close(pooled[b], out[b, :n].mean(0), what="mean")
    model.pooling.mode = "max"
    pooled = model.pooling(out, lengths)
    for b, n in enumerate(lengths.tolist()):
        assert_close(pooled[b], out[b, :n].amax(0), what="max")


def test_attention_pooling_weights_ignore_padding() -> None:
    model = _model("attention", conv=False)
    x, lengths = _batch(tokens=True)
    model(x, lengths)
    weights = model.pooling.attention.last_weights  # (B, T)
    mask = torch.arange(10).unsqueeze(0) < lengths.unsqueeze(1)
    assert (weights[~mask] == 0).all()
    assert_close(weights.sum(1), torch.ones(4), what="weights sum to 1")


@settings(max_examples=30, deadline=None)
@given(
    steps=st.integers(1, 12),
    kernel=st.integers(1, 6),
    pool=st.integers(1, 4),
    data=st.data(),
)
def test_conv_front_end_lengths(steps: int, kernel: int, pool: int, data: st.DataObject) -> None:
    """Every sequence gets ⌈ℓ/p⌉ steps, exactly the ones it would get alone."""
    lengths = torch.tensor(data.draw(st.lists(st.integers(0, steps), min_size=1, max_size=3)))
    front = ConvFrontEnd(3, 2, kernel, pool)
    x = torch.randn(len(lengths), steps, 3)
    out, new_lengths = front(x, lengths)
    assert out.shape == (len(lengths), -(-steps // pool), 2)
    assert new_lengths.tolist() == [-(-n // pool) for n in lengths.tolist()]
    assert (new_lengths >= 0).all() and ((lengths > 0) <= (new_lengths > 0)).all()
    for b, n in enumerate(lengths.tolist()):
        if n:
            alone, _ = front(x[b : b + 1, :n], None)
            assert_close(out[b, : int(new_lengths[b])], alone[0], what="alone")


def test_pooled_lengths() -> None:
    assert pooled_lengths(torch.tensor([0, 1, 2, 3, 4, 5]), 2).tolist() == [0, 1, 1, 2, 2, 3]


def test_course_cnn_lstm_shape() -> None:
    """Embedding → Dropout → Conv1D → MaxPool1D → LSTM(55) → logit, as in the course."""
    cfg = ClassifierConfig(
        input=InputSpec("embedding", vocab_size=100, embedding_dim=16, dropout=0.25),
        num_classes=2,
        rnn=RecurrentSpec("lstm", 55),
        conv_channels=8,
        conv_kernel=5,
        pool_size=4,
    )
    model = SequenceClassifier(cfg)
    assert model(torch.randint(1, 100, (2, 30)), torch.tensor([30, 11])).shape == (2, 2)
    assert model.conv is not None and model.rnn.input_size == 8


def test_forget_gate_bias_is_one() -> None:
    model = _model("last", conv=False)
    h = 5
    assert (model.rnn.bias_ih_l0[h : 2 * h] == 1).all() and (
        model.rnn.bias_hh_l0[h : 2 * h] == 0
    ).all()
    assert (model.rnn.bias_ih_l1_reverse[:h] != 1).any()  # only the forget chunk is set


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
def test_projection_option_sizes_the_head() -> None:
    cfg = ClassifierConfig(
        input=InputSpec("identity", input_size=3),
        rnn=RecurrentSpec("lstm", 8, bidirectional=True, options={"proj_size": 3}),
    )
    model = SequenceClassifier(cfg)
    assert model(torch.randn(2, 4, 3)).shape == (2, 2)
    assert model.head.output.in_features == 6


def test_wrong_inputs_are_explained() -> None:
    model = _model("last", conv=False)
    with pytest.raises(ValueError, match=r"expected integer token ids of shape \(B, T\)"):
        model(torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match=r"lengths must be <= the number of time steps T=5"):
        model(torch.randint(1, 20, (2, 5)), torch.tensor([6, 2]))
