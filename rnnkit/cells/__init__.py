"""Recurrent cells: one time step each, readable gate by gate.

See :mod:`rnnkit.cells.base` for the cell protocol a custom cell implements.
"""

from rnnkit.cells.base import (
    Cell,
    CellFactory,
    LSTMState,
    RecurrentCell,
    State,
    map_state,
    state_leaves,
)
from rnnkit.cells.gru import GRUCell, GRUGates, gru_gates, gru_step
from rnnkit.cells.lstm import LSTMCell, LSTMGates, lstm_gates, lstm_step
from rnnkit.cells.rnn import RNNCell, rnn_step
from rnnkit.cells.variants import (
    GRUVariantCell,
    LSTMVariantCell,
    MaskedCell,
    RNNVariantCell,
    VariantCell,
    VariantMasks,
    VariantOptions,
    VariantWeights,
    sample_masks,
)

__all__ = [
    "Cell",
    "CellFactory",
    "GRUCell",
    "GRUGates",
    "GRUVariantCell",
    "LSTMCell",
    "LSTMGates",
    "LSTMState",
    "LSTMVariantCell",
    "MaskedCell",
    "RNNCell",
    "RNNVariantCell",
    "RecurrentCell",
    "State",
    "VariantCell",
    "VariantMasks",
    "VariantOptions",
    "VariantWeights",
    "gru_gates",
    "gru_step",
    "lstm_gates",
    "lstm_step",
    "map_state",
    "rnn_step",
    "sample_masks",
    "state_leaves",
]
