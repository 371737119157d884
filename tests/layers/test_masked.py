"""The loop engine's adapter for cells whose noise belongs to a whole sequence."""

from __future__ import annotations

import pytest
import torch

import rnnkit
from rnnkit.layers.masked import MaskedCell, SequenceSteps


def test_the_variant_cells_are_masked_cells() -> None:
    assert isinstance(rnnkit.LSTMVariantCell(3, 4), MaskedCell)
    assert not isinstance(rnnkit.LSTMCell(3, 4), MaskedCell)


def test_sequence_steps_refuse_more_steps_than_their_masks() -> None:
    cell = rnnkit.RNNVariantCell(3, 4, zoneout_h=0.2)
    step = SequenceSteps(cell.masked_step, cell.sample_masks(2, 2))
    h = cell.init_state(2)
    for _ in range(2):
        _, h = step(torch.randn(2, 3), h)
    with pytest.raises(RuntimeError, match="drawn for 2 steps"):
        step(torch.randn(2, 3), h)
