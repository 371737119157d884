"""The explicit BPTT engine: a hand-derived backward per cell family.

Per layer and direction: the input projection for all steps as one GEMM before the
loop; per step only the recurrent GEMM and the fused gate arithmetic; in the backward
pass, per step only the gate gradients and the recurrent GEMM, then ``dW_hh`` (and, by
autograd, ``dW_ih``, the biases and ``dx``) as single GEMMs over all ``T·B`` rows. See
``docs/bptt.md`` for the derivation and for adding a cell of your own.

* :func:`elman_scan`, :func:`lstm_scan`, :func:`gru_scan` — one layer and direction;
  the same inputs and :class:`~rnnkit.engines.ScanResult` as the loop engine's ``scan``.
* :class:`ElmanRecurrence`, :class:`LSTMRecurrence`, :class:`GRURecurrence` — the
  ``torch.autograd.Function`` of each recurrence.
* :func:`register_cell`, :func:`supports_cell`, :func:`cell_runner`,
  :func:`run_sequence` — which cells the engine runs (used by :class:`rnnkit.Recurrent`).
"""

from rnnkit.engines.bptt.cells import SCANS, family_runner
from rnnkit.engines.bptt.elman import ElmanRecurrence, elman_scan
from rnnkit.engines.bptt.gru import GRURecurrence, gru_scan
from rnnkit.engines.bptt.lstm import LSTMRecurrence, lstm_scan
from rnnkit.engines.bptt.registry import (
    SequenceRunner,
    cell_runner,
    register_cell,
    run_sequence,
    supports_cell,
)

__all__ = [
    "SCANS",
    "ElmanRecurrence",
    "GRURecurrence",
    "LSTMRecurrence",
    "SequenceRunner",
    "cell_runner",
    "elman_scan",
    "family_runner",
    "gru_scan",
    "lstm_scan",
    "register_cell",
    "run_sequence",
    "supports_cell",
]
