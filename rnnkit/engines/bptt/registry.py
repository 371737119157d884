"""Which cells the BPTT engine can run, and how: a registry of backward runners by cell type.

:func:`register_backward` maps a cell class to a function ``(cell, masks) -> runner``,
a runner being what every engine provides (:class:`rnnkit.engines.SequenceRunner`:
one layer and direction over a whole sequence, with a hand-derived backward here). The
built-in cells are registered in :mod:`rnnkit.engines.bptt.cells`. Lookup is by exact
type, so a subclass that changes the step is never run with its parent's backward by
mistake: register it too, if its math is the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rnnkit.engines.runner import SequenceRunner

RunnerFactory = Callable[[Any, Any], SequenceRunner]
"""``(cell, masks or None) -> runner``."""


@dataclass(frozen=True)
class _Entry:
    make: RunnerFactory
    supports: Callable[[Any], bool]


_REGISTRY: dict[type, _Entry] = {}


def register_backward(
    cell_type: type,
    make_runner: RunnerFactory,
    *,
    supports: Callable[[Any], bool] | None = None,
) -> None:
    """Let the BPTT engine run cells of ``cell_type`` with a hand-written backward.

    Arguments:
        cell_type: the cell class (matched exactly, not by ``isinstance``).
        make_runner: ``(cell, masks) -> runner``; ``masks`` is what the cell's
            ``sample_masks`` returned for this sequence, or ``None`` for a cell without.
        supports: ``cell -> bool`` for configurations the runner cannot handle (for
            example an LSTM projection); they stay on the loop engine.

    Example::

        register_backward(MinimalRNNCell, lambda cell, masks: functools.partial(my_scan, cell))
    """
    _REGISTRY[cell_type] = _Entry(make_runner, supports or (lambda cell: True))


def refusal(cell: Any) -> str | None:
    """Why the BPTT engine cannot run ``cell`` (with the fix), or ``None`` if it can."""
    entry = _REGISTRY.get(type(cell))
    if entry is None:
        known = sorted(t.__name__ for t in _REGISTRY)
        return (
            f"the BPTT engine has no backward for {type(cell).__name__} (it runs {known}); "
            "use engine='loop', or register one with rnnkit.engines.bptt.register_backward"
        )
    if not entry.supports(cell):
        return (
            f"the BPTT engine does not support this {type(cell).__name__} configuration "
            f"({cell!r}); use engine='loop'"
        )
    return None


def supports_cell(cell: Any) -> bool:
    """Whether the BPTT engine can run ``cell`` (registered type and configuration)."""
    return refusal(cell) is None


def cell_runner(cell: Any, masks: Any = None) -> SequenceRunner:
    """The BPTT runner of ``cell`` for one sequence; a clear error if it is not supported."""
    reason = refusal(cell)
    if reason is not None:
        raise ValueError(reason)
    return _REGISTRY[type(cell)].make(cell, masks)
