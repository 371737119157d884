"""The runner: what every engine provides.

A *runner* runs one layer and direction over a whole sequence::

    runner(x (T, B, I), state, *, valid, reverse, return_states) -> ScanResult

The loop engine's runner is :func:`rnnkit.engines.loop.loop_runner` (a step function
over time), the BPTT engine's come from :mod:`rnnkit.engines.bptt`, the scan engine's
from :mod:`rnnkit.engines.linear`. The layer stacks them
(:func:`rnnkit.layers.stacked.run_stack`): lengths, both directions, dropout between
layers and merging the directions are the layer's job, the same for every engine.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from torch import Tensor

from rnnkit.cells.base import State


class ScanResult(NamedTuple):
    """What a runner returns for one layer and direction.

    Attributes:
        outputs: ``y_t`` for every step, ``(T, B, O)``; zeros at padded steps.
        final: the state after each sequence's last valid step (``(B, ...)`` leaves).
        states: every step's state, leaves ``(T, B, ...)`` (zeros at padded steps),
            or ``None`` unless asked for.
    """

    outputs: Tensor
    final: State
    states: State | None


class SequenceRunner(Protocol):
    """One layer and direction over a whole sequence (see the module docstring).

    Arguments:
        x: time-major input ``(T, B, I)``.
        state: the state before the first visited step (leaves ``(B, ...)``).
        valid: ``(T, B)`` bool mask of real (non-padded) steps, or ``None`` for all.
        reverse: run from ``t = T-1`` down to ``0`` (the backward direction).
        return_states: also return every step's state.
    """

    def __call__(
        self,
        x: Tensor,
        state: State,
        *,
        valid: Tensor | None,
        reverse: bool,
        return_states: bool,
    ) -> ScanResult: ...
