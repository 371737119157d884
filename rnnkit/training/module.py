"""The LightningModule: a model, a task and an optimiser, with one shared step."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from rnnkit.config import ConfigError, OptimizerConfig
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


def check_optimizer(config: OptimizerConfig) -> None:
    """Raise a :class:`~rnnkit.config.ConfigError` unless the optimiser and schedule exist."""
    if config.name not in _OPTIMIZERS:
        raise ConfigError(
            f"unknown optimizer {config.name!r}; valid: {', '.join(sorted(_OPTIMIZERS))}"
        )
    if config.scheduler not in _SCHEDULERS:
        raise ConfigError(
            f"unknown scheduler {config.scheduler!r}; valid: {', '.join(_SCHEDULERS)}"
        )


def build_optimizer(params: Any, config: OptimizerConfig) -> torch.optim.Optimizer:
    """The optimiser a config names; unknown names list the valid ones."""
    check_optimizer(config)
    return _OPTIMIZERS[config.name](params, config)


def cosine_factor(total_epochs: int) -> Callable[[int], float]:
    r"""The cosine schedule as a factor of the base rate after ``epoch`` epochs:

    .. math:: f(e) = \tfrac12 \big(1 + \cos(\pi \min(e, E) / E)\big)

    from 1 to 0 over ``E = total_epochs``. In closed form (unlike the recursive
    ``CosineAnnealingLR``), so a resumed run whose ``max_epochs`` grew follows the new
    schedule from where it is.

    Example::

        >>> f = cosine_factor(4)
        >>> [round(f(e), 3) for e in range(5)]
        [1.0, 0.854, 0.5, 0.146, 0.0]
    """

    def factor(epoch: int) -> float:
        return 0.5 * (1.0 + math.cos(math.pi * min(epoch, total_epochs) / total_epochs))

    return factor


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

    Every learning-rate schedule is part of Lightning's checkpoint, so a resumed run
    continues it exactly: ``cosine`` as Lightning's scheduler, ``plateau`` stepped here
    at the end of each epoch (before the epoch's checkpoint is taken; Lightning would
    step it after) and saved under ``"plateau_scheduler"``.
    """

    def __init__(
        self,
        model: nn.Module,
        task: Task,
        optimizer: OptimizerConfig | None = None,
        *,
        max_epochs: int = 1,
    ) -> None:
        super().__init__()
        self.model, self.task = model, task
        self.optimizer_config = optimizer or OptimizerConfig()
        self.max_epochs = max_epochs
        self.plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
        self._plateau_state: dict[str, Any] | None = None
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
            sync_dist=True,  # the mean over every process's examples (torchmetrics syncs itself)
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
        scheduler = self.optimizer_config.scheduler
        if scheduler == "cosine":
            cosine = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_factor(self.max_epochs))
            return {"optimizer": optimizer, "lr_scheduler": cosine}
        if scheduler == "plateau":
            self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer,
                mode=self.task.mode,
                factor=0.5,
                patience=self.optimizer_config.patience,
            )
            if self._plateau_state is not None:
                self.plateau.load_state_dict(self._plateau_state)
        return optimizer

    def on_train_epoch_end(self) -> None:
        if self.plateau is None:
            return
        value = self.trainer.callback_metrics.get(self.task.monitor)
        if value is None:
            raise KeyError(
                f"the plateau schedule's monitor {self.task.monitor!r} was not logged; "
                f"logged: {sorted(self.trainer.callback_metrics)}"
            )
        self.plateau.step(float(value))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.plateau is not None:
            checkpoint["plateau_scheduler"] = self.plateau.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lightning restores the module before it calls configure_optimizers (except
        # under strategies that restore after setup, such as FSDP).
        self._plateau_state = checkpoint.get("plateau_scheduler")
        if self.plateau is not None and self._plateau_state is not None:
            self.plateau.load_state_dict(self._plateau_state)
