"""Which cells the BPTT engine can run, and how: a registry keyed by cell type.

A *runner* runs one cell (one layer and direction) over a whole sequence::

    runner(x (T, B, I), state, *, valid, reverse, return_states) -> ScanResult

:func:`register_cell` maps a cell class to a function ``(cell, masks) -> runner``; the
built-in cells are registered in :mod:`rnnkit.engines.bptt.cells`. Lookup is by exact
type, so a subclass that changes the step is never run with its parent's backward by
mistake: register it too, if its math is the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from torch import Tensor

from rnnkit.cells.base import State
from rnnkit.engines.loop import ScanResult


class SequenceRunner(Protocol):
    """One cell over a whole sequence (what :func:`rnnkit.engines.run_stack` calls)."""

    def __call__(
        self,
        x: Tensor,
        state: State,
        *,
        valid: Tensor | None,
        reverse: bool,
        return_states: bool,
    ) -> ScanResult: ...


RunnerFactory = Callable[[Any, Any], SequenceRunner]
"""``(cell, masks or None) -> runner``."""


@dataclass(frozen=True)
class _Entry:
    make: RunnerFactory
    supports: Callable[[Any], bool]


_REGISTRY: dict[type, _Entry] = {}


def register_cell(
    cell_type: type,
    make_runner: RunnerFactory,
    *,
    supports: Callable[[Any], bool] | None = None,
) -> None:
    """Let the BPTT engine run cells of ``cell_type``.

    Arguments:
        cell_type: the cell class (matched exactly, not by ``isinstance``).
        make_runner: ``(cell, masks) -> runner``; ``masks`` is what the cell's
            ``sample_masks`` returned for this sequence, or ``None`` for a cell without.
        supports: ``cell -> bool`` for configurations the runner cannot handle (for
            example an LSTM projection); they stay on the loop engine.

    Example::

        register_cell(MinimalRNNCell, lambda cell, masks: functools.partial(my_scan, cell))
    """
    _REGISTRY[cell_type] = _Entry(make_runner, supports or (lambda cell: True))


def supports_cell(cell: Any) -> bool:
    """Whether the BPTT engine can run ``cell`` (registered type and configuration)."""
    entry = _REGISTRY.get(type(cell))
    return entry is not None and entry.supports(cell)


def cell_runner(cell: Any, masks: Any = None) -> SequenceRunner:
    """The runner of ``cell`` for one sequence; a clear error if it is not supported."""
    entry = _REGISTRY.get(type(cell))
    if entry is None:
        known = sorted(t.__name__ for t in _REGISTRY)
        raise ValueError(
            f"the BPTT engine has no backward for {type(cell).__name__} (it runs {known}); "
            "use engine='loop', or register one with rnnkit.engines.bptt.register_cell"
        )
    if not entry.supports(cell):
        raise ValueError(
            f"the BPTT engine does not support this {type(cell).__name__} configuration "
            f"({cell!r}); use engine='loop'"
        )
    return entry.make(cell, masks)


def run_sequence(
    runner: SequenceRunner,
    x: Tensor,
    state: State,
    *,
    valid: Tensor | None = None,
    reverse: bool = False,
    return_states: bool = False,
) -> ScanResult:
    """The ``scan_fn`` that :func:`rnnkit.engines.run_stack` uses for the BPTT engine."""
    return runner(x, state, valid=valid, reverse=reverse, return_states=return_states)
