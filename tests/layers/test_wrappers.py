"""TimeDistributed and last_step."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnkit import LSTM, TimeDistributed, last_step
from tests.helpers import assert_close


def test_time_distributed_equals_per_step_application() -> None:
    head = TimeDistributed(nn.Linear(6, 2))
    x = torch.randn(3, 5, 6)
    out = head(x)
    assert out.shape == (3, 5, 2)
    assert_close(out[:, 4], head.module(x[:, 4]), what="step 4")


def test_time_distributed_runs_modules_that_need_a_flat_batch() -> None:
    frames = TimeDistributed(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()))
    out = frames(torch.randn(2, 4, 1, 5, 5))  # (B, T, C, H, W): a video of 4 frames
    assert out.shape == (2, 4, 2 * 3 * 3)


def test_time_distributed_keeps_packing() -> None:
    packed = nn.utils.rnn.pack_sequence([torch.randn(4, 6), torch.randn(2, 6)])
    out = TimeDistributed(nn.Linear(6, 2))(packed)
    assert isinstance(out, nn.utils.rnn.PackedSequence) and out.data.shape == (6, 2)
    assert torch.equal(out.batch_sizes, packed.batch_sizes)


def test_time_distributed_rejects_flat_input() -> None:
    with pytest.raises(ValueError, match=r"at least 3 dimensions \(B, T, ...\), got 2-D"):
        TimeDistributed(nn.Linear(6, 2))(torch.randn(3, 6))


def test_last_step_picks_last_valid_not_last_padded() -> None:
    out = torch.arange(2 * 4, dtype=torch.float32).view(2, 4, 1)  # (B, T, 1)
    picked = last_step(out, torch.tensor([4, 2]), batch_first=True)
    assert picked.flatten().tolist() == [3.0, 5.0]
    assert last_step(out, torch.tensor([4, 0]), batch_first=True)[1].item() == 0.0


def test_last_step_bidirectional_uses_step_zero_for_backward() -> None:
    lstm = LSTM(3, 4, bidirectional=True, batch_first=True)
    x, lengths = torch.randn(2, 5, 3), torch.tensor([5, 3])
    out, (h_n, _) = lstm(x, lengths=lengths)
    features = last_step(out, lengths, batch_first=True, bidirectional=True)
    assert_close(features, torch.cat([h_n[0], h_n[1]], dim=-1), what="== final hidden states")


def test_last_step_on_packed_sequence() -> None:
    packed = nn.utils.rnn.pack_sequence([torch.randn(4, 2), torch.randn(2, 2)])
    out, h_n = nn.GRU(2, 3)(packed)
    assert_close(last_step(out), h_n[0], what="== h_n")
