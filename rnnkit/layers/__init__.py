"""Layers: run cells over time.

* :class:`RNN`, :class:`LSTM`, :class:`GRU` — drop-ins for ``torch.nn``'s layers.
* :class:`MinGRU`, :class:`MinLSTM` — the minimal cells as layers, on the scan engine.
* :class:`Recurrent` — any cell, stacked and bidirectional, with ragged lengths.
* :class:`TimeDistributed`, :func:`last_step` — Keras-style conveniences.
* :func:`use_engine` — switch every layer of a model to one engine for a block.
* :func:`run_stack` — the one path that stacks (layer, direction) runners of any engine.
* :class:`MaskedCell` — the protocol of a cell whose noise is drawn once per sequence.

Every layer shares :class:`~rnnkit.layers.stacked.StackedLayer` (the engine rule and
the stacked run); :mod:`rnnkit.layers.sequence` turns inputs into one time-major batch
and back.
"""

from rnnkit.layers.masked import MaskedCell
from rnnkit.layers.minimal import MinGRU, MinLSTM
from rnnkit.layers.recurrent import Recurrent
from rnnkit.layers.stacked import MERGE_MODES, StackedLayer, run_stack, use_engine
from rnnkit.layers.standard import ENGINES, GRU, LSTM, RNN
from rnnkit.layers.wrappers import TimeDistributed, last_step

__all__ = [
    "ENGINES",
    "GRU",
    "LSTM",
    "MERGE_MODES",
    "RNN",
    "MaskedCell",
    "MinGRU",
    "MinLSTM",
    "Recurrent",
    "StackedLayer",
    "TimeDistributed",
    "last_step",
    "run_stack",
    "use_engine",
]
