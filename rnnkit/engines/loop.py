"""The reference engine: a plain Python loop over time that runs any cell.

This is the path every other engine is tested against. It is written for clarity
and generality (any cell, any state structure, ragged lengths, per-step states);
the fused and BPTT engines exist to make the common cells fast.

Variable length works by masking: at a padded step the new state is discarded
(``torch.where(valid, new, old)``) and the output is zero. Running the reverse
direction from ``T-1`` down to ``0`` under the same mask is then exactly a forward
pass over each *reversed valid* sequence, because padded steps leave the initial
state untouched until the sequence's own last step is reached.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.cells.base import State, map_state, state_leaves

StepFn = Callable[[Tensor, State], tuple[Tensor, State]]
"""One step of a cell: ``(x_t (B, I), state) -> (y_t (B, O), new_state)``."""

MERGE_MODES = ("concat", "sum", "mul", "ave")


class ScanResult(NamedTuple):
    """What :func:`scan` returns.

    Attributes:
        outputs: ``y_t`` for every step, ``(T, B, O)``; zeros at padded steps.
        final: the state after each sequence's last valid step (``(B, ...)`` leaves).
        states: every step's state, leaves ``(T, B, ...)`` (zeros at padded steps),
            or ``None`` unless asked for.
    """

    outputs: Tensor
    final: State
    states: State | None


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


def step_mask(lengths: Tensor | None, num_steps: int) -> Tensor | None:
    """``valid[t, b] = t < lengths[b]`` as a ``(T, B)`` bool tensor, or ``None``."""
    if lengths is None:
        return None
    steps = torch.arange(num_steps, device=lengths.device)
    return steps.unsqueeze(1) < lengths.unsqueeze(0)  # (T, B)


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
    """Run ``step`` over the time axis of ``x``.

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


def merge_directions(forward: Tensor, backward: Tensor, mode: str) -> Tensor:
    """Combine the two directions' outputs (Keras's ``merge_mode``)."""
    if mode == "concat":
        return torch.cat([forward, backward], dim=-1)
    if mode == "sum":
        return forward + backward
    if mode == "mul":
        return forward * backward
    if mode == "ave":
        return (forward + backward) / 2
    raise ValueError(f"merge_mode must be one of {MERGE_MODES}, got {mode!r}")


def stack_states(states: Sequence[State]) -> State:
    """Stack per-(layer, direction) states on a new leading dim, torch's ``(L*D, ...)``."""
    try:
        return map_state(lambda *s: torch.stack(s), *states)
    except RuntimeError as err:
        shapes = [[tuple(t.shape) for t in state_leaves(s)] for s in states]
        raise ValueError(
            f"cannot stack the states of the layers and directions into one (L*D, ...) "
            f"state: every cell's state must have the same shapes, got {shapes}"
        ) from err


class StackResult(NamedTuple):
    """What :func:`run_stack` returns (time-major).

    Attributes:
        output: the top layer's merged outputs ``(T, B, F)``.
        final: stacked final states, leaves ``(L*D, B, ...)``.
        states: stacked per-step states, leaves ``(L*D, T, B, ...)``, or ``None``.
        last: per-direction final *outputs* of the top layer merged: forward at the
            last valid step, backward at step 0; ``(B, F)``.
    """

    output: Tensor
    final: State
    states: State | None
    last: Tensor


def run_stack(
    steps: Sequence[Sequence[StepFn]],
    x: Tensor,
    initial: Sequence[State],
    *,
    lengths: Tensor | None = None,
    merge_mode: str = "concat",
    dropout: float = 0.0,
    training: bool = False,
    return_states: bool = False,
    scan_fn: Callable[..., ScanResult] = scan,
) -> StackResult:
    """Run stacked, optionally bidirectional, recurrences.

    Arguments:
        steps: ``steps[layer][direction]``, one or two step functions per layer (or
            whatever ``scan_fn`` takes in their place).
        x: time-major input ``(T, B, I)``.
        initial: initial state per (layer, direction), layer-major: index ``k * D + d``.
        lengths: ``(B,)`` valid lengths on ``x.device``, or ``None``.
        merge_mode: how two directions combine (``concat``, ``sum``, ``mul``, ``ave``).
        dropout: dropout on the outputs of every layer but the last (training only).
        training: whether dropout is active.
        return_states: also return every step's state.
        scan_fn: runs one (layer, direction) over time, called as
            ``scan_fn(steps[k][d], x, state, valid=, reverse=, return_states=)``;
            :func:`scan` here, the BPTT engine passes its own (same stacking, lengths,
            inter-layer dropout and merging for every engine).

    Returns:
        A :class:`StackResult`.
    """
    valid = step_mask(lengths, x.shape[0])
    finals: list[State] = []
    all_states: list[State] = []
    layer_input = x
    last = x.new_zeros(0)
    for k, layer_steps in enumerate(steps):
        results = [
            scan_fn(
                step,
                layer_input,
                initial[k * len(layer_steps) + d],
                valid=valid,
                reverse=d == 1,
                return_states=return_states,
            )
            for d, step in enumerate(layer_steps)
        ]
        finals.extend(r.final for r in results)
        all_states.extend(r.states for r in results)
        out = results[0].outputs
        if len(results) == 2:
            out = merge_directions(out, results[1].outputs, merge_mode)
        if k == len(steps) - 1:
            last = _last_outputs(results, lengths, merge_mode)
        elif dropout > 0 and training:
            out = F.dropout(out, p=dropout, training=True)
        layer_input = out
    states = stack_states(all_states) if return_states else None
    return StackResult(layer_input, stack_states(finals), states, last)


def _last_outputs(results: Sequence[ScanResult], lengths: Tensor | None, merge_mode: str) -> Tensor:
    """Each direction's final output: forward at the last valid step, backward at 0."""
    forward = results[0].outputs  # (T, B, O)
    if lengths is None:
        last = forward[-1]
    else:
        index = (lengths - 1).clamp(min=0)  # (B,)
        last = forward[index, torch.arange(forward.shape[1], device=forward.device)]
        last = _where(lengths > 0, last, 0.0)
    if len(results) == 2:
        last = merge_directions(last, results[1].outputs[0], merge_mode)
    return last
