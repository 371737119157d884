r"""Attention over an encoder's outputs (the source "memory"), with padding masked out.

Both modules take a batch of queries ``(B, T, Q)`` (``T = 1`` when decoding step by
step), the memory's *values* ``(B, S, M)`` and *keys* precomputed once per source
by :meth:`keys`, and a mask ``(B, S)`` that is ``False`` at padded source positions.
They return the context vectors ``(B, T, M)`` and the weights ``(B, T, S)``, whose
entries at padded positions are exactly 0.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnkit.models.pooling import masked_softmax


def _attend(scores: Tensor, values: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """Masked softmax over the source, then the weighted sum of the values."""
    weights = masked_softmax(scores, None if mask is None else mask.unsqueeze(1))  # (B, T, S)
    context = torch.bmm(weights, values)  # (B, T, S) @ (B, S, M) -> (B, T, M)
    return context, weights


class BahdanauAttention(nn.Module):
    r"""Additive attention (Bahdanau et al. 2015).

    .. math::
        e_{tj} = v^\top \tanh(W_q s_{t-1} + W_k h_j), \qquad
        \alpha_{tj} = \mathrm{softmax}_j(e_{tj}), \qquad c_t = \sum_j \alpha_{tj} h_j

    The query is the decoder state *before* the step (``s_{t-1}``), and the context
    is fed into the step.

    Arguments:
        query_size: ``Q``, the decoder's hidden size.
        memory_size: ``M``, the encoder's output size.
        attention_dim: ``A``, the size of the additive scorer.
    """

    def __init__(self, query_size: int, memory_size: int, attention_dim: int) -> None:
        super().__init__()
        self.query = nn.Linear(query_size, attention_dim, bias=False)
        self.key = nn.Linear(memory_size, attention_dim)
        self.v = nn.Linear(attention_dim, 1, bias=False)

    def keys(self, values: Tensor) -> Tensor:
        """``W_k h_j`` for every source position, ``(B, S, A)`` (once per source)."""
        return self.key(values)

    def forward(
        self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        q = self.query(query).unsqueeze(2)  # (B, T, 1, A)
        scores = self.v(torch.tanh(q + keys.unsqueeze(1))).squeeze(-1)  # (B, T, S)
        return _attend(scores, values, mask)


class LuongAttention(nn.Module):
    r"""Multiplicative "general" attention (Luong et al. 2015).

    .. math::
        e_{tj} = h_t^\top W_a h_j, \qquad
        \alpha_{tj} = \mathrm{softmax}_j(e_{tj}), \qquad c_t = \sum_j \alpha_{tj} h_j

    The query is the decoder's output *after* the step (``h_t``); the decoder then
    forms the attentional hidden state :math:`\tilde h_t = \tanh(W_c [c_t; h_t])`.

    Arguments:
        query_size: ``Q``, the decoder's hidden size.
        memory_size: ``M``, the encoder's output size.
    """

    def __init__(self, query_size: int, memory_size: int) -> None:
        super().__init__()
        self.key = nn.Linear(memory_size, query_size, bias=False)  # W_a, applied to h_j

    def keys(self, values: Tensor) -> Tensor:
        """``W_a h_j`` for every source position, ``(B, S, Q)`` (once per source)."""
        return self.key(values)

    def forward(
        self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        scores = torch.bmm(query, keys.transpose(1, 2))  # (B, T, Q) @ (B, Q, S) -> (B, T, S)
        return _attend(scores, values, mask)
