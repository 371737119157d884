"""The runner, what every engine provides, and the one path that stacks runners.

A *runner* runs one layer and direction over a whole sequence::

    runner(x (T, B, I), state, *, valid, reverse, return_states) -> ScanResult

The loop engine's runner is :func:`rnnkit.engines.loop.loop_runner` (a step function
over time), the BPTT engine's come from :mod:`rnnkit.engines.bptt`. :func:`run_stack`
runs a stack of them, ``runners[layer][direction]``: lengths, both directions, dropout
between layers and merging the directions are the same for every engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.cells.base import State, map_state, state_leaves

MERGE_MODES = ("concat", "sum", "mul", "ave")


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


def step_mask(lengths: Tensor | None, num_steps: int) -> Tensor | None:
    """``valid[t, b] = t < lengths[b]`` as a ``(T, B)`` bool tensor, or ``None``."""
    if lengths is None:
        return None
    steps = torch.arange(num_steps, device=lengths.device)
    return steps.unsqueeze(1) < lengths.unsqueeze(0)  # (T, B)


def run_stack(
    runners: Sequence[Sequence[SequenceRunner]],
    x: Tensor,
    initial: State,
    *,
    lengths: Tensor | None = None,
    merge_mode: str = "concat",
    dropout: float = 0.0,
    training: bool = False,
    return_states: bool = False,
) -> StackResult:
    """Run stacked, optionally bidirectional, recurrences: one runner per (layer, direction).

    Arguments:
        runners: ``runners[layer][direction]``, one or two per layer.
        x: time-major input ``(T, B, I)``.
        initial: the initial state, stacked over (layer, direction): leaves
            ``(L*D, B, ...)``, layer-major (index ``k * D + d``).
        lengths: ``(B,)`` valid lengths on ``x.device``, or ``None``.
        merge_mode: how two directions combine (``concat``, ``sum``, ``mul``, ``ave``).
        dropout: dropout on the outputs of every layer but the last (training only).
        training: whether dropout is active.
        return_states: also return every step's state.

    Returns:
        A :class:`StackResult`.
    """
    valid = step_mask(lengths, x.shape[0])
    finals: list[State] = []
    all_states: list[State] = []
    layer_input = x
    last = x.new_zeros(0)
    for k, layer_runners in enumerate(runners):
        first = k * len(layer_runners)  # index of (k, 0) in the stacked states
        results = [
            runner(
                layer_input,
                map_state(lambda s, i=first + d: s[i], initial),
                valid=valid,
                reverse=d == 1,
                return_states=return_states,
            )
            for d, runner in enumerate(layer_runners)
        ]
        finals.extend(r.final for r in results)
        all_states.extend(r.states for r in results)
        out = results[0].outputs
        if len(results) == 2:
            out = merge_directions(out, results[1].outputs, merge_mode)
        if k == len(runners) - 1:
            last = _last_outputs(results, lengths, merge_mode)
        elif dropout > 0 and training:
            out = F.dropout(out, p=dropout, training=True)
        layer_input = out
    states = stack_states(all_states) if return_states else None
    return StackResult(layer_input, stack_states(finals), states, last)


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


def _last_outputs(results: Sequence[ScanResult], lengths: Tensor | None, merge_mode: str) -> Tensor:
    """Each direction's final output: forward at the last valid step, backward at 0."""
    forward = results[0].outputs  # (T, B, O)
    if lengths is None:
        last = forward[-1]
    else:
        index = (lengths - 1).clamp(min=0)  # (B,)
        last = forward[index, torch.arange(forward.shape[1], device=forward.device)]
        last = torch.where((lengths > 0).unsqueeze(-1), last, 0.0)  # (B, O)
    if len(results) == 2:
        last = merge_directions(last, results[1].outputs[0], merge_mode)
    return last
