"""Every model kind and every cell family, exported to ONNX and torch.export, equals the
eager model on ragged batches of other sizes than the traced one."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch import nn

from rnnkit import LSTMVariantCell, Recurrent
from rnnkit.models import InputSpec, RecurrentSpec, SequenceTagger, TaggerConfig
from tests.export.parity import assert_exports_faithfully
from tests.layers.test_recurrent import SCRNCell
from tests.models.cases import CASES

FORMATS = ("onnx", "torch-export")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", sorted(CASES))
def test_every_model_kind_exports_faithfully(kind: str, fmt: str, tmp_path: Path) -> None:
    assert_exports_faithfully(CASES[kind]("lstm").model, kind, fmt, tmp_path)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_every_model_kind_with_gru_exports_faithfully_to_onnx(kind: str, tmp_path: Path) -> None:
    assert_exports_faithfully(CASES[kind]("gru").model, kind, "onnx", tmp_path)


def _tagger(cell: str, **options: object) -> nn.Module:
    spec = RecurrentSpec(cell, hidden_size=6, num_layers=2, bidirectional=True, options=options)
    config = TaggerConfig(input=InputSpec("linear", input_size=3, embedding_dim=4), rnn=spec)
    return SequenceTagger(config)


def _recurrent_tagger(cell: object) -> nn.Module:
    model = _tagger("gru")
    model.rnn = Recurrent(cell, bidirectional=True, batch_first=True)  # type: ignore[arg-type]
    model.head = nn.Linear(model.rnn.output_size, 2)
    return model


FAMILIES = {
    "rnn-tanh": lambda: _tagger("rnn"),
    "rnn-relu": lambda: _tagger("rnn_relu"),
    "gru": lambda: _tagger("gru"),
    "lstm-layer-norm": lambda: _tagger("lstm", layer_norm=True),
    "gru-layer-norm": lambda: _tagger("gru", layer_norm=True),
    "lstm-peephole": lambda: _tagger("lstm", peephole=True),
    "lstm-zoneout": lambda: _tagger("lstm", zoneout_h=0.3, zoneout_c=0.2, recurrent_dropout=0.2),
    "variant-cell-in-recurrent": lambda: _recurrent_tagger(
        LSTMVariantCell(4, 5, layer_norm=True, peephole=True, zoneout_c=0.1)
    ),
    "user-cell-in-recurrent": lambda: _recurrent_tagger(SCRNCell(4, 5)),
    "mingru": lambda: _tagger("mingru"),
    "minlstm": lambda: _tagger("minlstm"),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_cell_family_exports_faithfully(family: str, fmt: str, tmp_path: Path) -> None:
    assert_exports_faithfully(FAMILIES[family](), "tagger", fmt, tmp_path)
