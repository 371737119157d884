"""Execution engines: how a layer runs its cells over time.

* ``fused`` — PyTorch's own kernels (oneDNN/ATen on CPU, cuDNN on GPU) for the
  standard RNN/LSTM/GRU configurations; see :mod:`rnnkit.layers.standard`.
* ``loop`` — :mod:`rnnkit.engines.loop`, a Python loop that runs any cell; the
  reference every other engine is tested against.
* ``bptt`` — :mod:`rnnkit.engines.bptt`, a hand-derived backward per cell family
  (Elman, LSTM, GRU and their variants): near-fused speed for what fused kernels lack.
"""

from rnnkit.engines.loop import (
    MERGE_MODES,
    ScanResult,
    StackResult,
    StepFn,
    StepRecord,
    StepRecorder,
    is_recording,
    merge_directions,
    record_steps,
    run_stack,
    scan,
    stack_states,
    step_mask,
)

__all__ = [
    "MERGE_MODES",
    "ScanResult",
    "StackResult",
    "StepFn",
    "StepRecord",
    "StepRecorder",
    "is_recording",
    "merge_directions",
    "record_steps",
    "run_stack",
    "scan",
    "stack_states",
    "step_mask",
]
