"""Callbacks that write the run directory: per-epoch history and safetensors checkpoints."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
from torch import Tensor

from rnnkit.training.checkpoint import load_json, save_json, save_optimizer, save_weights


class EpochHistory(L.Callback):
    """Collect every epoch's logged train/val values into ``history.json``.

    Arguments:
        path: the JSON file (a list of ``{"epoch": e, "train_loss": ..., ...}``).
        epoch_offset: epochs already trained (when resuming), so numbering continues.
    """

    def __init__(self, path: str | Path, *, epoch_offset: int = 0) -> None:
        self.path = Path(path)
        self.epoch_offset = epoch_offset
        self.rows: list[dict[str, float]] = load_json(self.path) if epoch_offset else []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        row: dict[str, float] = {"epoch": self.epoch_offset + trainer.current_epoch + 1}
        for name, value in sorted(trainer.callback_metrics.items()):
            if name.startswith(("train_", "val_")):
                row[name] = float(value.item() if isinstance(value, Tensor) else value)
        self.rows.append(row)
        save_json(self.rows, self.path)


class SafetensorsCheckpoint(L.Callback):
    """Keep the best weights and a resumable last state, as safetensors + JSON.

    After each validation: if the monitored value improved, the weights go to
    ``<run>/model.safetensors``; every epoch, weights, optimiser state and progress go
    to ``<run>/resume/`` so ``rnnkit train --resume <run>`` can continue.

    Arguments:
        run_dir: the run directory.
        monitor: the logged value that selects the best epoch, e.g. ``"val_acc"``.
        mode: ``"min"`` or ``"max"``.
        epoch_offset: epochs already trained (when resuming).
        best: the best monitored value so far (when resuming).
        step_offset: optimiser steps already taken (when resuming).
    """

    def __init__(
        self,
        run_dir: str | Path,
        *,
        monitor: str,
        mode: str,
        epoch_offset: int = 0,
        best: float | None = None,
        step_offset: int = 0,
    ) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.run_dir, self.monitor, self.mode = Path(run_dir), monitor, mode
        self.epoch_offset, self.step_offset = epoch_offset, step_offset
        self.best = best

    def _improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            raise KeyError(
                f"checkpoint monitor {self.monitor!r} was not logged; logged: "
                f"{sorted(trainer.callback_metrics)}"
            )
        if self._improved(float(value)):
            self.best = float(value)
            save_weights(pl_module.model, self.run_dir / "model.safetensors")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        resume = self.run_dir / "resume"
        resume.mkdir(parents=True, exist_ok=True)
        save_weights(pl_module.model, resume / "model.safetensors")
        save_optimizer(trainer.optimizers[0].state_dict(), resume)
        state: dict[str, Any] = {
            "epochs_completed": self.epoch_offset + trainer.current_epoch + 1,
            "global_step": self.step_offset + trainer.global_step,
            "monitor": self.monitor,
            "mode": self.mode,
            "best": self.best,
        }
        save_json(state, resume / "state.json")
