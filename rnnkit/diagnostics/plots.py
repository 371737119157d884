"""Figures for gradient-flow reports.

Every function writes one PNG and returns its path. Figures are built with
matplotlib's object API (:class:`~matplotlib.figure.Figure`) and saved straight to
the file: no window opens, so they run on headless machines and in tests, and
neither pyplot nor the calling process's backend (a notebook's open figures) is
touched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
from matplotlib.figure import Figure

from rnnkit.diagnostics.report import GradientFlowReport, LayerFlow

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from rnnkit.diagnostics.experiment import ExperimentResult

CELL_COLORS = {
    "rnn": "tab:red",
    "lstm": "tab:blue",
    "gru": "tab:green",
    "mingru": "tab:olive",
    "minlstm": "tab:cyan",
}


def relative_norms(flow: LayerFlow, field: str | None = None) -> list[float | None]:
    """``‖∂L/∂s_t‖ / ‖∂L/∂s_last‖`` per step (``None`` where undefined)."""
    _, last = flow.first_last(field)
    norms = flow.grad_norms[field or flow.fields[0]]
    if not last:
        return [None] * len(norms)
    return [None if n is None else n / last for n in norms]


def plot_relative_norms(
    ax: Axes, flow: LayerFlow, *, field: str | None = None, **style: Any
) -> None:
    """One curve ``‖∂L/∂s_t‖ / ‖∂L/∂s_last‖`` against the step ``t = 1..T`` (log y)."""
    values = [float("nan") if v is None or v <= 0 else v for v in relative_norms(flow, field)]
    ax.plot(range(1, len(values) + 1), values, **style)
    ax.set_yscale("log")


def save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def plot_flow_history(
    history: Sequence[tuple[int, GradientFlowReport]], path: str | Path, *, field: str = "h"
) -> Path:
    """``‖∂L/∂h_t‖`` against ``t`` for each recorded training step, one panel per layer.

    Arguments:
        history: ``(training step, report)`` pairs, oldest first.
        path: the PNG to write.
        field: the state field to show (``"h"``; ``"c"`` for an LSTM's cell state).

    Returns:
        ``path``.
    """
    names = list(dict.fromkeys(flow.name for _, report in history for flow in report.layers))
    cols = min(len(names), 3) or 1
    rows = -(-len(names) // cols) or 1
    fig = Figure(figsize=(5.2 * cols, 3.8 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    cmap = matplotlib.colormaps["viridis"]
    for ax, name in zip(axes.flat, names, strict=False):
        for i, (step, report) in enumerate(history):
            for flow in report.layers:
                if flow.name == name and field in flow.grad_norms:
                    norms = [v if v else float("nan") for v in flow.grad_norms[field]]
                    color = cmap(i / max(len(history) - 1, 1))
                    ax.plot(range(1, len(norms) + 1), norms, color=color, label=f"step {step}")
        ax.set_yscale("log")
        ax.set_title(f"{name}: ‖∂L/∂{field}_t‖ during training")
        ax.set_xlabel("time step t")
        ax.set_ylabel(f"‖∂L/∂{field}_t‖ (batch mean)")
        ax.grid(True, which="major", alpha=0.3)
        _legend(ax)
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    return save(fig, path)


def plot_gate_saturation(
    reports: Mapping[str, Mapping[str, GradientFlowReport]], path: str | Path
) -> Path:
    """Fraction of saturated sigmoid-gate units, per cell and gate, for each stage.

    Arguments:
        reports: ``{cell: {stage: report}}``, e.g. ``{"lstm": {"init": r0, "trained":
            r1}}``; the first layer of each report is shown.
        path: the PNG to write.
    """
    cells = list(reports)
    fig = Figure(figsize=(5 * len(cells), 4.2))
    axes = fig.subplots(1, len(cells), squeeze=False)
    for ax, cell in zip(axes.flat, cells, strict=True):
        stages = reports[cell]
        _gate_bars(ax, {stage: report.layers[0] for stage, report in stages.items()})
        ax.set_title(f"{cell}: saturated gate units")
    fig.suptitle(
        "Sigmoid gate units below 0.05 (hatched) or above 0.95 (solid); μ = mean gate value"
    )
    fig.tight_layout()
    return save(fig, path)


def _gate_bars(ax: Axes, flows: Mapping[str, LayerFlow]) -> None:
    gate_names = [
        name
        for name, stats in next(iter(flows.values())).gates.items()
        if stats.saturated is not None
    ]
    if not gate_names:
        ax.text(0.5, 0.5, "no gates\n(vanilla RNN)", ha="center", va="center", fontsize=12)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    width = 0.8 / len(flows)
    for j, (stage, flow) in enumerate(flows.items()):
        low = [flow.gates[g].saturated_low or 0.0 for g in gate_names]
        high = [flow.gates[g].saturated_high or 0.0 for g in gate_names]
        xs = [i + (j - (len(flows) - 1) / 2) * width for i in range(len(gate_names))]
        bars = ax.bar(xs, low, width, label=f"{stage}: < 0.05", hatch="//", alpha=0.9)
        ax.bar(xs, high, width, bottom=low, label=f"{stage}: > 0.95", color=bars[0].get_facecolor())
        for x, g, top in zip(
            xs, gate_names, [a + b for a, b in zip(low, high, strict=True)], strict=True
        ):
            ax.text(x, top + 0.02, f"μ {flow.gates[g].mean:.2f}", ha="center", fontsize="x-small")
    ax.set_xticks(range(len(gate_names)), [f"{g} gate" for g in gate_names])
    ax.set_ylim(0, 1)
    ax.set_ylabel("fraction of units saturated")
    ax.legend(fontsize="small")


# -- the experiment behind `rnnkit gradflow` ---------------------------------------------


def plot_experiment_gradients(result: ExperimentResult, path: Path) -> Path:
    """Two panels (init, trained): ``‖∂L/∂h_t‖ / ‖∂L/∂h_T‖`` against ``t``, log scale."""
    fig = Figure(figsize=(12, 4.5))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, stage in zip(axes, ("init", "trained"), strict=True):
        for cell in result.cells:
            flow = getattr(cell, stage).layers[0]
            color = CELL_COLORS.get(cell.cell)
            plot_relative_norms(ax, flow, color=color, label=f"{cell.cell}: h")
            if "c" in flow.fields:
                plot_relative_norms(
                    ax, flow, field="c", color=color, linestyle="--", label=f"{cell.cell}: c"
                )
        when = (
            "at initialisation" if stage == "init" else f"after {result.config.train_steps} steps"
        )
        ax.set_title(f"Gradient reaching each step, {when}")
        ax.set_xlabel("time step t (the loss is read at the last step, T)")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("‖∂L/∂h_t‖ / ‖∂L/∂h_T‖  (log scale)")
    fig.suptitle(f"{result.config.task} task, T = {result.config.steps}")
    return save(fig, path)


def plot_experiment_gates(result: ExperimentResult, path: Path) -> Path:
    """Saturated sigmoid-gate units per cell, at initialisation and after training."""
    reports = {c.cell: {"init": c.init, "trained": c.trained} for c in result.cells}
    return plot_gate_saturation(reports, path)


def plot_experiment_losses(result: ExperimentResult, path: Path) -> Path:
    """Training loss (smoothed) and test loss against the optimiser step, log scale."""
    fig = Figure(figsize=(7.5, 4.5))
    ax = fig.subplots()
    for cell in result.cells:
        color = CELL_COLORS.get(cell.cell)
        smooth = _running_mean(cell.train_loss, 25)
        ax.plot(
            range(1, len(smooth) + 1), smooth, color=color, alpha=0.5, label=f"{cell.cell} train"
        )
        steps, losses = zip(*cell.test_curve, strict=True)
        ax.plot(steps, losses, color=color, marker="o", markersize=3, label=f"{cell.cell} test")
    ax.axhline(result.baseline, color="black", linestyle=":", label="memoryless baseline")
    ax.set_yscale("log")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel(f"{result.metric} (log scale)")
    ax.set_title(f"{result.config.task} task, T = {result.config.steps}: loss")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small", ncol=2)
    return save(fig, path)


def _running_mean(values: list[float], window: int) -> list[float]:
    """Trailing mean over ``window`` values: a readable curve from noisy batch losses."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _legend(ax: Axes, limit: int = 8) -> None:
    """A legend that stays readable: at most ``limit`` entries, evenly picked."""
    handles, labels = ax.get_legend_handles_labels()
    if len(handles) > limit:
        keep = sorted({round(i * (len(handles) - 1) / (limit - 1)) for i in range(limit)})
        handles, labels = [handles[i] for i in keep], [labels[i] for i in keep]
    if handles:
        ax.legend(handles, labels, fontsize="small")
