"""Diagnostics: see how gradients flow through time in your own model.

* :func:`gradient_flow` — ``‖∂L/∂h_t‖`` (and ``‖∂L/∂c_t‖``) for every step, layer and
  direction, gate statistics and parameter gradient norms, as a
  :class:`GradientFlowReport` (JSON, markdown).
* :class:`GradientFlowCallback` — a Lightning callback that records the report's
  summary every N training steps (imported lazily: Lightning is heavy).
* :mod:`rnnkit.diagnostics.experiment` — the vanishing-gradient experiment on the
  adding and copy-memory tasks behind ``rnnkit gradflow``.

See ``docs/diagnostics.md``.
"""

from __future__ import annotations

from typing import Any

from rnnkit.diagnostics.flow import gradient_flow
from rnnkit.diagnostics.gates import GateFamily, cell_source, gate_stats
from rnnkit.diagnostics.report import (
    SATURATION_HIGH,
    SATURATION_LOW,
    GateStats,
    GradientFlowReport,
    LayerFlow,
)

__all__ = [
    "SATURATION_HIGH",
    "SATURATION_LOW",
    "GateFamily",
    "GateStats",
    "GradientFlowCallback",
    "GradientFlowReport",
    "LayerFlow",
    "cell_source",
    "gate_stats",
    "gradient_flow",
]


def __getattr__(name: str) -> Any:
    # The callback needs Lightning, which takes seconds to import; load it on first use.
    if name == "GradientFlowCallback":
        from rnnkit.diagnostics.callback import GradientFlowCallback

        return GradientFlowCallback
    raise AttributeError(f"module 'rnnkit.diagnostics' has no attribute {name!r}")
