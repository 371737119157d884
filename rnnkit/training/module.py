"""The LightningModule: a model, a task and an optimiser, with one shared step."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from rnnkit.config import ConfigError, OptimizerConfig
from rnnkit.config.run import SCHEDULERS
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
STEP_SCHEDULERS = ("warmup_cosine", "one_cycle")
"""The schedules that change the rate every optimiser step (the others: every epoch)."""
ONE_CYCLE_START = 1 / 25
"""``one_cycle`` starts at this share of the peak rate (torch's ``div_factor`` of 25)."""


def check_optimizer(config: OptimizerConfig) -> None:
    """Raise a :class:`~rnnkit.config.ConfigError` unless the optimiser and schedule exist."""
    if config.name not in _OPTIMIZERS:
        raise ConfigError(
            f"unknown optimizer {config.name!r}; valid: {', '.join(sorted(_OPTIMIZERS))}"
        )
    if config.scheduler not in SCHEDULERS:
        raise ConfigError(f"unknown scheduler {config.scheduler!r}; valid: {', '.join(SCHEDULERS)}")


def build_optimizer(params: Any, config: OptimizerConfig) -> torch.optim.Optimizer:
    """The optimiser a config names; unknown names list the valid ones."""
    check_optimizer(config)
    return _OPTIMIZERS[config.name](params, config)


def parameter_groups(model: nn.Module, config: OptimizerConfig) -> list[dict[str, Any]]:
    """The model's parameters in weight-decay groups.

    Without ``weight_decay``, one group of every parameter. With it, the weight
    matrices (two or more dimensions: linear, recurrent and convolution weights) are
    decayed, and biases, normalisation gains and every other parameter of fewer
    dimensions are not (shrinking them towards zero regularises nothing and fights the
    initialisation, e.g. the LSTM's forget bias of 1); nor, unless
    ``decay_embeddings``, are embedding matrices (AdamW would shrink the rows of rare
    words at every step they are not seen), an output layer tied to them included.
    Groups left empty are dropped.
    """
    params = dict(model.named_parameters())  # shared (tied) parameters once
    if config.weight_decay == 0:
        return [{"params": list(params.values())}]
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}

    def decayed(p: Tensor) -> bool:
        return p.dim() >= 2 and (config.decay_embeddings or id(p) not in embeddings)

    groups = [
        {"params": [p for p in params.values() if decayed(p)]},
        {"params": [p for p in params.values() if not decayed(p)], "weight_decay": 0.0},
    ]
    return [group for group in groups if group["params"]]


def _cosine(progress: float, min_fraction: float) -> float:
    """From 1 at ``progress = 0`` to ``min_fraction`` at ``progress >= 1``, on a half cosine."""
    return min_fraction + (1.0 - min_fraction) * 0.5 * (
        1.0 + math.cos(math.pi * min(progress, 1.0))
    )


def cosine_factor(total_epochs: int, *, min_fraction: float = 0.0) -> Callable[[int], float]:
    r"""The cosine schedule as a factor of the base rate after ``epoch`` epochs:

    .. math:: f(e) = m + (1 - m) \tfrac12 \big(1 + \cos(\pi \min(e, E) / E)\big)

    from 1 to ``m = min_fraction`` over ``E = total_epochs``. In closed form (unlike the
    recursive ``CosineAnnealingLR``), so a resumed run whose ``max_epochs`` grew follows
    the new schedule from where it is.

    Example::

        >>> f = cosine_factor(4)
        >>> [round(f(e), 3) for e in range(5)]
        [1.0, 0.854, 0.5, 0.146, 0.0]
    """

    def factor(epoch: int) -> float:
        return _cosine(epoch / total_epochs, min_fraction)

    return factor


def warmup_cosine_factor(
    total_steps: int, *, warmup_steps: int, min_fraction: float = 0.0
) -> Callable[[int], float]:
    r"""Linear warm-up, then cosine decay, as a factor of the peak rate after ``s`` steps:

    .. math::
        f(s) = \begin{cases}
            (s + 1) / (W + 1) & s < W \\
            m + (1 - m) \tfrac12 \big(1 + \cos(\pi \min(s - W, S - W) / (S - W))\big)
            & s \ge W
        \end{cases}

    with ``W = warmup_steps``, ``S = total_steps`` and ``m = min_fraction``. In closed
    form of the step count, which the checkpoint keeps: a resumed run continues it
    exactly.

    Example::

        >>> f = warmup_cosine_factor(10, warmup_steps=2)
        >>> [round(f(s), 3) for s in range(11)]
        [0.333, 0.667, 1.0, 0.962, 0.854, 0.691, 0.5, 0.309, 0.146, 0.038, 0.0]
    """
    decay = max(1, total_steps - warmup_steps)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return _cosine((step - warmup_steps) / decay, min_fraction)

    return factor


