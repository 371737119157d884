"""The explicit BPTT engine: a hand-derived backward per cell family.

Per layer and direction: the input projection for all steps as one GEMM before the
loop; per step only the recurrent GEMM and the fused gate arithmetic; in the backward
pass, per step only the gate gradients and the recurrent GEMM, then ``dW_hh`` (and, by
autograd, ``dW_ih``, the biases and ``dx``) as single GEMMs over all ``T·B`` rows. See
``docs/bptt.md`` for the derivation and for adding a cell of your own.

* :func:`rnn_scan`, :func:`lstm_scan`, :func:`gru_scan` — one layer and direction, a
  runner (:class:`rnnkit.engines.SequenceRunner`) once its :class:`FamilyLayer` (weights,
  options, masks) is bound.
* :class:`RNNRecurrence`, :class:`LSTMRecurrence`, :class:`GRURecurrence` — the
  ``torch.autograd.Function`` of each recurrence.
* :func:`register_backward`, :func:`supports_cell`, :func:`refusal`, :func:`cell_runner`
  — which cells the engine runs (used by :class:`rnnkit.Recurrent`);
  :func:`family_runner` — a runner from a family's weights (used by the drop-in layers).
"""

from rnnkit.engines.bptt import cells  # noqa: F401  (registers the built-in cells)
from rnnkit.engines.bptt.common import SCANS, FamilyLayer, family_runner
from rnnkit.engines.bptt.gru import GRURecurrence, gru_scan
from rnnkit.engines.bptt.lstm import LSTMRecurrence, lstm_scan
from rnnkit.engines.bptt.registry import cell_runner, refusal, register_backward, supports_cell
from rnnkit.engines.bptt.rnn import RNNRecurrence, rnn_scan

__all__ = [
    "SCANS",
    "FamilyLayer",
    "GRURecurrence",
    "LSTMRecurrence",
    "RNNRecurrence",
    "cell_runner",
    "family_runner",
    "gru_scan",
    "lstm_scan",
    "refusal",
    "register_backward",
    "rnn_scan",
    "supports_cell",
]
