"""Execution engines: how a layer runs its cells over time.

* ``fused`` — PyTorch's own kernels (oneDNN/ATen on CPU, cuDNN on GPU) for the
  standard RNN/LSTM/GRU configurations; see :mod:`rnnkit.layers.standard`.
* ``loop`` — :mod:`rnnkit.engines.loop`, a Python loop that runs any cell; the
  reference every other engine is tested against.
"""

from rnnkit.engines.loop import (
    MERGE_MODES,
    ScanResult,
    StackResult,
    StepFn,
    StepRecord,
    StepRecorder,
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
    "merge_directions",
    "record_steps",
    "run_stack",
    "scan",
    "stack_states",
    "step_mask",
]
