"""The built-in cells' registrations with the BPTT engine.

The plain cells (:class:`rnnkit.RNNCell`, :class:`rnnkit.LSTMCell` without projection,
:class:`rnnkit.GRUCell`) run as variants with every option off; the variant cells run
with their options and the masks their layer drew for the sequence.
"""

from __future__ import annotations

import functools
from typing import Any

from rnnkit.cells.gru import GRUCell
from rnnkit.cells.lstm import LSTMCell
from rnnkit.cells.rnn import RNNCell
from rnnkit.cells.variants import (
    GRUVariantCell,
    LSTMVariantCell,
    RNNVariantCell,
    VariantCell,
    VariantMasks,
    VariantOptions,
    VariantWeights,
)
from rnnkit.engines.bptt.elman import elman_scan
from rnnkit.engines.bptt.gru import gru_scan
from rnnkit.engines.bptt.lstm import lstm_scan
from rnnkit.engines.bptt.registry import SequenceRunner, register_cell

SCANS = {"rnn": elman_scan, "lstm": lstm_scan, "gru": gru_scan}
"""The BPTT engine's scan per cell family."""

_PLAIN = VariantOptions()


def family_runner(
    family: str,
    weights: VariantWeights,
    options: VariantOptions,
    masks: VariantMasks | None,
    *,
    nonlinearity: str = "tanh",
) -> SequenceRunner:
    """A runner for one layer and direction of a family, given its weights and masks."""
    extra = {"nonlinearity": nonlinearity} if family == "rnn" else {}
    return functools.partial(SCANS[family], weights=weights, options=options, masks=masks, **extra)


def _variant_runner(cell: VariantCell, masks: VariantMasks | None) -> SequenceRunner:
    return family_runner(
        cell.family,
        cell.weights(),
        cell.options,
        masks,
        nonlinearity=getattr(cell, "nonlinearity", "tanh"),
    )


def _plain_runner(family: str) -> Any:
    def make(cell: Any, masks: Any) -> SequenceRunner:
        weights = VariantWeights(cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
        nonlinearity = getattr(cell, "nonlinearity", "tanh")
        return family_runner(family, weights, _PLAIN, None, nonlinearity=nonlinearity)

    return make


for _cls in (LSTMVariantCell, GRUVariantCell, RNNVariantCell):
    register_cell(_cls, _variant_runner)
register_cell(RNNCell, _plain_runner("rnn"))
register_cell(GRUCell, _plain_runner("gru"))
register_cell(LSTMCell, _plain_runner("lstm"), supports=lambda cell: cell.proj_size == 0)
