"""rnnkit: recurrent neural networks on PyTorch that teach, train and run fast.

Cells (one step, readable gate by gate) → layers (any cell over time) → models.
"""

from rnnkit.cells import (
    Cell,
    GRUCell,
    GRUVariantCell,
    LSTMCell,
    LSTMState,
    LSTMVariantCell,
    MinGRUCell,
    MinLSTMCell,
    RecurrentCell,
    RNNCell,
    RNNVariantCell,
    VariantOptions,
)
from rnnkit.layers import (
    GRU,
    LSTM,
    RNN,
    MinGRU,
    MinLSTM,
    Recurrent,
    TimeDistributed,
    last_step,
)

__version__ = "0.1.0"

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Cell",
    "GRUCell",
    "GRUVariantCell",
    "LSTMCell",
    "LSTMState",
    "LSTMVariantCell",
    "MinGRU",
    "MinGRUCell",
    "MinLSTM",
    "MinLSTMCell",
    "RNNCell",
    "RNNVariantCell",
    "Recurrent",
    "RecurrentCell",
    "TimeDistributed",
    "VariantOptions",
    "__version__",
    "last_step",
]
