"""The gradient-flow report: per-step gradient norms, gate statistics, parameter norms.

Plain data (floats and lists), so it serialises to JSON exactly and back, and renders
as a markdown table. :func:`rnnkit.diagnostics.gradient_flow` builds it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

SATURATION_LOW = 0.05
"""A sigmoid gate unit below this is saturated shut (its local derivative is < 0.048)."""
SATURATION_HIGH = 0.95
"""A sigmoid gate unit above this is saturated open."""


@dataclass(frozen=True)
class GateStats:
    """One gate of one layer and direction, over every unit of every valid step.

    Attributes:
        mean: mean activation.
        saturated_low: fraction of units below :data:`SATURATION_LOW`; ``None`` for
            a ``tanh`` candidate (``g``, ``n``), which is not a 0..1 switch.
        saturated_high: fraction of units above :data:`SATURATION_HIGH`, or ``None``.
    """

    mean: float
    saturated_low: float | None = None
    saturated_high: float | None = None

    @property
    def saturated(self) -> float | None:
        """Fraction of units saturated either way (``None`` for tanh candidates)."""
        if self.saturated_low is None or self.saturated_high is None:
            return None
        return self.saturated_low + self.saturated_high


@dataclass(frozen=True)
class LayerFlow:
    """Gradient flow through one direction of one stacked layer of one recurrent module.

    Time index ``t`` runs ``0 .. T-1`` in input order, also for a backward direction.

    Attributes:
        module: the module's qualified name in the model (``""`` for the model itself).
        call: which call of that module inside the loss function (0 for the first).
        layer: the stacked layer ``k`` (0 is the bottom).
        direction: ``"forward"`` or ``"backward"``.
        cell: ``"rnn"``, ``"lstm"``, ``"gru"``, ``"mingru"``, ``"minlstm"``, or a user
            cell's class name.
        fields: the state's fields, e.g. ``("h", "c")`` for an LSTM, ``("h",)`` for a
            plain tensor state.
        grad_norms: per field, ``T`` values: the batch aggregate of ``‖∂L/∂s_t‖``,
            namely the mean over the sequences for which step ``t`` is real (padded
            steps excluded) of the per-sequence L2 norm over the state's features;
            ``None`` where no sequence is real at ``t``.
        per_sequence: per field, ``T × B`` per-sequence norms (``None`` at padded
            steps); empty when the report was made or loaded without them.
        gates: per gate name (``i, f, g, o`` or ``r, z, n``), its statistics; empty
            where the cell family is unknown or has no gates.
    """

    module: str
    call: int
    layer: int
    direction: str
    cell: str
    fields: tuple[str, ...]
    grad_norms: dict[str, list[float | None]]
    per_sequence: dict[str, list[list[float | None]]] = field(default_factory=dict)
    gates: dict[str, GateStats] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """A short label: ``module[layer] direction`` (plus ``#call`` after the first)."""
        module = self.module or "model"
        call = f"#{self.call}" if self.call else ""
        return f"{module}{call}[{self.layer}] {self.direction}"

    @property
    def num_steps(self) -> int:
        return len(self.grad_norms[self.fields[0]])

    def first_last(self, field: str | None = None) -> tuple[float | None, float | None]:
        """Aggregated norms at the first and the last step this direction processes.

        For a forward direction these are ``‖∂L/∂s_1‖`` and ``‖∂L/∂s_T‖``; a backward
        direction processes ``t = T .. 1``, so its first is ``t = T``. Steps where no
        sequence is real are skipped.
        """
        norms = [n for n in self.grad_norms[self._field(field)] if n is not None]
        if self.direction == "backward":
            norms.reverse()
        return (norms[0], norms[-1]) if norms else (None, None)

    def ratio(self, field: str | None = None) -> float | None:
        """``‖∂L/∂s_first‖ / ‖∂L/∂s_last‖``: how much gradient survives the trip back.

        Near 1 (or above) the earliest step still gets the gradient the last step
        gets; ``1e-20`` means it vanished. ``None`` when undefined (the last is 0).
        """
        first, last = self.first_last(field)
        if first is None or last is None or last == 0.0:
            return None
        return first / last

    def _field(self, field: str | None) -> str:
        if field is None:
            return self.fields[0]
        if field not in self.grad_norms:
            raise KeyError(f"{self.name}: expected a state field in {self.fields}, got {field!r}")
        return field

    def to_dict(self, *, per_sequence: bool = True) -> dict[str, Any]:
        data = asdict(self)
        data["fields"] = list(self.fields)
        if not per_sequence:
            data["per_sequence"] = {}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerFlow:
        return cls(
            module=data["module"],
            call=data["call"],
            layer=data["layer"],
            direction=data["direction"],
            cell=data["cell"],
            fields=tuple(data["fields"]),
            grad_norms=data["grad_norms"],
            per_sequence=data.get("per_sequence", {}),
            gates={k: GateStats(**v) for k, v in data.get("gates", {}).items()},
        )


@dataclass(frozen=True)
class GradientFlowReport:
    """What :func:`rnnkit.diagnostics.gradient_flow` measured on one batch.

    Attributes:
        loss: the loss value.
        layers: one :class:`LayerFlow` per (module call, stacked layer, direction), in
            the order they ran.
        parameters: per parameter name, ``‖∂L/∂θ‖`` (L2 over all its elements), or
            ``None`` for a trainable parameter the loss does not depend on.

    Example::

        report = gradient_flow(model, lambda: criterion(model(x), y))
        report.layers[0].ratio()         # ‖∂L/∂h_1‖ / ‖∂L/∂h_T‖
        Path("flow.json").write_text(report.to_json())
        Path("flow.md").write_text(report.to_markdown())
    """

    loss: float
    layers: list[LayerFlow]
    parameters: dict[str, float | None]

    def layer(self, module: str = "", *, layer: int = 0, direction: str = "forward") -> LayerFlow:
        """The first :class:`LayerFlow` of ``module`` (qualified name) for ``layer, direction``."""
        for flow in self.layers:
            if (flow.module, flow.layer, flow.direction) == (module, layer, direction):
                return flow
        known = sorted({(f.module, f.layer, f.direction) for f in self.layers})
        raise KeyError(
            f"no recorded layer module={module!r}, layer={layer}, direction={direction!r}; "
            f"recorded: {known}"
        )

    def to_dict(self, *, per_sequence: bool = True) -> dict[str, Any]:
        """Plain data; ``per_sequence=False`` drops the ``T × B`` norms (a summary)."""
        return {
            "loss": self.loss,
            "layers": [flow.to_dict(per_sequence=per_sequence) for flow in self.layers],
            "parameters": dict(self.parameters),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GradientFlowReport:
        return cls(
            loss=data["loss"],
            layers=[LayerFlow.from_dict(d) for d in data["layers"]],
            parameters=data["parameters"],
        )

    def to_json(self, *, per_sequence: bool = True, indent: int | None = None) -> str:
        """JSON text (strict: no NaN or infinity; missing values are ``null``)."""
        return json.dumps(
            json_safe(self.to_dict(per_sequence=per_sequence)), indent=indent, allow_nan=False
        )

    @classmethod
    def from_json(cls, text: str) -> GradientFlowReport:
        return cls.from_dict(json.loads(text))

    def to_markdown(self) -> str:
        """Two tables: gradient flow per layer and direction, then parameter gradient norms."""
        return "\n\n".join([self.flow_table(), self.parameter_table()]) + "\n"

    def flow_table(self) -> str:
        """A markdown table: one row per layer, direction and state field."""
        rows = [
            ["layer", "cell", "T", "state", "‖∂L/∂s_first‖", "‖∂L/∂s_last‖", "first/last", "gates"]
        ]
        for flow in self.layers:
            for i, name in enumerate(flow.fields):
                first, last = flow.first_last(name)
                gates = format_gates(flow.gates) if i == 0 else ""
                rows.append(
                    [
                        flow.name if i == 0 else "",
                        flow.cell if i == 0 else "",
                        str(flow.num_steps) if i == 0 else "",
                        name,
                        _num(first),
                        _num(last),
                        _num(flow.ratio(name)),
                        gates,
                    ]
                )
        return markdown_table(rows)

    def parameter_table(self) -> str:
        rows = [["parameter", "‖∂L/∂θ‖"]]
        rows += [[name, _num(norm)] for name, norm in self.parameters.items()]
        return markdown_table(rows)


def format_gates(gates: dict[str, GateStats]) -> str:
    """``"i 0.50 (sat 1%) · f 0.73 (sat 0%) · g -0.01"``, or ``"—"`` without gates."""
    if not gates:
        return "—"
    parts = []
    for name, stats in gates.items():
        sat = stats.saturated
        parts.append(f"{name} {stats.mean:.2f}" + ("" if sat is None else f" (sat {sat:.0%})"))
    return " · ".join(parts)


def markdown_table(rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table from a header row and body rows of strings."""
    header, *body = rows
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def _num(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3g}" if 1e-3 <= abs(value) < 1e4 else f"{value:.2e}"


def json_safe(data: Any) -> Any:
    """Replace NaN and infinities (from a diverged loss) by ``None`` for strict JSON."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: json_safe(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [json_safe(v) for v in data]
    return data
