"""What every rnnkit layer shares: the engine choice and the one path that runs the stack.

:class:`StackedLayer` is mixed into :class:`rnnkit.Recurrent`, the drop-in
``RNN``/``LSTM``/``GRU`` and ``MinGRU``/``MinLSTM``. For a call it

1. asks :func:`rnnkit.engines.select_engine` which engine runs (from the call's
   :class:`~rnnkit.engines.EngineFacts`, see :meth:`StackedLayer.engine_facts`);
2. draws the masks of every (layer, direction) once, before any engine runs;
3. builds one runner per (layer, direction) for that engine (:meth:`StackedLayer.runner`);
4. runs them with :func:`rnnkit.engines.run_stack` and restores the caller's layout.

Adding an engine means a row in the rule and a runner here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
from torch import nn

from rnnkit.cells.base import State
from rnnkit.engines.linear import CoefficientsFn, scan_runner
from rnnkit.engines.loop import StepFn, is_recording, loop_runner
from rnnkit.engines.runner import SequenceRunner, run_stack
from rnnkit.engines.select import ENGINES, EngineFacts, select_engine
from rnnkit.layers.masked import MaskedStep, masked_runner
from rnnkit.layers.sequence import (
    SequenceBatch,
    restore_final,
    restore_last,
    restore_output,
    restore_states,
)


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
