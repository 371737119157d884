"""The vanishing-gradient experiment: RNN, LSTM, GRU, minGRU, minLSTM on a long-range task.

For each cell, a small model (an rnnkit layer and a linear head) is measured
with :func:`~rnnkit.diagnostics.gradient_flow` at initialisation, trained briefly on
the adding problem or the copy-memory task, measured again, and scored on a held-out
test set. ``rnnkit gradflow`` runs it and draws the figures; the library part here
returns numbers and never prints.

Example::

    >>> result = run_experiment(ExperimentConfig(cells=("rnn", "lstm"), steps=100))
    >>> [(c.cell, c.ratio_init, c.test_loss) for c in result.cells]
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.config.convert import ConfigError
from rnnkit.data.synthetic import (
    ADDING_BASELINE_MSE,
    AddingProblem,
    CopyMemory,
    adding_problem,
    copy_memory,
    copy_memory_baseline,
)
from rnnkit.diagnostics.flow import gradient_flow
from rnnkit.diagnostics.report import GradientFlowReport, json_safe, markdown_table
from rnnkit.layers.minimal import MinGRU, MinLSTM
from rnnkit.layers.standard import GRU, LSTM, RNN

# -- tasks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """A generated long-range task.

    Attributes:
        name: the registry key.
        input_size: features per step.
        output_size: the head's outputs (per step when ``per_step``).
        per_step: many-to-many (a prediction at every step) instead of many-to-one.
        metric: what the loss measures, for tables and axes.
        batch: ``(num_samples, T, generator) -> (inputs (N, T', F), targets)``.
        test_set: ``(num_samples, T, seed) -> (inputs, targets)`` from the dataset class.
        loss: ``(predictions, targets) -> scalar``.
        baseline: ``T -> `` the loss of the best memoryless predictor.
    """

    name: str
    input_size: int
    output_size: int
    per_step: bool
    metric: str
    batch: Callable[[int, int, torch.Generator], tuple[Tensor, Tensor]]
    test_set: Callable[[int, int, int], tuple[Tensor, Tensor]]
    loss: Callable[[Tensor, Tensor], Tensor]
    baseline: Callable[[int], float]


def _adding_test(num_samples: int, steps: int, seed: int) -> tuple[Tensor, Tensor]:
    data = AddingProblem(num_samples, steps, seed=seed)
    return data.inputs, data.targets


def _copy_test(num_samples: int, steps: int, seed: int) -> tuple[Tensor, Tensor]:
    data = CopyMemory(num_samples, steps, seed=seed)
    return data.inputs, data.targets


def _copy_loss(logits: Tensor, targets: Tensor) -> Tensor:
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())  # (B·T, C) vs (B·T,)


TASKS: dict[str, Task] = {
    "adding": Task(
        name="adding",
        input_size=2,
        output_size=1,
        per_step=False,
        metric="MSE",
        batch=lambda n, steps, gen: adding_problem(n, steps, generator=gen),
        test_set=_adding_test,
        loss=F.mse_loss,
        baseline=lambda steps: ADDING_BASELINE_MSE,
    ),
    "copy": Task(
        name="copy",
        input_size=10,
        output_size=10,
        per_step=True,
        metric="cross-entropy",
        batch=lambda n, steps, gen: copy_memory(n, steps, generator=gen),
        test_set=_copy_test,
        loss=_copy_loss,
        baseline=copy_memory_baseline,
    ),
}
"""Long-range tasks by name; for ``copy`` the length ``T`` is the delay (``T + 20`` steps)."""

LAYER_CLASSES: dict[str, type[nn.Module]] = {
    "rnn": RNN,
    "lstm": LSTM,
    "gru": GRU,
    "mingru": MinGRU,
    "minlstm": MinLSTM,
}
"""The layers the experiment can compare, by the name of their cell."""


class TaskModel(nn.Module):
    """One recurrent layer and a linear head: the smallest model for a task.

    Arguments:
        cell: a key of :data:`LAYER_CLASSES` (``"rnn"`` is the tanh Elman RNN).
        task: the task it is built for.
        hidden_size: ``H``.
        forget_bias: the LSTM's initial forget-gate bias (ignored by other cells).

    Shape:
        input ``(B, T, F)``; output ``(B, 1)`` (adding) or ``(B, T, C)`` (copy).
    """

    def __init__(self, cell: str, task: Task, hidden_size: int, *, forget_bias: float = 1.0):
        super().__init__()
        if cell not in LAYER_CLASSES:
            raise ValueError(f"TaskModel: expected a cell in {sorted(LAYER_CLASSES)}, got {cell!r}")
        self.per_step = task.per_step
        self.rnn = LAYER_CLASSES[cell](task.input_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, task.output_size)
        if cell == "lstm":
            set_forget_bias_(self.rnn, forget_bias)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.rnn(x)  # (B, T, H)
        # Every sequence of these tasks is full length, so the last step is out[:, -1].
        return self.head(out if self.per_step else out[:, -1])


def set_forget_bias_(lstm: nn.LSTM, value: float) -> None:
    """Set every layer's forget-gate bias ``b_if + b_hf`` to ``value``.

    A bias of 1 starts the forget gate at σ(1) ≈ 0.73 instead of σ(0) = 0.5, so the
    cell state keeps most of itself from step to step and gradients travel back
    through it from the start (Gers et al. 2000; Jozefowicz et al. 2015). With
    PyTorch's default U(−1/√H, 1/√H) bias, ∂c_T/∂c_1 is a product of ~0.5 factors.
    """
    hidden = lstm.hidden_size
    with torch.no_grad():
        for name, bias in lstm.named_parameters():
            if name.startswith("bias_ih"):
                bias[hidden : 2 * hidden] = value  # gate order i, f, g, o
            elif name.startswith("bias_hh"):
                bias[hidden : 2 * hidden] = 0.0


# -- the experiment -----------------------------------------------------------------------


@dataclass(frozen=True)
class ExperimentConfig:
    """Settings of :func:`run_experiment` (the defaults are the documented run).

    Attributes:
        cells: which cells to compare (keys of :data:`LAYER_CLASSES`).
        task: a key of :data:`TASKS`.
        steps: sequence length ``T`` (the delay for ``copy``).
        train_steps: optimiser steps per cell.
        hidden: hidden size ``H``.
        batch_size: training batch size.
        lr: Adam's learning rate.
        clip: gradient-norm clipping threshold.
        forget_bias: the LSTM's initial forget-gate bias (see :func:`set_forget_bias_`).
        test_size: held-out test sequences.
        probe_size: sequences in the batch the gradient flow is measured on.
        eval_every: test-set evaluations every this many steps (for the loss curve).
        seed: seeds the models, the training stream, the test set and the probe batch.
    """

    cells: tuple[str, ...] = ("rnn", "lstm", "gru")
    task: str = "adding"
    steps: int = 100
    train_steps: int = 1500
    hidden: int = 64
    batch_size: int = 64
    lr: float = 1e-2
    clip: float = 1.0
    forget_bias: float = 1.0
    test_size: int = 1000
    probe_size: int = 64
    eval_every: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [c for c in self.cells if c not in LAYER_CLASSES]
        if unknown or not self.cells:
            raise ConfigError(
                f"expected cells from {sorted(LAYER_CLASSES)}, got {list(self.cells)}"
            )
        if self.task not in TASKS:
            raise ConfigError(f"expected a task in {sorted(TASKS)}, got {self.task!r}")
        for name in ("steps", "hidden", "batch_size", "test_size", "probe_size", "eval_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"expected {name} >= 1, got {getattr(self, name)}")
        if self.steps < 2 or self.train_steps < 0:
            raise ConfigError(
                f"expected steps >= 2 and train_steps >= 0, got {self.steps}, {self.train_steps}"
            )
        for name in ("lr", "clip"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"expected {name} a number > 0, got {value!r}")


@dataclass
class CellResult:
    """One cell's run.

    Attributes:
        cell: the cell's name.
        init: the gradient flow at initialisation (measured in float64).
        trained: the gradient flow after training.
        train_loss: the training loss at every optimiser step.
        test_curve: ``(step, test loss)`` every ``eval_every`` steps and at the end.
        test_loss: the final loss on the held-out test set.
        seconds: wall time of both measurements, the training and the test evaluations.
    """

    cell: str
    init: GradientFlowReport
    trained: GradientFlowReport
    train_loss: list[float] = field(default_factory=list)
    test_curve: list[tuple[int, float]] = field(default_factory=list)
    test_loss: float = float("nan")
    seconds: float = 0.0

    @property
    def ratio_init(self) -> float | None:
        """``‖∂L/∂h_1‖ / ‖∂L/∂h_T‖`` at initialisation."""
        return self.init.layers[0].ratio("h")

    @property
    def ratio_trained(self) -> float | None:
        """``‖∂L/∂h_1‖ / ‖∂L/∂h_T‖`` after training."""
        return self.trained.layers[0].ratio("h")


@dataclass
class ExperimentResult:
    """What :func:`run_experiment` returns: the config, the baseline and each cell's run."""

    config: ExperimentConfig
    baseline: float
    cells: list[CellResult]

    @property
    def metric(self) -> str:
        return TASKS[self.config.task].metric

    def rows(self) -> list[dict[str, Any]]:
        """The summary table as records (one per cell)."""
        return [
            {
                "cell": c.cell,
                "ratio_init": c.ratio_init,
                "ratio_trained": c.ratio_trained,
                "final_train_loss": c.train_loss[-1] if c.train_loss else None,
                "test_loss": c.test_loss,
                "baseline": self.baseline,
                "seconds": round(c.seconds, 1),
            }
            for c in self.cells
        ]

    def to_markdown(self) -> str:
        """The summary table in markdown."""
        metric = self.metric
        header = [
            "cell",
            "‖∂L/∂h_1‖/‖∂L/∂h_T‖ at init",
            "… after training",
            f"test {metric}",
            f"baseline {metric}",
            "time (s)",
        ]
        rows = [header]
        for row in self.rows():
            rows.append(
                [
                    row["cell"],
                    _sci(row["ratio_init"]),
                    _sci(row["ratio_trained"]),
                    f"{row['test_loss']:.4f}",
                    f"{row['baseline']:.4f}",
                    f"{row['seconds']:.0f}",
                ]
            )
        return markdown_table(rows) + "\n"

    def to_json(self, *, indent: int | None = 2) -> str:
        """Config, table and per-cell curves and reports (summaries) as JSON."""
        data = {
            "config": asdict(self.config),
            "metric": self.metric,
            "table": self.rows(),
            "cells": [
                {
                    "cell": c.cell,
                    "train_loss": c.train_loss,
                    "test_curve": c.test_curve,
                    "init": c.init.to_dict(per_sequence=False),
                    "trained": c.trained.to_dict(per_sequence=False),
                }
                for c in self.cells
            ],
        }
        return json.dumps(json_safe(data), indent=indent, allow_nan=False)


def run_experiment(
    config: ExperimentConfig, *, progress: Callable[[str], None] | None = None
) -> ExperimentResult:
    """Measure, train and measure again each cell of ``config`` (see the module docstring).

    Every cell starts from the same seed and sees the same training stream, test set
    and probe batch. Training uses each layer's usual engine (fused kernels, the scan
    engine for minGRU/minLSTM); only the two measurements run on the loop engine.

    Arguments:
        config: the settings.
        progress: called with a short line after each phase (the CLI prints them).

    Returns:
        An :class:`ExperimentResult`.
    """
    task = TASKS[config.task]
    test = task.test_set(config.test_size, config.steps, config.seed + 2)
    probe = task.batch(
        config.probe_size, config.steps, torch.Generator().manual_seed(config.seed + 3)
    )
    results = []
    with flush_denormal():
        for cell in config.cells:
            results.append(_run_cell(cell, task, config, test, probe, progress or _quiet))
    return ExperimentResult(config, task.baseline(config.steps), results)


def _run_cell(
    cell: str,
    task: Task,
    config: ExperimentConfig,
    test: tuple[Tensor, Tensor],
    probe: tuple[Tensor, Tensor],
    progress: Callable[[str], None],
) -> CellResult:
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    model = TaskModel(cell, task, config.hidden, forget_bias=config.forget_bias)
    init = measure(model, task, probe)
    progress(f"{cell}: at initialisation ‖∂L/∂h_1‖/‖∂L/∂h_T‖ = {_sci(init.layers[0].ratio())}")
    train_loss, test_curve = train(model, task, config, test)
    trained = measure(model, task, probe)
    result = CellResult(
        cell,
        init,
        trained,
        train_loss,
        test_curve,
        test_curve[-1][1],
        time.perf_counter() - start,
    )
    progress(
        f"{cell}: after {config.train_steps} steps test {task.metric} {result.test_loss:.4f}, "
        f"‖∂L/∂h_1‖/‖∂L/∂h_T‖ = {_sci(result.ratio_trained)} ({result.seconds:.0f} s)"
    )
    return result


def measure(model: nn.Module, task: Task, batch: tuple[Tensor, Tensor]) -> GradientFlowReport:
    """The gradient flow of ``model`` on ``batch``, measured on a float64 copy.

    At T = 100 a vanilla RNN's ``‖∂L/∂h_1‖`` is around 1e-20 of ``‖∂L/∂h_T‖``, which
    float32 arithmetic flushes to zero along the way; float64 keeps the actual value.
    """
    probe = copy.deepcopy(model).double().eval()
    x, y = batch
    x = x.double()
    y = y.double() if y.is_floating_point() else y
    return gradient_flow(probe, lambda: task.loss(probe(x), y), per_sequence=False)


def train(
    model: nn.Module, task: Task, config: ExperimentConfig, test: tuple[Tensor, Tensor]
) -> tuple[list[float], list[tuple[int, float]]]:
    """A short, seeded Adam loop with gradient clipping; returns the loss curves.

    A plain loop rather than Lightning (which the training CLI uses): the experiment
    is a couple of thousand steps on generated data with no checkpoints, logging or devices
    to manage, and a loop this small keeps the comparison between cells exact and
    readable. Clipping matters here: a vanilla RNN's gradients occasionally explode,
    the other face of the same product of Jacobians.

    Returns:
        ``(train_loss per step, [(step, test loss), ...])``.
    """
    generator = torch.Generator().manual_seed(config.seed + 1)  # the training stream
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.lr)
    train_loss: list[float] = []
    test_curve = [(0, evaluate(model, task, test))]
    model.train()
    for step in range(1, config.train_steps + 1):
        x, y = task.batch(config.batch_size, config.steps, generator)
        loss = task.loss(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, config.clip)
        optimizer.step()
        train_loss.append(float(loss.detach()))
        if step % config.eval_every == 0 or step == config.train_steps:
            test_curve.append((step, evaluate(model, task, test)))
    return train_loss, test_curve


@torch.no_grad()
def evaluate(model: nn.Module, task: Task, data: tuple[Tensor, Tensor]) -> float:
    """The task loss on ``data``, in eval mode (restored afterwards)."""
    was_training = model.training
    model.eval()
    try:
        x, y = data
        return float(task.loss(model(x), y))
    finally:
        model.train(was_training)


@contextmanager
def flush_denormal() -> Iterator[None]:
    """Flush subnormal floats to zero on CPU, on one thread, for the block.

    Vanishing gradients are exactly the tiny numbers CPUs handle in slow microcode:
    without this a vanilla RNN's backward pass at T = 100 runs 20-50× slower. The
    flush-to-zero flag is per thread (the MXCSR register), and torch's intra-op
    worker threads keep the default, so the block also runs on one thread; for these
    64-unit models that costs little (measured: RNN 20 ms per step on one thread with
    flushing, 550-950 ms on two without). The measurements run in float64, whose
    subnormals (below 1e-308) are far below anything reported. torch has no getter
    for the flag, so it is restored to the default (off); the thread count is restored.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
        torch.set_num_threads(threads)


def _sci(value: float | None) -> str:
    return "—" if value is None else f"{value:.1e}"


def _quiet(line: str) -> None:
    del line
