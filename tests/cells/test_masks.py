"""The masks of the noisy variant options: shapes, seeds, and training against eval."""

from __future__ import annotations

import torch

from rnnkit.cells.masks import sample_masks
from rnnkit.cells.options import VariantOptions

DT = torch.float64


def test_masks_in_training_and_eval() -> None:
    options = VariantOptions(
        zoneout_h=0.3, zoneout_c=0.2, input_dropout=0.5, recurrent_dropout=0.25, weight_drop=0.5
    )
    like = torch.empty(0, dtype=DT)
    kwargs = dict(family="lstm", batch_size=2, num_steps=5, input_size=3, hidden_size=4, like=like)
    torch.manual_seed(0)
    masks = sample_masks(options, training=True, **kwargs)
    assert masks.input.shape == (2, 3) and set(masks.input.unique().tolist()) <= {0.0, 2.0}
    assert masks.recurrent.shape == (2, 4)  # one mask per sequence, not per step
    assert masks.weight.shape == (16, 4)
    assert masks.zoneout_h.shape == (5, 2, 4) and set(masks.zoneout_h.unique().tolist()) <= {0, 1}
    torch.manual_seed(0)
    again = sample_masks(options, training=True, **kwargs)
    assert all(torch.equal(a, b) for a, b in zip(masks, again, strict=True))  # seed fixes all
    evaluation = sample_masks(options, training=False, **kwargs)
    assert evaluation == (None, None, None, 0.3, 0.2)  # no dropout; zoneout as its rate
    assert masks.at(2).zoneout_c.shape == (2, 4) and masks.at(2).input is masks.input
