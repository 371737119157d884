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
from rnnkit.cells.gru import GRUCell, gru_step
from rnnkit.cells.lstm import LSTMCell, lstm_step
from rnnkit.cells.rnn import RNNCell, rnn_step

__all__ = [
    "Cell",
    "CellFactory",
    "GRUCell",
    "LSTMCell",
    "LSTMState",
    "RNNCell",
    "RecurrentCell",
    "State",
    "gru_step",
    "lstm_step",
    "map_state",
    "rnn_step",
    "state_leaves",
]
