"""The variant options: one keyword list, validation, and the initialisation options."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import rnnkit
from rnnkit.cells.options import LSTM_ONLY, LSTMVariantKwargs, VariantKwargs, VariantOptions
from tests.helpers import assert_close


def test_the_keyword_lists_are_the_options_fields() -> None:
    fields = {f.name: f.type for f in dataclasses.fields(VariantOptions)}  # types as strings
    keywords = LSTMVariantKwargs.__annotations__
    assert {name: ref.__forward_arg__ for name, ref in keywords.items()} == fields
    assert set(VariantKwargs.__annotations__) == set(fields) - set(LSTM_ONLY)
    assert LSTM_ONLY == ("peephole", "zoneout_c", "forget_bias")


@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: rnnkit.LSTM(3, 4, **kw),
        lambda **kw: rnnkit.GRU(3, 4, **kw),
        lambda **kw: rnnkit.RNN(3, 4, **kw),
        lambda **kw: rnnkit.LSTMVariantCell(3, 4, **kw),
        lambda **kw: rnnkit.GRUVariantCell(3, 4, **kw),
        lambda **kw: rnnkit.RNNVariantCell(3, 4, **kw),
    ],
)
def test_an_unknown_keyword_is_a_type_error_that_names_it(make) -> None:
    with pytest.raises(TypeError, match=r"unexpected keyword argument.*'layer_nrom'"):
        make(layer_nrom=True)


def test_initialisation_options() -> None:
    torch.manual_seed(0)
    layer = rnnkit.LSTM(
        3, 4, num_layers=2, layer_norm=True, forget_bias=1.0, recurrent_init="orthogonal"
    )
    for k in range(2):
        w = layer.variant_weights(k, 0)
        forget = slice(4, 8)
        assert torch.all(w.bias_ih[forget] == 1.0) and torch.all(w.bias_hh[forget] == 0.0)
        for block in w.weight_hh.detach().split(4):
            assert_close(block @ block.T, torch.eye(4), what="orthogonal gate block")
        assert torch.all(w.ln_weight_hh == 1) and torch.all(w.ln_bias_c == 0)
    with torch.no_grad():
        layer.ln_weight_hh_l0.fill_(3.0)
    layer.reset_parameters()  # torch's init, then the variant's again
    assert torch.all(layer.ln_weight_hh_l0 == 1) and torch.all(layer.bias_ih_l1[4:8] == 1)
    cell = rnnkit.LSTMVariantCell(3, 4, peephole=True, forget_bias=2.0)
    assert torch.all(cell.bias_ih[4:8] == 2.0) and cell.weight_co.abs().max() <= 0.5
    assert rnnkit.GRU(3, 4, recurrent_init="orthogonal").active_engine == "fused"


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: rnnkit.LSTMVariantCell(3, 4, zoneout_h=1.0), ValueError, r"zoneout_h in \[0, 1\)"),
        (lambda: rnnkit.LSTMVariantCell(3, 4, input_dropout=-0.1), ValueError, "input_dropout"),
        (lambda: rnnkit.LSTMVariantCell(3, 4, weight_drop=True), TypeError, "weight_drop"),
        (lambda: rnnkit.LSTMVariantCell(3, 4, layer_norm=1), TypeError, "True or False"),
        (lambda: rnnkit.LSTMVariantCell(3, 4, recurrent_init="he"), ValueError, "recurrent_init"),
        (lambda: rnnkit.LSTMVariantCell(3, 4, bias=False, forget_bias=1.0), ValueError, "bias"),
        (lambda: rnnkit.GRUVariantCell(3, 4, peephole=True), ValueError, "an LSTM option"),
        (lambda: rnnkit.RNNVariantCell(3, 4, forget_bias=1.0), ValueError, "forget gate"),
        (lambda: rnnkit.GRUVariantCell(3, 4, zoneot_h=0.1), TypeError, "zoneot_h"),
        (lambda: rnnkit.RNNVariantCell(3, 4, nonlinearity="gelu"), ValueError, "nonlinearity"),
        (lambda: rnnkit.GRUVariantCell(0, 4), ValueError, "input_size"),
    ],
)
def test_bad_options_are_explained(make, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        make()
