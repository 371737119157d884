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

__all__ = [
    "Cell",
    "CellFactory",
    "GRUCell",
    "GRUGates",
    "LSTMCell",
    "LSTMGates",
    "LSTMState",
    "RNNCell",
    "RecurrentCell",
    "State",
    "gru_gates",
    "gru_step",
    "lstm_gates",
    "lstm_step",
    "map_state",
    "rnn_step",
    "state_leaves",
]
