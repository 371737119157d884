"""A tiny padded source/target batch for the encoder–decoder tests."""

from __future__ import annotations

import torch
from torch import Tensor

V = 12  # vocabulary of the token models
PAD, BOS, EOS = 0, 1, 2


def tokens(batch: int, steps: int, *, low: int = 3) -> Tensor:
    return torch.randint(low, V, (batch, steps))


def seq2seq_batch() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    src = tokens(3, 7)
    src_lengths = torch.tensor([7, 5, 2])
    src[1, 5:] = PAD
    src[2, 2:] = PAD
    body = tokens(3, 4)
    tgt_in = torch.cat([torch.full((3, 1), BOS), body], dim=1)  # (B, 5)
    tgt_out = torch.cat([body, torch.full((3, 1), EOS)], dim=1)
    tgt_out[2, 3:] = PAD  # a shorter target: its padding is ignored by the loss
    return src, src_lengths, tgt_in, tgt_out
