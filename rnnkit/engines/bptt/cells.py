"""The built-in cells' registrations with the BPTT engine.

The plain cells (:class:`rnnkit.RNNCell`, :class:`rnnkit.LSTMCell` without projection,
:class:`rnnkit.GRUCell`) run as variants with every option off; the variant cells run
with their options and the masks their layer drew for the sequence.
"""

from __future__ import annotations

from typing import Any

from rnnkit.cells.gru import GRUCell
from rnnkit.cells.lstm import LSTMCell
from rnnkit.cells.masks import VariantMasks
from rnnkit.cells.options import VariantOptions, VariantWeights
from rnnkit.cells.rnn import RNNCell
from rnnkit.cells.variants import GRUVariantCell, LSTMVariantCell, RNNVariantCell
from rnnkit.engines.bptt.common import family_runner
from rnnkit.engines.bptt.registry import register_backward
from rnnkit.engines.runner import SequenceRunner

_FAMILIES: dict[type, str] = {
    RNNCell: "rnn",
    GRUCell: "gru",
    LSTMCell: "lstm",
    RNNVariantCell: "rnn",
    GRUVariantCell: "gru",
    LSTMVariantCell: "lstm",
}
_PLAIN = VariantOptions()


def cell_family(cell: Any) -> str | None:
    """The family (``"rnn"``, ``"gru"``, ``"lstm"``) of a built-in cell, else ``None``."""
    return _FAMILIES.get(type(cell))


def _cell_runner(cell: Any, masks: VariantMasks | None) -> SequenceRunner:
    return family_runner(
        _FAMILIES[type(cell)],
        VariantWeights.of(cell),
        getattr(cell, "options", _PLAIN),
        masks,
        nonlinearity=getattr(cell, "nonlinearity", "tanh"),
    )


def _no_projection(cell: LSTMCell) -> bool:
    return cell.proj_size == 0


for _cls in _FAMILIES:
    register_backward(_cls, _cell_runner, supports=_no_projection if _cls is LSTMCell else None)
