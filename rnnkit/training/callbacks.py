"""Lightning plugins that write the run directory and make a resumed run exact.

==========================  ============================================================
plugin                      what it keeps
==========================  ============================================================
:class:`LastCheckpoint`     ``checkpoints/last.safetensors``: the whole training state
                            after every epoch (Lightning's ``ModelCheckpoint``)
:class:`SafetensorsIO`      how Lightning writes and reads that state: safetensors +
                            JSON (:func:`~rnnkit.training.checkpoint.save_checkpoint`),
                            never pickle
:class:`BestWeights`        ``model.safetensors``: the best epoch's weights
:class:`EpochHistory`       ``history.json``: every epoch's logged values and rate
:class:`RandomState`        Python's, NumPy's and torch's random states, in the checkpoint
:class:`DivergenceGuard`    stops a run whose values or weights stop being finite
:class:`EarlyStopping`      Lightning's, keeping the config's patience across a resume
==========================  ============================================================

Each stateful plugin's ``state_dict`` goes into the checkpoint, so ``rnnkit train
--resume`` restores the model, optimiser, schedule, early-stopping count, loop
counters (and with them the samplers' epoch), history, best score and random
states of the last completed epoch. Files are written by global rank zero only.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping as _LightningEarlyStopping
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import CheckpointIO
from torch import Tensor

from rnnkit.errors import RnnkitError
from rnnkit.training.checkpoint import load_checkpoint, save_checkpoint, save_json, save_weights


class TrainingDiverged(RnnkitError, RuntimeError):
    """Training produced a non-finite loss, metric or weight, and the run stopped."""


class SafetensorsIO(CheckpointIO):
    """Lightning's checkpoint IO without pickle (``Trainer(plugins=[SafetensorsIO()])``).

    Tensors go into a safetensors file under their key paths, everything else into
    its header as JSON (:func:`~rnnkit.training.checkpoint.save_checkpoint`); the
    file is replaced atomically. A value that is neither is an error at save time.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        save_checkpoint(checkpoint, path)

    def load_checkpoint(
        self, path: Any, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        # Lightning may pass a storage-mapping function; tensors then load on the CPU
        # and Lightning moves them where they belong.
        device = map_location if isinstance(map_location, str | torch.device) else None
        return load_checkpoint(path, map_location=device)

    def remove_checkpoint(self, path: Any) -> None:
        Path(path).unlink(missing_ok=True)


class LastCheckpoint(ModelCheckpoint):
    """``<dirpath>/last.safetensors``: the training state after every training epoch.

    Lightning's ``ModelCheckpoint`` with one file that each epoch replaces, taken at
    the end of the training epoch (after validation, early stopping and the
    schedule's step), so that resuming from it starts the next epoch exactly as the
    uninterrupted run would. ``trainer.fit(ckpt_path=...)`` reads it back.
    """

    FILE_EXTENSION = ".safetensors"
    NAME = "last"

    def __init__(self, dirpath: str | Path) -> None:
        super().__init__(
            dirpath=str(dirpath),
            filename=self.NAME,
            monitor=None,
            save_top_k=1,  # one file, replaced every epoch
            every_n_epochs=1,
            save_on_train_epoch_end=True,  # never mid-epoch: a resume starts an epoch
            enable_version_counter=False,
        )

    @property
    def path(self) -> Path:
        """Where the checkpoint is."""
        return Path(str(self.dirpath)) / f"{self.NAME}{self.FILE_EXTENSION}"


class EpochHistory(L.Callback):
    """Collect every epoch's logged train/val values into ``history.json``.

    Each row is ``{"epoch": e, "lr": ..., "train_loss": ..., "val_loss": ..., ...}``
    (``lr``: the rate the epoch trained with). The rows are part of the checkpoint,
    so a resumed run's file continues from the checkpoint's epoch.

    Arguments:
        path: the JSON file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.rows: list[dict[str, float]] = []
        self._lr: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        optimizers = trainer.optimizers
        self._lr = float(optimizers[0].param_groups[0]["lr"]) if optimizers else None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        row: dict[str, float] = {"epoch": trainer.current_epoch + 1}
        if self._lr is not None:
            row["lr"] = self._lr
        for name, value in sorted(trainer.callback_metrics.items()):
            if name.startswith(("train_", "val_")):
                row[name] = float(value.item() if isinstance(value, Tensor) else value)
        self.rows.append(row)
        if trainer.is_global_zero:
            save_json(self.rows, self.path)

    def state_dict(self) -> dict[str, Any]:
        return {"rows": [dict(row) for row in self.rows]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rows = [dict(row) for row in state_dict["rows"]]


class BestWeights(L.Callback):
    """Keep the best epoch's weights in ``model.safetensors``.

    After each validation, if the monitored value improved, the weights are written
    (atomically, by rank zero). The best value so far is part of the checkpoint.

    Arguments:
        path: the weights file.
        monitor: the logged value that selects the best epoch, e.g. ``"val_acc"``.
        mode: ``"min"`` or ``"max"``.
    """

    def __init__(self, path: str | Path, *, monitor: str, mode: str) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.path, self.monitor, self.mode = Path(path), monitor, mode
        self.best: float | None = None
        self.best_epoch: int | None = None

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
            self.best, self.best_epoch = float(value), trainer.current_epoch + 1
            if trainer.is_global_zero:
                save_weights(pl_module.model, self.path)

    def state_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "mode": self.mode,
            "best": self.best,
            "best_epoch": self.best_epoch,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = state_dict["best"]
        self.best_epoch = state_dict.get("best_epoch")


class RandomState(L.Callback):
    """Python's, NumPy's and torch's (and CUDA's) random states, in every checkpoint.

    The states are taken when the checkpoint is (the end of a training epoch) and
    put back when the resumed run starts its first epoch, after everything that set
    the run up has drawn what it draws: the next epoch then draws the same dropout
    masks as the uninterrupted run. Under distributed training rank zero's states
    are saved; every rank starts from the same seed and draws alike.
    """

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return random_states()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._pending is not None:
            set_random_states(self._pending)
            self._pending = None


def random_states() -> dict[str, Any]:
    """The global random states: ``python``, ``numpy``, ``torch`` and, once used, ``cuda``."""
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_random_states(states: dict[str, Any]) -> None:
    """Put back states from :func:`random_states`."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    cuda = states.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