def one_cycle_factor(
    total_steps: int, *, warmup_steps: int, min_fraction: float = 0.0
) -> Callable[[int], float]:
    r"""The one-cycle schedule as a factor of the peak rate after ``s`` steps:

    .. math::
        f(s) = \begin{cases}
            a + (1 - a) \tfrac12 \big(1 - \cos(\pi s / W)\big) & s < W \\
            m + (1 - m) \tfrac12 \big(1 + \cos(\pi \min(s - W, S - W) / (S - W))\big)
            & s \ge W
        \end{cases}

    up from ``a =`` :data:`ONE_CYCLE_START` to 1 over ``W = warmup_steps``, then down to
    ``m = min_fraction`` at ``S = total_steps`` (torch's ``OneCycleLR`` with cosine
    annealing, without its momentum cycle), in closed form of the step count.

    Example::

        >>> f = one_cycle_factor(10, warmup_steps=3)
        >>> [round(f(s), 3) for s in (0, 1, 2, 3, 10)]
        [0.04, 0.28, 0.76, 1.0, 0.0]
    """
    decay = max(1, total_steps - warmup_steps)
    start = ONE_CYCLE_START

    def factor(step: int) -> float:
        if step < warmup_steps:
            return start + (1.0 - start) * 0.5 * (1.0 - math.cos(math.pi * step / warmup_steps))
        return _cosine((step - warmup_steps) / decay, min_fraction)

    return factor


def schedule_factor(config: OptimizerConfig, *, epochs: int, steps: int) -> Callable[[int], float]:
    """The closed-form factor of a ``cosine``, ``warmup_cosine`` or ``one_cycle`` config:
    of the epoch for ``cosine`` (over ``epochs``), of the optimiser step otherwise (over
    ``steps``)."""
    if config.scheduler == "cosine":
        return cosine_factor(epochs, min_fraction=config.min_lr_fraction)
    warmup = min(round(config.warmup * steps), steps - 1)  # at least one step of decay
    build = warmup_cosine_factor if config.scheduler == "warmup_cosine" else one_cycle_factor
    return build(steps, warmup_steps=warmup, min_fraction=config.min_lr_fraction)


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
        monitor: ``(name, mode)`` of the value the ``plateau`` schedule watches
            (default: the task's ``monitor`` and ``mode``).

    Every learning-rate schedule is part of Lightning's checkpoint, so a resumed run
    continues it exactly: ``cosine`` (per epoch), ``warmup_cosine`` and ``one_cycle``
    (per optimiser step, over Lightning's ``estimated_stepping_batches``) as
    Lightning's schedulers, ``LambdaLR`` of a closed-form factor; ``plateau`` stepped
    here at the end of each epoch (before the epoch's checkpoint is taken; Lightning
    would step it after) and saved under ``"plateau_scheduler"``.
    """

    def __init__(
        self,
        model: nn.Module,
        task: Task,
        optimizer: OptimizerConfig | None = None,
        *,
        max_epochs: int = 1,
        monitor: tuple[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.model, self.task = model, task
        self.optimizer_config = optimizer or OptimizerConfig()
        self.max_epochs = max_epochs
        self.monitor, self.monitor_mode = monitor or (task.monitor, task.mode)
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
        config = self.optimizer_config
        optimizer = build_optimizer(parameter_groups(self.model, config), config)
        scheduler = config.scheduler
        if scheduler == "cosine" or scheduler in STEP_SCHEDULERS:
            steps = self._total_steps() if scheduler in STEP_SCHEDULERS else 0
            factor = schedule_factor(config, epochs=self.max_epochs, steps=steps)
            interval = "step" if scheduler in STEP_SCHEDULERS else "epoch"
            lambda_lr = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": lambda_lr, "interval": interval},
            }
        if scheduler == "plateau":
            self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer,
                mode=self.monitor_mode,
                factor=0.5,
                patience=self.optimizer_config.patience,
            )
            if self._plateau_state is not None:
                self.plateau.load_state_dict(self._plateau_state)
        return optimizer

    def _total_steps(self) -> int:
        """Optimiser steps of the whole run (epochs, batches, accumulation, ``max_steps``)."""
        steps = self.trainer.estimated_stepping_batches
        if not math.isfinite(steps) or steps < 1:
            raise ConfigError(
                f"optimizer.scheduler={self.optimizer_config.scheduler!r} needs a finite "
                f"number of training steps, got {steps}"
            )
        return int(steps)

    def on_train_epoch_end(self) -> None:
        if self.plateau is None:
            return
        value = self.trainer.callback_metrics.get(self.monitor)
        if value is None:
            raise KeyError(
                f"the plateau schedule's monitor {self.monitor!r} was not logged; "
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
