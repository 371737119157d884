"""Masks and pooling over time that respect each sequence's valid length."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from rnnkit.config import check_choice
from rnnkit.layers import last_step

POOLINGS = ("last", "mean", "max", "attention")


def length_mask(
    lengths: Tensor | Sequence[int] | None, num_steps: int, *, device: torch.device | None = None
) -> Tensor | None:
    """``mask[b, t] = t < lengths[b]``: ``(B, T)`` bool on ``device``, or ``None`` for ``None``."""
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths, device=device)
    steps = torch.arange(num_steps, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)


def masked_softmax(scores: Tensor, mask: Tensor | None, dim: int = -1) -> Tensor:
    """Softmax over ``dim`` with masked-out (``False``) positions at exactly 0.

    A row with no valid position (a zero-length sequence) gets all zeros rather
    than NaN.
    """
    if mask is None:
        return torch.softmax(scores, dim=dim)
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=dim)
    return weights.masked_fill(~mask, 0.0)  # also clears the NaN of an all-masked row


class AttentionPooling(nn.Module):
    r"""Additive attention over time (Bahdanau-style scoring against a learned query).

    .. math::
        e_t = v^\top \tanh(W h_t + b), \qquad
        \alpha = \mathrm{softmax}_{t < \ell}(e), \qquad
        \text{out} = \sum_t \alpha_t h_t

    where the softmax runs only over the valid steps ``t < ℓ`` (length ``ℓ``).

    Shape:
        ``(B, T, F)`` and mask ``(B, T)`` → ``(B, F)``; the weights ``(B, T)`` are kept
        on ``last_weights`` for plotting.
    """

    def __init__(self, features: int, attention_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(features, attention_dim)
        self.v = nn.Linear(attention_dim, 1, bias=False)
        self.last_weights: Tensor | None = None

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        scores = self.v(torch.tanh(self.proj(x))).squeeze(-1)  # (B, T)
        weights = masked_softmax(scores, mask)  # (B, T)
        if not torch.compiler.is_exporting():  # an exported graph keeps no module state
            self.last_weights = weights.detach()
        return torch.einsum("bt,btf->bf", weights, x)  # (B, F)


class TemporalPooling(nn.Module):
    """Summarise a padded sequence of features ``(B, T, F)`` as one vector ``(B, F)``.

    Modes (all ignore padded steps):

    * ``"last"`` — the last *valid* step (:func:`rnnkit.last_step`); for a
      bidirectional output the backward half is taken at step 0, where the backward
      direction has read the whole sequence;
    * ``"mean"`` — ``Σ_{t<ℓ} h_t / ℓ``;
    * ``"max"`` — elementwise max over valid steps;
    * ``"attention"`` — :class:`AttentionPooling`.

    A zero-length sequence pools to zeros.

    Arguments:
        mode: one of :data:`POOLINGS`.
        features: ``F``.
        bidirectional: ``x`` is ``[forward; backward]`` (matters for ``"last"``).
        attention_dim: hidden size of the attention scorer.
    """

    def __init__(
        self, mode: str, features: int, *, bidirectional: bool = False, attention_dim: int = 64
    ) -> None:
        super().__init__()
        check_choice("TemporalPooling", "pooling", mode, POOLINGS)
        self.mode, self.bidirectional = mode, bidirectional
        self.attention = AttentionPooling(features, attention_dim) if mode == "attention" else None

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        if self.mode == "last":
            return last_step(x, lengths, batch_first=True, bidirectional=self.bidirectional)
        mask = length_mask(lengths, x.shape[1], device=x.device)  # (B, T) or None
        if self.attention is not None:
            return self.attention(x, mask)
        if self.mode == "mean":
            if mask is None:
                return x.mean(dim=1)
            total = (x * mask.unsqueeze(-1)).sum(dim=1)  # (B, F)
            count = mask.sum(dim=1, keepdim=True).clamp(min=1)  # (B, 1)
            return total / count
        if mask is None:
            return x.amax(dim=1)
        pooled = x.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)  # (B, F)
        return torch.where(mask.any(dim=1, keepdim=True), pooled, 0.0)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"
