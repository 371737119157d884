"""A Lightning callback that records the gradient flow while a model trains."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from rnnkit.diagnostics.flow import gradient_flow
from rnnkit.diagnostics.report import GradientFlowReport, json_safe

LossFn = Callable[[pl.LightningModule, Any], Tensor]
"""``(pl_module, batch) -> scalar loss``."""


class GradientFlowCallback(pl.Callback):
    """Record :func:`~rnnkit.diagnostics.gradient_flow` every ``every_n_steps`` steps.

    At the first training batch (step 0, the initialisation) and then whenever the
    trainer's ``global_step`` reaches a multiple of ``every_n_steps``, the loss on the
    current training batch is measured again with :func:`gradient_flow` (an extra
    forward and backward pass on the loop engine; no ``.grad`` is touched, so training
    is unaffected) and its summary (no per-sequence norms) is appended as one JSON
    line ``{"step", "epoch", "loss", "layers", "parameters"}`` to
    ``out_dir / filename``. At the end of training an optional PNG shows
    ``‖∂L/∂h_t‖`` for every recorded step.

    Arguments:
        every_n_steps: record every this many optimiser steps.
        out_dir: where to write; default the trainer's ``log_dir`` (the run
            directory), else its ``default_root_dir``.
        loss_fn: ``(pl_module, batch) -> loss``; default
            ``pl_module.loss_on_batch(batch)``.
        filename: the JSON-lines file.
        plot: write ``gradient_flow.png`` beside it when training ends.

    Example::

        trainer = Trainer(callbacks=[GradientFlowCallback(every_n_steps=100)])
        trainer.fit(model)  # model defines loss_on_batch(batch) -> Tensor
    """

    def __init__(
        self,
        every_n_steps: int = 100,
        out_dir: str | Path | None = None,
        *,
        loss_fn: LossFn | None = None,
        filename: str = "gradient_flow.jsonl",
        plot: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(every_n_steps, int) or every_n_steps < 1:
            raise ValueError(
                f"GradientFlowCallback: expected every_n_steps >= 1, got {every_n_steps!r}"
            )
        self.every_n_steps, self.loss_fn = every_n_steps, loss_fn
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.filename, self.plot = filename, plot
        self.history: list[tuple[int, GradientFlowReport]] = []
        self.path: Path | None = None

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step == 0 and not self.history:
            self._record(trainer, pl_module, batch)  # the initialisation

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        step = trainer.global_step
        recorded = self.history and self.history[-1][0] == step  # gradient accumulation
        if step % self.every_n_steps == 0 and not recorded:
            self._record(trainer, pl_module, batch)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.plot and self.history and self.path is not None and trainer.is_global_zero:
            from rnnkit.diagnostics.plots import plot_flow_history

            plot_flow_history(self.history, self.path.with_suffix(".png"))

    def _record(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any) -> None:
        with torch.enable_grad():
            report = gradient_flow(
                pl_module, lambda: self._loss(pl_module, batch), per_sequence=False
            )
        step = trainer.global_step
        self.history.append((step, report))
        if not trainer.is_global_zero:
            return
        self.path = self._directory(trainer) / self.filename
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = {"step": step, "epoch": trainer.current_epoch, **report.to_dict(per_sequence=False)}
        mode = "w" if len(self.history) == 1 else "a"  # a fresh file for each fit
        with self.path.open(mode) as f:
            f.write(json.dumps(json_safe(line), allow_nan=False) + "\n")

    def _loss(self, pl_module: pl.LightningModule, batch: Any) -> Tensor:
        if self.loss_fn is not None:
            return self.loss_fn(pl_module, batch)
        loss_on_batch = getattr(pl_module, "loss_on_batch", None)
        if not callable(loss_on_batch):
            raise AttributeError(
                f"GradientFlowCallback: expected {type(pl_module).__name__} to define "
                "loss_on_batch(batch) -> Tensor, or pass loss_fn=(pl_module, batch) -> loss"
            )
        return loss_on_batch(batch)

    def _directory(self, trainer: pl.Trainer) -> Path:
        if self.out_dir is not None:
            return self.out_dir
        return Path(trainer.log_dir or trainer.default_root_dir)
