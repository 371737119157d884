"""rnnkit: recurrent neural networks on PyTorch that teach, train and run fast.

Cells (one step, readable gate by gate) → layers (any cell over time) → models.
To train on your own data and use the result: :func:`fit`, :func:`load` and
:class:`Run` (:mod:`rnnkit.api`; loaded on first use, so ``import rnnkit`` stays light).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from rnnkit.api import Predictions, Run, fit, load

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
    "Predictions",
    "RNNCell",
    "RNNVariantCell",
    "Recurrent",
    "RecurrentCell",
    "Run",
    "TimeDistributed",
    "VariantOptions",
    "__version__",
    "fit",
    "last_step",
    "load",
]

_API = ("Predictions", "Run", "fit", "load")


def __getattr__(name: str) -> Any:
    # The training API imports Lightning on use; `import rnnkit` stays the cells and layers.
    if name in _API:
        return getattr(importlib.import_module("rnnkit.api"), name)
    raise AttributeError(f"module 'rnnkit' has no attribute {name!r}")
