"""What every rnnkit layer shares: the engine choice and the one path that runs the stack.

:class:`StackedLayer` is mixed into :class:`rnnkit.Recurrent`, the drop-in
``RNN``/``LSTM``/``GRU`` and ``MinGRU``/``MinLSTM``. For a call it

1. asks :func:`rnnkit.engines.select_engine` which engine runs (from the call's
   :class:`~rnnkit.engines.EngineFacts`, see :meth:`StackedLayer.engine_facts`);
2. draws the masks of every (layer, direction) once, before any engine runs;
3. builds one runner per (layer, direction) for that engine (:meth:`StackedLayer.runner`);
4. runs them with :func:`run_stack` and restores the caller's layout.

Adding an engine means a row in the rule and a runner here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from rnnkit.cells.base import State, map_state, state_leaves
from rnnkit.engines.linear import CoefficientsFn, scan_runner
from rnnkit.engines.loop import StepFn, is_recording, loop_runner
from rnnkit.engines.runner import ScanResult, SequenceRunner
from rnnkit.engines.select import ENGINES, EngineFacts, select_engine
from rnnkit.layers.masked import MaskedStep, masked_runner
from rnnkit.layers.sequence import (
    InputInfo,
    SequenceBatch,
    inspect_input,
    restore_final,
    restore_last,
    restore_output,
    restore_states,
)

MERGE_MODES = ("concat", "sum", "mul", "ave")
"""How the two directions' outputs combine (Keras's ``merge_mode``)."""


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


class StackedLayer:
    """Engine choice and the stacked run of a layer (a mixin for ``nn.Module`` layers).

    A layer sets ``num_layers``, ``num_directions``, ``dropout`` and ``engine``, lists
    the engines it takes in ``engines``, says what the engine rule needs to know of it
    (``fused_kernel``, :meth:`_forward_variants`, :meth:`_bptt_refusal`, :meth:`_linear`)
    and how one (layer, direction) runs on each engine (:meth:`_bptt_runner`,
    :meth:`_coefficients`, :meth:`_step`, :meth:`_masked_step`).
    """

    engines: ClassVar[tuple[str, ...]] = ENGINES
    fused_kernel: ClassVar[bool] = False
    engine: str
    input_size: int
    batch_first: bool
    num_layers: int
    num_directions: int
    dropout: float
    training: bool

    def _set_engine(self, engine: str) -> None:
        if engine not in self.engines:
            raise ValueError(
                f"{type(self).__name__}: engine must be one of {self.engines}, got {engine!r}"
            )
        self.engine = engine

    def _inspect(
        self,
        input: Tensor | PackedSequence,
        lengths: Tensor | Sequence[int] | None,
        *,
        dtype: torch.dtype | None = None,
    ) -> InputInfo:
        """The call's input checked against this layer's layout and ``input_size``
        (:func:`~rnnkit.layers.sequence.inspect_input`; ``dtype``: the parameters')."""
        return inspect_input(
            input,
            lengths,
            batch_first=self.batch_first,
            input_size=self.input_size,
            name=type(self).__name__,
            dtype=dtype,
        )

    # -- the engine rule --------------------------------------------------------------

    def engine_facts(
        self, *, return_states: bool = False, ragged: bool = False, device: Any = None
    ) -> EngineFacts:
        """The facts of a call with these options that the engine rule looks at.

        Arguments:
            return_states: the call asks for every step's state.
            ragged: the batch's lengths differ from the number of steps somewhere.
            device: the input's device (``None``: the parameters' device).
        """
        return EngineFacts(
            layer=type(self).__name__,
            forced=self.engine,
            fused_kernel=self.fused_kernel,
            variant=self._forward_variants(),
            bptt_refusal=self._bptt_refusal(),
            linear=self._linear(),
            return_states=return_states,
            ragged=ragged,
            cpu_training=self._cpu_training(device),
            recording=is_recording(),
        )

    def engine_for(
        self, *, return_states: bool = False, ragged: bool = False, device: Any = None
    ) -> str:
        """The engine a call with these options runs on: ``"fused"``, ``"bptt"``, ``"scan"``
        or ``"loop"``.

        The rule is :func:`rnnkit.engines.select_engine`'s; a forced engine that cannot run
        the call raises. Arguments as :meth:`engine_facts`.
        """
        return select_engine(
            self.engine_facts(return_states=return_states, ragged=ragged, device=device)
        )

    @property
    def active_engine(self) -> str:
        """The engine a plain call runs on."""
        return self.engine_for()

    def _cpu_training(self, device: Any) -> bool:
        """Gradients will flow into the parameters through a call on the CPU."""
        params = list(self.parameters())  # type: ignore[attr-defined]
        if not torch.is_grad_enabled() or not any(p.requires_grad for p in params):
            return False
        where = torch.device(device) if device is not None else params[0].device
        return where.type == "cpu"

    def _forward_variants(self) -> str:
        """The variant options that change the forward pass, described, or ``""``."""
        return ""

    def _bptt_refusal(self) -> str | None:
        """Why the BPTT engine cannot run this layer (with the fix), or ``None``."""
        raise NotImplementedError

    def _linear(self) -> bool:
        """Every cell is linear in its state (:class:`~rnnkit.cells.base.LinearCell`)."""
        return False

    # -- the stacked run --------------------------------------------------------------

    def runner(self, layer: int, direction: int, engine: str, masks: Any) -> SequenceRunner:
        """The runner of one layer and direction on ``engine`` (``"bptt"``, ``"scan"`` or
        ``"loop"``)."""
        if engine == "bptt":
            return self._bptt_runner(layer, direction, masks)
        if engine == "scan":
            return scan_runner(self._coefficients(layer, direction))
        if masks is None:
            return loop_runner(self._step(layer, direction))
        return masked_runner(self._masked_step(layer, direction), masks)

    def _bptt_runner(self, layer: int, direction: int, masks: Any) -> SequenceRunner:
        raise NotImplementedError

    def _coefficients(self, layer: int, direction: int) -> CoefficientsFn:
        """``x -> (a, b)`` of one layer and direction, for the scan engine."""
        raise NotImplementedError

    def _step(self, layer: int, direction: int) -> StepFn:
        """The plain step of one layer and direction (the loop engine's reference)."""
        raise NotImplementedError

    def _masked_step(self, layer: int, direction: int) -> MaskedStep:
        """The step under per-step masks, for a layer or cell with noise."""
        raise NotImplementedError

    def _sample_masks(self, batch: SequenceBatch) -> list[Any] | None:
        """Every (layer, direction)'s masks for this call, layer-major, or ``None``."""
        return None

    def _run_stack(
        self,
        batch: SequenceBatch,
        initial: State,
        engine: str,
        *,
        return_states: bool,
        merge_mode: str = "concat",
        return_sequences: bool = True,
    ) -> tuple[Any, ...]:
        """Run every (layer, direction) on ``engine`` and restore the caller's layout.

        Arguments:
            batch: the call's input, time-major.
            initial: the initial state, leaves ``(L*D, B, ...)``.
            engine: ``"bptt"``, ``"scan"`` or ``"loop"``.
            return_states: also return every step's state.
            merge_mode: how the two directions combine.
            return_sequences: return every step's output, else each direction's final one.

        Returns:
            ``(output, final_state)``, plus the per-step states with ``return_states``.
        """
        dirs = self.num_directions
        masks = self._sample_masks(batch) or [None] * (self.num_layers * dirs)  # [k * D + d]
        runners = [
            [self.runner(k, d, engine, masks[k * dirs + d]) for d in range(dirs)]
            for k in range(self.num_layers)
        ]
        result = run_stack(
            runners,
            batch.x,
            initial,
            lengths=batch.lengths,
            merge_mode=merge_mode,
            dropout=self.dropout,
            training=self.training,
            return_states=return_states,
        )
        if return_sequences:
            output = restore_output(result.output, batch)
        else:
            output = restore_last(result.last, batch)
        final = restore_final(result.final, batch)
        if return_states:
            return output, final, restore_states(result.states, batch)
        return output, final


@contextmanager
def use_engine(module: nn.Module, engine: str) -> Iterator[list[nn.Module]]:
    """Run every rnnkit layer inside ``module`` on ``engine`` for the duration of a block.

    Used to reach the reference path (``"loop"``) of a model whose layers normally
    run fused or on the BPTT engine, for example to record per-step gradients;
    parameters are shared, so results agree with the usual engine (that is what the
    parity tests check). Only layers that list ``engine`` among their ``engines`` are
    switched: :class:`rnnkit.Recurrent` has no ``"fused"``, the drop-ins no ``"scan"``,
    ``MinGRU``/``MinLSTM`` neither ``"fused"`` nor ``"bptt"`` (they keep their engine then).

    Arguments:
        module: a model, or a single layer.
        engine: one of :data:`rnnkit.engines.ENGINES`.

    Yields:
        The layers whose engine was switched.

    Example::

        with use_engine(model, "loop"):
            loss = criterion(model(x), y)
    """
    if engine not in ENGINES:
        raise ValueError(f"use_engine: engine must be one of {ENGINES}, got {engine!r}")
    layers = [m for m in module.modules() if isinstance(m, StackedLayer) and engine in m.engines]
    previous = [layer.engine for layer in layers]
    try:
        for layer in layers:
            layer._set_engine(engine)
        yield layers  # type: ignore[misc]
    finally:
        for layer, old in zip(layers, previous, strict=True):
            layer.engine = old
