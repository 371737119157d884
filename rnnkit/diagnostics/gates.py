"""Gate statistics, recomputed from recorded steps with the layer's own weights.

The cells' code is not instrumented: for each recorded step the gates are computed
again by the very functions the cells run (:func:`rnnkit.cells.lstm_gates`,
:func:`rnnkit.cells.gru_gates`, :func:`rnnkit.cells.mingru_gates`,
:func:`rnnkit.cells.minlstm_gates`) on the step's recorded input and incoming state.
That needs to know a cell's *family* (which gate function and which weights), so
gate statistics exist for the built-in families only; a user cell reports gradients
without gates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from rnnkit.cells.base import State, map_state
from rnnkit.cells.gru import GRUCell, gru_gates
from rnnkit.cells.lstm import LSTMCell, lstm_gates
from rnnkit.cells.mingru import MinGRUCell, MinLSTMCell, mingru_gates, minlstm_gates
from rnnkit.cells.rnn import RNNCell
from rnnkit.diagnostics.report import SATURATION_HIGH, SATURATION_LOW, GateStats
from rnnkit.engines.loop import StepRecord
from rnnkit.layers.minimal import MinGRU, MinLSTM
from rnnkit.layers.recurrent import Recurrent

Weights = dict[str, Tensor | None]
GateFn = Callable[[Tensor, State, Weights], NamedTuple]
"""``(x (N, I), incoming state (N, ...), weights) -> gates``, each gate ``(N, H)``."""


@dataclass(frozen=True)
class GateFamily:
    """How to recompute the gates of one cell family.

    Attributes:
        name: ``"lstm"``, ``"gru"``, ``"mingru"`` or ``"minlstm"``.
        gates: the gate function.
        sigmoid: names of the gates that are sigmoids (0..1 switches), whose
            saturation is counted.
        weights: the parameters it takes, by torch.nn name.
    """

    name: str
    gates: GateFn
    sigmoid: frozenset[str]
    weights: tuple[str, ...] = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


LSTM_GATES = GateFamily("lstm", lambda x, s, w: lstm_gates(x, s.h, **w), frozenset({"i", "f", "o"}))
GRU_GATES = GateFamily("gru", lambda x, s, w: gru_gates(x, s, **w), frozenset({"r", "z"}))
# The minimal cells' gates read x_t only; minLSTM's are the normalised f', i'.
_INPUT_ONLY = ("weight_ih", "bias_ih")
MINGRU_GATES = GateFamily(
    "mingru", lambda x, s, w: mingru_gates(x, **w), frozenset({"z"}), _INPUT_ONLY
)
MINLSTM_GATES = GateFamily(
    "minlstm", lambda x, s, w: minlstm_gates(x, **w), frozenset({"i", "f"}), _INPUT_ONLY
)
_MINIMAL_LAYERS: dict[type, tuple[str, GateFamily]] = {
    MinGRU: ("mingru", MINGRU_GATES),
    MinLSTM: ("minlstm", MINLSTM_GATES),
}

_LAYER_MODES: dict[str, tuple[str, GateFamily | None]] = {
    "LSTM": ("lstm", LSTM_GATES),
    "GRU": ("gru", GRU_GATES),
    "RNN_TANH": ("rnn", None),
    "RNN_RELU": ("rnn_relu", None),
}
"""torch.nn.RNNBase ``mode`` → (cell name, gate family): what the fused kernels compute."""

# Exact types, not isinstance: a subclass of LSTMCell may change its gates (peepholes,
# layer norm), and statistics from the wrong equations would mislead.
_CELL_TYPES: dict[type, tuple[str, GateFamily | None]] = {
    LSTMCell: ("lstm", LSTM_GATES),
    GRUCell: ("gru", GRU_GATES),
    RNNCell: ("rnn", None),
    MinGRUCell: ("mingru", MINGRU_GATES),
    MinLSTMCell: ("minlstm", MINLSTM_GATES),
}


class CellSource(NamedTuple):
    """What ran one (layer, direction): the cell's name, its gate family and weights."""

    cell: str
    family: GateFamily | None
    weights: Weights


def cell_source(module: nn.Module | None, layer: int, direction: int) -> CellSource:
    """Identify the cell of ``module``'s ``layer`` and ``direction`` (0 forward, 1 backward).

    Drop-in layers (anything with torch.nn's ``mode`` and parameter names) are known
    by their mode, ``MinGRU``/``MinLSTM`` by their type; :class:`Recurrent` by the exact
    type of the cell.
    """
    if module is None:
        return CellSource("unknown", None, {})
    mode = getattr(module, "mode", None)
    suffix = f"_l{layer}" + ("_reverse" if direction else "")
    if isinstance(module, nn.RNNBase) and mode in _LAYER_MODES:
        name, family = _LAYER_MODES[mode]
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        return CellSource(name, family, {n: getattr(module, n + suffix, None) for n in names})
    if type(module) in _MINIMAL_LAYERS:
        name, family = _MINIMAL_LAYERS[type(module)]
        weights = {n: getattr(module, n + suffix, None) for n in family.weights}
        return CellSource(name, family, weights)
    if isinstance(module, Recurrent):
        cell = module.cell(layer, direction)
        name, family = _CELL_TYPES.get(type(cell), (type(cell).__name__, None))
        weights = {n: getattr(cell, n) for n in family.weights} if family is not None else {}
        return CellSource(name, family, weights)
    return CellSource(type(module).__name__, None, {})


@torch.no_grad()
def gate_stats(
    family: GateFamily, weights: Weights, records: Sequence[StepRecord]
) -> dict[str, GateStats]:
    """Mean and saturation of every gate over the real steps of one scan.

    Arguments:
        family: the cell family.
        weights: the (layer, direction)'s parameters by torch.nn name.
        records: the scan's steps (:class:`rnnkit.engines.StepRecord`).

    Returns:
        Per gate name, a :class:`GateStats` over all units of all real ``(t, b)``;
        empty when no step is real.
    """
    x, state = _valid_inputs(records)  # (N, I), leaves (N, ...)
    if x.shape[0] == 0:  # no sequence had a real step in this scan
        return {}
    weights = {k: None if w is None else w.detach() for k, w in weights.items()}
    gates = family.gates(x, state, weights)
    return {
        name: _stats(value, sigmoid=name in family.sigmoid)
        for name, value in zip(gates._fields, gates, strict=True)
    }


def _valid_inputs(records: Sequence[StepRecord]) -> tuple[Tensor, State]:
    """Every real step's input and incoming state, flattened to one batch of ``N`` rows."""
    x = torch.stack([r.x.detach() for r in records])  # (T, B, I)
    state: Any = map_state(
        lambda *s: torch.stack([t.detach() for t in s]), *[r.state_in for r in records]
    )  # leaves (T, B, ...)
    if records[0].valid is None:
        return x.flatten(0, 1), map_state(lambda s: s.flatten(0, 1), state)
    valid = torch.stack([r.valid for r in records])  # (T, B)
    return x[valid], map_state(lambda s: s[valid], state)


def _stats(value: Tensor, *, sigmoid: bool) -> GateStats:
    mean = float(value.mean())
    if not sigmoid:
        return GateStats(mean)
    low = float((value < SATURATION_LOW).float().mean())
    high = float((value > SATURATION_HIGH).float().mean())
    return GateStats(mean, low, high)
