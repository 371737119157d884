"""The export form of a layer equals the layer; ONNX's weight layout round-trips."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

import rnnkit
from rnnkit import GRUCell, LSTMCell, Recurrent
from rnnkit.export import ExportError
from rnnkit.export.native import onnx_weights, torch_weights
from rnnkit.export.recurrence import ExportedRecurrence, export_form, native_cell
from tests.helpers import assert_close, leaves
from tests.layers.test_recurrent import SCRNCell

LAYERS: dict[str, Callable[[], nn.Module]] = {
    "lstm-bi-2": lambda: rnnkit.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True),
    "gru-time-major": lambda: rnnkit.GRU(3, 5, num_layers=2),
    "rnn-relu": lambda: rnnkit.RNN(3, 5, nonlinearity="relu", bidirectional=True),
    "lstm-peephole": lambda: rnnkit.LSTM(3, 5, peephole=True, bidirectional=True),
    "lstm-projection": lambda: rnnkit.LSTM(3, 5, proj_size=2, batch_first=True),
    "gru-layer-norm-zoneout": lambda: rnnkit.GRU(3, 5, layer_norm=True, zoneout_h=0.3),
    "recurrent-sum-last": lambda: Recurrent(
        LSTMCell(3, 5), bidirectional=True, merge_mode="sum", return_sequences=False
    ),
    "recurrent-ave": lambda: Recurrent(
        lambda n: GRUCell(n, 4), input_size=3, num_layers=2, bidirectional=True, merge_mode="ave"
    ),
    "recurrent-user-cell": lambda: Recurrent(SCRNCell(3, 5), num_layers=1, batch_first=True),
}


@pytest.mark.parametrize("form", ["scan", "native"])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_the_export_form_computes_what_the_layer_computes(name: str, form: str) -> None:
    layer = LAYERS[name]().eval()
    batch_first = getattr(layer, "batch_first", False)
    x = torch.randn(4, 7, 3) if batch_first else torch.randn(7, 4, 3)
    lengths = torch.tensor([7, 1, 0, 4])
    with torch.no_grad():
        expected = layer(x, lengths=lengths)
        actual = ExportedRecurrence(layer, form=form)(x, lengths=lengths)
    for a, e in zip(leaves(actual), leaves(expected), strict=True):
        assert_close(a, e, what=f"{name} ({form})")


@pytest.mark.parametrize("name", ["lstm-bi-2", "gru-time-major", "rnn-relu", "lstm-peephole"])
def test_onnx_weights_round_trip_to_torch_layout(name: str) -> None:
    layer = LAYERS[name]()
    for k in range(layer.num_layers):
        for d in range(layer.num_directions):
            cell = native_cell(layer, k, d)
            assert cell is not None
            back = torch_weights(cell.family, onnx_weights(cell))
            for ours, theirs in zip(back, cell.weights, strict=True):
                assert (ours is None) == (theirs is None)
                if ours is not None:
                    assert torch.equal(ours, theirs)


def test_only_the_cells_onnx_has_operators_for_run_natively() -> None:
    assert native_cell(LAYERS["lstm-projection"](), 0, 0) is None
    assert native_cell(LAYERS["gru-layer-norm-zoneout"](), 0, 0) is None
    assert native_cell(LAYERS["recurrent-user-cell"](), 0, 0) is None
    assert native_cell(LAYERS["recurrent-sum-last"](), 0, 1) is not None


def test_export_form_swaps_every_layer_and_refuses_training_noise() -> None:
    model = nn.Sequential()
    model.add_module("a", rnnkit.LSTM(3, 4, zoneout_h=0.2))
    model.add_module("b", Recurrent(GRUCell(4, 4)))
    export_form(model, form="scan")
    assert all(isinstance(m, ExportedRecurrence) for m in model)
    with pytest.raises(ExportError, match="eval mode"):
        model.a.train()(torch.randn(5, 2, 3))
    with pytest.raises(ExportError, match="knows the rnnkit layers"):
        ExportedRecurrence(nn.LSTM(3, 4))  # type: ignore[arg-type]
