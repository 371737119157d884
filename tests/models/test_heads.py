"""The MLP head and the config fields it is built from."""

from __future__ import annotations

import torch

from rnnkit.models.classifier import ClassifierConfig
from rnnkit.models.heads import MLP


def test_from_config_reads_the_head_fields() -> None:
    config = ClassifierConfig(head_hidden=(7, 5), head_dropout=0.25, head_activation="elu")
    head = MLP.from_config(11, 3, config)
    by_hand = MLP(11, (7, 5), 3, dropout=0.25, activation="elu")
    assert repr(head) == repr(by_hand)
    assert [p.shape for p in head.parameters()] == [p.shape for p in by_hand.parameters()]
    assert head(torch.randn(2, 11)).shape == (2, 3)
