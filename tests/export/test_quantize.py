"""Dynamic int8: PyTorch's kernels behind the layers' call, and ONNX Runtime's quantiser."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import torch

import rnnkit
from rnnkit.export import ExportError, export_model, quantize_model
from rnnkit.export.exporter import relative_error
from rnnkit.export.quantize import QuantizedLayer
from tests.export.test_parity import _tagger
from tests.models.cases import CASES


@pytest.mark.parametrize("cls", [rnnkit.LSTM, rnnkit.GRU])
@pytest.mark.parametrize("batch_first", [True, False])
def test_a_quantized_layer_is_called_as_the_layer_and_stays_close(
    cls: type, batch_first: bool
) -> None:
    layer = cls(6, 16, num_layers=2, bidirectional=True, batch_first=batch_first).eval()
    int8 = QuantizedLayer(layer)
    x = torch.randn(4, 9, 6) if batch_first else torch.randn(9, 4, 6)
    lengths = torch.tensor([9, 1, 5, 7])
    with torch.no_grad():
        expected, final = layer(x, lengths=lengths)
        actual, int8_final = int8(x, lengths=lengths)
    assert relative_error(actual, expected) < 0.05
    assert type(int8_final) is type(final)
    for a, e in zip(
        rnnkit.cells.state_leaves(int8_final), rnnkit.cells.state_leaves(final), strict=True
    ):
        assert relative_error(a, e) < 0.05


@pytest.mark.parametrize("kind", ["classifier", "forecaster", "language_model"])
def test_quantize_model_swaps_the_layers_and_keeps_the_outputs_close(kind: str) -> None:
    case = CASES[kind]("lstm")
    model = case.model.eval()
    int8 = quantize_model(model)
    assert not any(isinstance(m, rnnkit.LSTM) for m in int8.modules())
    assert any(isinstance(m, QuantizedLayer) for m in int8.modules())
    inputs = case.batch[:2] if kind == "classifier" else case.batch[:1]
    with torch.no_grad():
        expected, actual = model(*inputs), int8(*inputs)
    expected = expected[0] if isinstance(expected, tuple) else expected
    actual = actual[0] if isinstance(actual, tuple) else actual
    assert relative_error(actual, expected) < 0.05


def test_quantize_model_refuses_variants() -> None:
    with pytest.raises(ExportError, match="no int8 kernel"):
        quantize_model(_tagger("lstm", layer_norm=True))


def test_onnx_int8_quantizes_the_lstm_and_matmuls(tmp_path: Path) -> None:
    model = CASES["classifier"]("lstm").model.eval()
    result = export_model(model, "onnx", tmp_path / "int8.onnx", kind="classifier", quantize="int8")
    ops = {node.op_type for node in onnx.load(str(result.files["model"])).graph.node}
    assert "DynamicQuantizeLSTM" in ops and "LSTM" not in ops
    assert 0 < result.quantized_errors["model"] < 0.05