class DivergenceGuard(L.Callback):
    """Stop the run when a logged loss or metric, or a weight, is no longer finite.

    Checked after each validation and at the end of each training epoch, before the
    best weights, the history and the checkpoint of that epoch are written (this
    callback comes first), so the files keep the last good state.

    Arguments:
        weights: the best-weights file, named in the error.

    Raises:
        TrainingDiverged: with the values, the epoch and what to do.
    """

    def __init__(self, weights: str | Path) -> None:
        self.weights = Path(weights)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check(trainer, pl_module, "val_")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check(trainer, pl_module, "train_")

    def _check(self, trainer: L.Trainer, pl_module: L.LightningModule, prefix: str) -> None:
        values = {
            name: float(value)
            for name, value in sorted(trainer.callback_metrics.items())
            if name.startswith(prefix) and not math.isfinite(float(value))
        }
        weights = [n for n, p in pl_module.named_parameters() if not bool(p.isfinite().all())]
        if not values and not weights:
            return
        found = [f"{name} = {value}" for name, value in values.items()]
        if weights:
            found.append(f"non-finite weights in {', '.join(weights[:3])}")
        epoch = trainer.current_epoch + 1
        when = "the sanity check" if trainer.sanity_checking else f"epoch {epoch}"
        kept = (
            f"the best finite epoch's weights are kept in {self.weights}"
            if self.weights.is_file()
            else "no epoch ended with finite values, so no weights were kept"
        )
        raise TrainingDiverged(
            f"training diverged in {when}: {'; '.join(found)}; {kept}. Look for inf or NaN "
            "in the data, or lower optimizer.lr (or clip gradients: "
            "train.trainer.gradient_clip_val)"
        )


class EarlyStopping(_LightningEarlyStopping):
    """Lightning's ``EarlyStopping``, whose patience stays the config's after a resume.

    Lightning restores the patience saved in the checkpoint; a run resumed with a
    larger ``train.early_stopping_patience`` should use the larger one.
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        patience = self.patience
        super().load_state_dict(state_dict)
        self.patience = patience

    def stopped(self, state: dict[str, Any]) -> bool:
        """Whether a checkpoint's state of this callback had stopped training."""
        return int(state.get("wait_count", 0)) >= self.patience
