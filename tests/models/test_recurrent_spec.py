"""RecurrentSpec → layers, through the layer registry."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import rnnkit
from rnnkit.models import LAYERS, RecurrentSpec, build_recurrent, register_layer


@pytest.mark.parametrize(
    ("cell", "cls"),
    [("rnn", rnnkit.RNN), ("rnn_relu", rnnkit.RNN), ("lstm", rnnkit.LSTM), ("gru", rnnkit.GRU)],
)
def test_standard_cells_build_drop_in_layers(cell: str, cls: type) -> None:
    spec = RecurrentSpec(cell, hidden_size=6, num_layers=2, bidirectional=True, dropout=0.1)
    layer = build_recurrent(spec, 4)
    assert isinstance(layer, cls) and layer.batch_first and layer.dropout == 0.1
    out, _ = layer(torch.randn(3, 5, 4), lengths=torch.tensor([5, 3, 1]))
    assert out.shape == (3, 5, spec.output_size) == (3, 5, 12)
    if cell == "rnn_relu":
        assert layer.nonlinearity == "relu"


def test_single_layer_drops_inter_layer_dropout() -> None:
    """torch.nn warns on dropout with one layer: it would do nothing."""
    assert build_recurrent(RecurrentSpec("gru", 4, num_layers=1, dropout=0.5), 3).dropout == 0.0


def test_custom_cell_by_name() -> None:
    class Doubler(nn.Module):
        def __init__(self, input_size: int, hidden_size: int) -> None:
            super().__init__()
            self.input_size, self.output_size = input_size, hidden_size
            self.lin = nn.Linear(input_size + hidden_size, hidden_size)

        def init_state(self, batch_size: int, *, device=None, dtype=None) -> torch.Tensor:
            return torch.zeros(batch_size, self.output_size, device=device, dtype=dtype)

        def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h = torch.tanh(self.lin(torch.cat([x, h], dim=-1)))
            return h, h

    register_layer("test_doubler", Doubler, description="test only")
    try:
        layer = build_recurrent(
            RecurrentSpec("test_doubler", 5, num_layers=2, bidirectional=True), 3
        )
        out, h = layer(torch.randn(2, 4, 3), lengths=torch.tensor([4, 2]))
        assert (
            isinstance(layer, rnnkit.Recurrent) and out.shape == (2, 4, 10) and h.shape == (4, 2, 5)
        )
    finally:
        LAYERS._items.pop("test_doubler")
        LAYERS._descriptions.pop("test_doubler")
