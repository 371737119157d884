"""Cells whose noise belongs to a whole sequence, and how a layer runs them on the loop engine.

Dropout and zoneout masks are drawn once per sequence, before any engine runs (so every
engine sees the same masks for the same seed). A cell that has such noise follows
:class:`MaskedCell`: the layer draws its masks with ``sample_masks`` and the loop engine
runs ``masked_step`` under the masks of each step (:func:`masked_runner`). The variant
cells (:mod:`rnnkit.cells.variants`) are masked cells; the drop-in layers run their
variants the same way, with a family's reference step
(:func:`rnnkit.cells.variant_steps.variant_step`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from torch import Tensor

from rnnkit.cells.base import State
from rnnkit.cells.masks import VariantMasks
from rnnkit.engines.loop import scan
from rnnkit.engines.runner import ScanResult, SequenceRunner

MaskedStep = Callable[[Tensor, State, Any], tuple[Tensor, State]]
"""One step under the masks of that step: ``(x_t, state, masks_t) -> (y_t, new_state)``."""


@runtime_checkable
class MaskedCell(Protocol):
    """A cell whose noise is drawn once per sequence (what the variant cells implement).

    ``sample_masks`` returns the masks of a whole sequence (``like``: a tensor whose dtype
    and device they take), an object with ``at(t)`` (the masks of step ``t``) and
    ``num_steps`` (``T``, or ``None`` when no mask varies with time), as
    :class:`rnnkit.cells.VariantMasks` has; ``masked_step`` is one step under the masks
    of that step.
    """

    def sample_masks(self, batch_size: int, num_steps: int, *, like: Tensor) -> Any: ...

    def masked_step(self, x: Tensor, state: State, masks: Any) -> tuple[Tensor, State]: ...


class SequenceSteps:
    """A step function for the loop engine: ``step`` under the masks of each step in turn.

    The loop engine calls a step function once per time step, in order (``T-1`` down to
    ``0`` for the backward direction), so counting calls recovers ``t`` for the per-step
    zoneout masks without changing the engine's step signature.

    Arguments:
        step: one step under given masks (a cell's ``masked_step``, a family's step).
        masks: the sequence's masks.
        reverse: the direction the engine runs.
    """

    def __init__(self, step: MaskedStep, masks: VariantMasks, *, reverse: bool = False) -> None:
        self.step, self.masks = step, masks
        steps = masks.num_steps
        self._times = None
        if steps is not None:
            self._times = iter(range(steps - 1, -1, -1) if reverse else range(steps))

    def __call__(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        masks = self.masks
        if self._times is not None:
            t = next(self._times, None)
            if t is None:
                raise RuntimeError(
                    f"the masks were drawn for {self.masks.num_steps} steps, "
                    "but more steps were run with them"
                )
            masks = masks.at(t)
        return self.step(x, state, masks)


def masked_runner(step: MaskedStep, masks: VariantMasks) -> SequenceRunner:
    """The loop engine's runner for ``step`` under one sequence's ``masks``."""

    def run(
        x: Tensor, state: State, *, valid: Tensor | None, reverse: bool, return_states: bool
    ) -> ScanResult:
        steps = SequenceSteps(step, masks, reverse=reverse)
        return scan(steps, x, state, valid=valid, reverse=reverse, return_states=return_states)

    return run
