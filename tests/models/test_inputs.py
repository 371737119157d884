"""InputSpec / InputEncoder, and the attention and pooling building blocks."""

from __future__ import annotations

import pytest
import torch

from rnnkit.models import BahdanauAttention, InputEncoder, InputSpec, LuongAttention
from rnnkit.models.pooling import masked_softmax


def test_embedding() -> None:
    enc = InputEncoder(InputSpec("embedding", vocab_size=10, embedding_dim=4, padding_idx=0))
    x = enc(torch.tensor([[3, 0, 0]]))
    assert x.shape == (1, 3, 4) and (x[0, 1:] == 0).all()  # the padding vector is zero
    assert enc.embedding.weight.abs().max() <= 0.1  # U(-0.1, 0.1), see rnnkit.models.init


def test_one_hot_follows_the_model_dtype() -> None:
    enc = InputEncoder(InputSpec("one_hot", vocab_size=4)).to(torch.float64)
    x = enc(torch.tensor([[0, 3]]))
    assert x.dtype == torch.float64 and x.tolist() == [[[1, 0, 0, 0], [0, 0, 0, 1]]]


def test_linear_and_identity() -> None:
    assert InputEncoder(InputSpec("linear", input_size=3, embedding_dim=5))(
        torch.randn(2, 4, 3)
    ).shape == (2, 4, 5)
    x = torch.randn(2, 4, 3)
    assert torch.equal(InputEncoder(InputSpec("identity", input_size=3))(x), x)


@pytest.mark.parametrize(
    ("spec", "x", "match"),
    [
        (
            InputSpec("embedding", vocab_size=5, embedding_dim=2),
            torch.randn(2, 3),
            r"expected integer token ids of shape \(B, T\), got torch.float32",
        ),
        (
            InputSpec("identity", input_size=3),
            torch.randn(2, 3, 4),
            r"expected input_size=3 features, got 4",
        ),
        (
            InputSpec("linear", input_size=3, embedding_dim=2),
            torch.zeros(2, 3, dtype=torch.long),
            r"expected float features of shape \(B, T, 3\)",
        ),
    ],
)
def test_input_errors(spec: InputSpec, x: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        InputEncoder(spec)(x)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "embeding"}, r"did you mean 'embedding'\?"),
        ({"kind": "embedding", "vocab_size": 5}, "kind='embedding' needs embedding_dim"),
        ({"kind": "identity"}, "kind='identity' needs input_size"),
        ({"kind": "one_hot", "vocab_size": 0}, "expected vocab_size to be an integer >= 1, got 0"),
        (
            {"kind": "embedding", "vocab_size": 5, "embedding_dim": 2, "padding_idx": 5},
            r"padding_idx must be in \[0, vocab_size=5\)",
        ),
        ({"kind": "identity", "input_size": 2, "dropout": 1.0}, r"dropout in \[0, 1\)"),
    ],
)
def test_spec_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        InputSpec(**kwargs)


def test_masked_softmax() -> None:
    scores = torch.randn(3, 4)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]], dtype=torch.bool)
    w = masked_softmax(scores, mask)
    assert (w[~mask] == 0).all() and torch.isfinite(w).all()
    assert torch.allclose(w[:2].sum(-1), torch.ones(2)) and (w[2] == 0).all()


@pytest.mark.parametrize("cls", [BahdanauAttention, LuongAttention])
def test_attention_shapes_and_mask(cls: type) -> None:
    attention = cls(6, 5, 4) if cls is BahdanauAttention else cls(6, 5)
    values, query = torch.randn(2, 7, 5), torch.randn(2, 3, 6)
    mask = torch.arange(7).unsqueeze(0) < torch.tensor([[7], [2]])
    context, weights = attention(query, attention.keys(values), values, mask)
    assert context.shape == (2, 3, 5) and weights.shape == (2, 3, 7)
    assert (weights[1, :, 2:] == 0).all()
    assert torch.allclose(context[1], weights[1, :, :2] @ values[1, :2])
