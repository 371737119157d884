"""Layers: run cells over time.

* :class:`RNN`, :class:`LSTM`, :class:`GRU` — drop-ins for ``torch.nn``'s layers.
* :class:`Recurrent` — any cell, stacked and bidirectional, with ragged lengths.
* :class:`TimeDistributed`, :func:`last_step` — Keras-style conveniences.
"""

from rnnkit.layers.recurrent import Recurrent
from rnnkit.layers.standard import ENGINES, GRU, LSTM, RNN, use_engine
from rnnkit.layers.wrappers import TimeDistributed, last_step

__all__ = [
    "ENGINES",
    "GRU",
    "LSTM",
    "RNN",
    "Recurrent",
    "TimeDistributed",
    "last_step",
    "use_engine",
]
