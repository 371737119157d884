"""Recurrent cells: one time step each, readable gate by gate.

See :mod:`rnnkit.cells.base` for the cell protocol a custom cell implements;
:mod:`~rnnkit.cells.mingru` holds minGRU and minLSTM, cells linear in their state. The variants
live in four modules, one idea each: :mod:`~rnnkit.cells.options` (the keywords and their
checks), :mod:`~rnnkit.cells.masks` (the noise of one sequence),
:mod:`~rnnkit.cells.variant_steps` (the reference steps) and
:mod:`~rnnkit.cells.variants` (the cells).
"""

from rnnkit.cells.base import (
    Cell,
    CellFactory,
    Device,
    DType,
    LinearCell,
    LinearCoefficients,
    LSTMState,
    RecurrentCell,
    RNNCellBase,
    State,
    map_state,
    state_leaves,
)
from rnnkit.cells.gru import GRUCell, GRUGates, gru_gates, gru_step
from rnnkit.cells.lstm import LSTMCell, LSTMGates, lstm_gates, lstm_step
from rnnkit.cells.masks import VariantMasks, sample_masks
from rnnkit.cells.mingru import (
    MinGRUCell,
    MinGRUGates,
    MinLSTMCell,
    MinLSTMGates,
    mingru_coefficients,
    mingru_gates,
    mingru_step,
    minlstm_coefficients,
    minlstm_gates,
    minlstm_step,
)
from rnnkit.cells.options import (
    LSTMVariantKwargs,
    VariantKwargs,
    VariantOptions,
    VariantWeights,
)
from rnnkit.cells.rnn import RNNCell, rnn_step
from rnnkit.cells.variants import GRUVariantCell, LSTMVariantCell, RNNVariantCell, VariantCell

__all__ = [
    "Cell",
    "CellFactory",
    "DType",
    "Device",
    "GRUCell",
    "GRUGates",
    "GRUVariantCell",
    "LSTMCell",
    "LSTMGates",
    "LSTMState",
    "LSTMVariantCell",
    "LSTMVariantKwargs",
    "LinearCell",
    "LinearCoefficients",
    "MinGRUCell",
    "MinGRUGates",
    "MinLSTMCell",
    "MinLSTMGates",
    "RNNCell",
    "RNNCellBase",
    "RNNVariantCell",
    "RecurrentCell",
    "State",
    "VariantCell",
    "VariantKwargs",
    "VariantMasks",
    "VariantOptions",
    "VariantWeights",
    "gru_gates",
    "gru_step",
    "lstm_gates",
    "lstm_step",
    "map_state",
    "mingru_coefficients",
    "mingru_gates",
    "mingru_step",
    "minlstm_coefficients",
    "minlstm_gates",
    "minlstm_step",
    "rnn_step",
    "sample_masks",
    "state_leaves",
]
