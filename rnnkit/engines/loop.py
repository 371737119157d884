"""The reference engine: a plain Python loop over time that runs any cell.

This is the path every other engine is tested against. It is written for clarity
and generality (any cell, any state structure, ragged lengths, per-step states);
the fused and BPTT engines exist to make the common cells fast. Its runner
(:func:`loop_runner`, see :mod:`rnnkit.engines.runner`) is :func:`scan` over a cell's
step function.

Variable length works by masking: at a padded step the new state is discarded
(``torch.where(valid, new, old)``) and the output is zero. Running the reverse
direction from ``T-1`` down to ``0`` under the same mask is then exactly a forward
pass over each *reversed valid* sequence, because padded steps leave the initial
state untouched until the sequence's own last step is reached.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import Tensor

from rnnkit.cells.base import State, map_state
from rnnkit.engines.runner import ScanResult, SequenceRunner

StepFn = Callable[[Tensor, State], tuple[Tensor, State]]
"""One step of a cell: ``(x_t (B, I), state) -> (y_t (B, O), new_state)``."""


class StepRecord(NamedTuple):
    """One step of one scan, as the cell saw it (before padding masks were applied).

    Attributes:
        t: the time index.
        x: the step's input ``(B, I)``.
        state_in: the state the cell received.
        state_out: the state the cell returned: graph nodes, so
            ``torch.autograd.grad(loss, state_out)`` is the total ``∂L/∂s_t``.
        output: the output the cell returned ``(B, O)``.
        valid: ``(B,)`` bool mask of sequences for which this step is real, or ``None``.
    """

    t: int
    x: Tensor
    state_in: State
    state_out: State
    output: Tensor
    valid: Tensor | None


@dataclass
class StepRecorder:
    """Every step of every scan run inside :func:`record_steps`.

    ``scans[k]`` holds the steps of the ``k``-th scan in time order (index ``t``),
    also for a reverse scan. A stacked layer runs its scans layer by layer, forward
    before backward, so ``scans[layer * D + direction]``.
    """

    scans: list[list[StepRecord]] = field(default_factory=list)
    reverse: list[bool] = field(default_factory=list)


_RECORDER: ContextVar[StepRecorder | None] = ContextVar("rnnkit_step_recorder", default=None)


@contextmanager
def record_steps() -> Iterator[StepRecorder]:
    """Record the inputs, states and outputs of every loop-engine step in the block.

    This is how per-step quantities that fused kernels never expose (``∂L/∂h_t``,
    gate activations) are reached: run the layer on the loop engine inside this block
    and take gradients with respect to the recorded states. It costs nothing when
    not active.

    Example::

        with record_steps() as recorder:
            out, _ = layer(x)  # a layer on the loop engine
        loss = out.sum()
        grads = torch.autograd.grad(loss, [r.state_out for r in recorder.scans[0]])
    """
    recorder = StepRecorder()
    token = _RECORDER.set(recorder)
    try:
        yield recorder
    finally:
        _RECORDER.reset(token)


def is_recording() -> bool:
    """Whether a :func:`record_steps` block is active (engines that skip the per-step
    Python loop cannot record, so automatic engine choice falls back to this one)."""
    return _RECORDER.get() is not None


def _where(valid: Tensor, new: Tensor, old: Tensor | float) -> Tensor:
    """``torch.where`` with a ``(B,)`` mask broadcast over the trailing dims of ``new``."""
    shape = (valid.shape[0],) + (1,) * (new.dim() - 1)
    return torch.where(valid.view(shape), new, old)


def scan(
    step: StepFn,
    x: Tensor,
    state: State,
    *,
    valid: Tensor | None = None,
    reverse: bool = False,
    return_states: bool = False,
) -> ScanResult:
    """Run ``step`` over the time axis of ``x`` (the loop engine's runner, given ``step``).

    Arguments:
        step: one step of a cell.
        x: time-major input, ``(T, B, I)``.
        state: the state before the first step (batch-first leaves ``(B, ...)``).
        valid: ``(T, B)`` bool mask of real (non-padded) steps, or ``None`` for all.
        reverse: run from ``t = T-1`` down to ``0`` (the backward direction).
        return_states: also collect every step's state.

    Returns:
        A :class:`ScanResult`.
    """
    num_steps = x.shape[0]
    outputs: list[Tensor | None] = [None] * num_steps
    states: list[State | None] = [None] * num_steps
    recorder = _RECORDER.get()
    records: list[StepRecord | None] = [None] * num_steps
    for t in reversed(range(num_steps)) if reverse else range(num_steps):
        y, new = step(x[t], state)  # (B, O)
        if recorder is not None:
            records[t] = StepRecord(t, x[t], state, new, y, None if valid is None else valid[t])
        if valid is not None:
            v = valid[t]  # (B,)
            new = map_state(lambda n, o, v=v: _where(v, n, o), new, state)
            y = _where(v, y, 0.0)
            if return_states:
                states[t] = map_state(lambda n, v=v: _where(v, n, 0.0), new)
        elif return_states:
            states[t] = new
        outputs[t] = y
        state = new
    if recorder is not None:
        recorder.scans.append(records)  # type: ignore[arg-type]
        recorder.reverse.append(reverse)
    stacked = map_state(lambda *s: torch.stack(s), *states) if return_states else None
    return ScanResult(torch.stack(outputs), state, stacked)  # type: ignore[arg-type]


def output_is_state(update: Callable[[Tensor, Tensor], Tensor]) -> StepFn:
    """A step ``(x_t, h_{t-1}) -> (h_t, h_t)`` from ``h_t = update(x_t, h_{t-1})``."""

    def step(x: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        h = update(x, h)
        return h, h

    return step


def loop_runner(step: StepFn) -> SequenceRunner:
    """The loop engine's runner for one layer and direction: :func:`scan` over ``step``."""
    return functools.partial(scan, step)
