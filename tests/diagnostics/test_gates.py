"""Gate statistics: hand-checkable cases, saturation fractions, parity with the cells."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import rnnkit
from rnnkit.cells import lstm_gates
from rnnkit.diagnostics import SATURATION_HIGH, SATURATION_LOW, LayerFlow, gradient_flow

H = 4


def _set_biases(layer: nn.Module, chunks: list[list[float]]) -> None:
    """Zero every weight; ``bias_ih`` = the given per-gate unit values, ``bias_hh`` = 0."""
    with torch.no_grad():
        for name, param in layer.named_parameters():
            param.zero_()
            if name.startswith("bias_ih"):
                param.copy_(torch.tensor([v for chunk in chunks for v in chunk]))


def _flow(layer: nn.Module, x: torch.Tensor, **kwargs: object) -> LayerFlow:
    return gradient_flow(layer, lambda: layer(x, **kwargs)[0].sum()).layers[0]


def test_lstm_gates_on_a_hand_checkable_case() -> None:
    """Zero weights: every gate is its bias through its activation, at every step."""
    layer = rnnkit.LSTM(2, H)
    _set_biases(layer, [[0.0] * H, [10.0] * H, [0.5] * H, [-10.0] * H])  # i, f, g, o
    gates = _flow(layer, torch.randn(3, 2, 2)).gates
    assert list(gates) == ["i", "f", "g", "o"]
    assert gates["i"].mean == pytest.approx(0.5)
    assert (gates["i"].saturated_low, gates["i"].saturated_high) == (0.0, 0.0)
    assert gates["f"].mean == pytest.approx(torch.sigmoid(torch.tensor(10.0)).item())
    assert (gates["f"].saturated_low, gates["f"].saturated_high, gates["f"].saturated) == (0, 1, 1)
    assert (gates["o"].saturated_low, gates["o"].saturated_high) == (1.0, 0.0)
    assert gates["g"].mean == pytest.approx(torch.tanh(torch.tensor(0.5)).item())
    assert gates["g"].saturated is None  # a tanh candidate is not a 0..1 switch


def test_saturation_fractions_count_units_on_each_side() -> None:
    layer = rnnkit.GRU(2, H)
    r = [-10.0, -10.0, 0.0, 10.0]  # half shut, a quarter open
    z = [
        -2.9,
        -3.0,
        2.9,
        3.0,
    ]  # σ(±2.9) ≈ 0.052 / 0.948 are not saturated; σ(±3) ≈ 0.047 / 0.953 are
    _set_biases(layer, [r, z, [0.0] * H])
    gates = _flow(layer, torch.randn(5, 3, 2)).gates
    assert list(gates) == ["r", "z", "n"]
    assert (gates["r"].saturated_low, gates["r"].saturated_high) == (0.5, 0.25)
    assert (gates["z"].saturated_low, gates["z"].saturated_high) == (0.25, 0.25)
    assert gates["n"].saturated is None
    assert (SATURATION_LOW, SATURATION_HIGH) == (0.05, 0.95)


def test_lstm_gate_means_equal_the_cells_gates_on_the_real_steps() -> None:
    """Recomputed from recorded steps = lstm_gates on the layer's own per-step states."""
    layer = rnnkit.LSTM(3, H, bidirectional=True, batch_first=True)
    x, lengths = torch.randn(3, 6, 3), torch.tensor([6, 2, 4])
    report = gradient_flow(layer, lambda: layer(x, lengths=lengths)[0].sum())
    _, _, states = layer(x, lengths=lengths, return_states=True)  # h: (2, B, T, H)
    h_prev = torch.cat([states.h.new_zeros(2, 3, 1, H), states.h[:, :, :-1]], dim=2)
    valid = torch.arange(6).unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)
    forward = lstm_gates(
        x[valid], h_prev[0][valid], layer.weight_ih_l0, layer.weight_hh_l0,
        layer.bias_ih_l0, layer.bias_hh_l0,
    )  # fmt: skip
    flow = report.layer(direction="forward")
    for name, value in zip(forward._fields, forward, strict=True):
        assert flow.gates[name].mean == pytest.approx(value.mean().item(), abs=1e-6), name
    assert report.layer(direction="backward").gates["f"].mean != pytest.approx(flow.gates["f"].mean)


def test_recurrent_with_built_in_cells_reports_the_same_gates_as_the_drop_in() -> None:
    layer = rnnkit.GRU(2, H)
    cell = rnnkit.GRUCell(2, H)
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in layer.state_dict().items()})
    x = torch.randn(5, 2, 2)
    ours, theirs = _flow(layer, x), _flow(rnnkit.Recurrent(cell), x)
    assert ours.cell == theirs.cell == "gru"
    for name in ("r", "z", "n"):
        assert ours.gates[name].mean == pytest.approx(theirs.gates[name].mean, abs=1e-6)


def test_no_gates_for_a_vanilla_rnn_or_a_subclassed_cell() -> None:
    class PeepholeLSTMCell(rnnkit.LSTMCell):
        """A subclass may change the gate equations: no statistics from the wrong ones."""

    x = torch.randn(3, 1, 2)
    assert _flow(rnnkit.RNN(2, H), x).gates == {}
    flow = _flow(rnnkit.Recurrent(PeepholeLSTMCell(2, H)), x)
    assert (flow.cell, flow.gates, flow.fields) == ("PeepholeLSTMCell", {}, ("h", "c"))
