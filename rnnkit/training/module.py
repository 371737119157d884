"""The LightningModule: a model, a task and an optimiser, with one shared step."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from rnnkit.config import OptimizerConfig
from rnnkit.training.tasks import Task, update_metrics

STAGES = ("train", "val", "test")

_OPTIMIZERS = {
    "adam": lambda params, c: torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay),
    "adamw": lambda params, c: torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay),
    "sgd": lambda params, c: torch.optim.SGD(
        params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay
    ),
    "rmsprop": lambda params, c: torch.optim.RMSprop(
        params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay
    ),
}
_SCHEDULERS = ("none", "cosine", "plateau")


def build_optimizer(params: Any, config: OptimizerConfig) -> torch.optim.Optimizer:
    """The optimiser a config names; unknown names list the valid ones."""
    if config.name not in _OPTIMIZERS:
        raise ValueError(
            f"unknown optimizer {config.name!r}; valid: {', '.join(sorted(_OPTIMIZERS))}"
        )
    if config.scheduler not in _SCHEDULERS:
        raise ValueError(f"unknown scheduler {config.scheduler!r}; valid: {', '.join(_SCHEDULERS)}")
    return _OPTIMIZERS[config.name](params, config)


class SequenceTaskModule(L.LightningModule):
    """Training logic for any rnnkit model on any task.

    ``training_step``, ``validation_step`` and ``test_step`` share :meth:`_step`: the
    task computes the loss and metric updates, the module logs ``{stage}_loss`` and
    ``{stage}_{metric}`` per epoch.

    Arguments:
        model: an ``nn.Module`` (see :mod:`rnnkit.models`).
        task: a bound :class:`~rnnkit.training.tasks.Task`.
        optimizer: the :class:`~rnnkit.config.OptimizerConfig`.
        max_epochs: for the cosine schedule.
        optimizer_state: a saved optimiser ``state_dict`` to resume from.
    """

    def __init__(
        self,
        model: nn.Module,
        task: Task,
        optimizer: OptimizerConfig | None = None,
        *,
        max_epochs: int = 1,
        optimizer_state: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.model, self.task = model, task
        self.optimizer_config = optimizer or OptimizerConfig()
        self.max_epochs = max_epochs
        self.optimizer_state = optimizer_state
        # One collection per stage, registered as submodules so they follow the device.
        self.train_metrics = task.metrics("train")
        self.val_metrics = task.metrics("val")
        self.test_metrics = task.metrics("test")

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    def _step(self, batch: Any, stage: str) -> Tensor:
        result = self.task.step(self.model, batch, stage)
        metrics = getattr(self, f"{stage}_metrics")
        update_metrics(metrics, result.updates)
        on_step = stage == "train"
        self.log(
            f"{stage}_loss",
            result.loss,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=result.batch_size,
        )
        for name, metric in metrics.items():
            self.log(
                f"{stage}_{name}",
                metric,
                on_step=False,
                on_epoch=True,
                prog_bar=on_step and name == self.task.main_metric,
                batch_size=result.batch_size,
            )
        return result.loss

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "test")

    def loss_on_batch(self, batch: Any) -> Tensor:
        """The training loss of one batch, without logging (for diagnostics)."""
        return self.task.step(self.model, batch, "train").loss

    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.model.parameters(), self.optimizer_config)
        if self.optimizer_state is not None:
            optimizer.load_state_dict(self.optimizer_state)
        scheduler = self.optimizer_config.scheduler
        if scheduler == "cosine":
            cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.max_epochs)
            return {"optimizer": optimizer, "lr_scheduler": cosine}
        if scheduler == "plateau":
            plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer,
                mode=self.task.mode,
                factor=0.5,
                patience=self.optimizer_config.patience,
            )
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": plateau, "monitor": self.task.monitor},
            }
        return optimizer
