"""Execution engines: how a layer runs its cells over time.

Every engine provides *runners* (:class:`SequenceRunner`: one layer and direction over
a whole sequence, :mod:`rnnkit.engines.runner`), which the layer stacks
(:func:`rnnkit.layers.run_stack`), and :func:`select_engine` (:mod:`rnnkit.engines.select`)
is the one rule that picks an engine for a layer call:

* ``fused`` — PyTorch's own kernels (oneDNN/ATen on CPU, cuDNN on GPU) for the
  standard RNN/LSTM/GRU configurations; see :mod:`rnnkit.layers.standard`.
* ``loop`` — :mod:`rnnkit.engines.loop`, a Python loop that runs any cell; the
  reference every other engine is tested against.
* ``bptt`` — :mod:`rnnkit.engines.bptt`, a hand-derived backward per cell family
  (RNN, LSTM, GRU and their variants): near-fused speed for what fused kernels lack.
* ``scan`` — :mod:`rnnkit.engines.linear`, cells linear in their state (minGRU, minLSTM):
  every step's gates at once, then the linear recurrence :func:`linear_scan`.
"""

from rnnkit.engines.linear import linear_scan, scan_runner
from rnnkit.engines.loop import (
    StepFn,
    StepRecord,
    StepRecorder,
    is_recording,
    loop_runner,
    record_steps,
    scan,
)
from rnnkit.engines.runner import ScanResult, SequenceRunner
from rnnkit.engines.select import ENGINES, EngineFacts, select_engine

__all__ = [
    "ENGINES",
    "EngineFacts",
    "ScanResult",
    "SequenceRunner",
    "StepFn",
    "StepRecord",
    "StepRecorder",
    "is_recording",
    "linear_scan",
    "loop_runner",
    "record_steps",
    "scan",
    "scan_runner",
    "select_engine",
]
