"""The run config: one YAML file (a recipe) describes data, model, task and training.

A recipe looks like::

    name: digits
    description: GRU over the rows of real MNIST digits
    seed: 0
    task: {name: classification}
    data: {name: digits, batch_size: 64}
    model: {name: classifier, rnn: {cell: gru, hidden_size: 128}, pooling: last}
    optimizer: {name: adam, lr: 0.002}
    train:
      max_epochs: 8
      trainer: {gradient_clip_val: 0.5, accumulate_grad_batches: 2}

``task``, ``data`` and ``model`` are *components*: a registered ``name`` plus that
component's own options, checked against what the named class accepts. Values that
follow from the data (vocabulary size, number of classes, input features) are filled
in when the run starts; the run directory keeps the fully resolved config.

``train`` holds rnnkit's own training options; ``train.trainer`` takes any argument of
``lightning.Trainer`` (see :mod:`rnnkit.config.trainer`).
"""

from __future__ import annotations

import copy
import inspect
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from rnnkit.config.convert import (
    ConfigError,
    check_choice,
    config_from_dict,
    config_to_dict,
    convert_value,
)
from rnnkit.config.trainer import TRAINER_DEFAULTS, check_train_keys, check_trainer_arguments
from rnnkit.registry import unknown_name_message


@dataclass(frozen=True)
class Component:
    """A registered thing by ``name`` with its ``options`` (everything else in the mapping)."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Any, path: str) -> Component:
        if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
            raise ConfigError(f"{path}: expected a mapping with a 'name', got {data!r}")
        return cls(data["name"], {k: v for k, v in data.items() if k != "name"})

    def to_mapping(self) -> dict[str, Any]:
        return {"name": self.name, **copy.deepcopy(self.options)}


SCHEDULERS = ("none", "cosine", "warmup_cosine", "one_cycle", "plateau")
"""The learning-rate schedules ``optimizer.scheduler`` names."""

WARMUP_DEFAULTS = {"warmup_cosine": 0.05, "one_cycle": 0.3}
"""``optimizer.warmup_fraction`` when the recipe leaves it out, per schedule."""


@dataclass(frozen=True)
class OptimizerConfig:
    """The optimiser and learning-rate schedule.

    Attributes:
        name: ``adam``, ``adamw``, ``sgd`` or ``rmsprop``.
        lr: learning rate (the peak rate of ``warmup_cosine`` and ``one_cycle``).
        weight_decay: L2 penalty (decoupled for ``adamw``) on the weight matrices only:
            biases, normalisation gains and every other parameter with fewer than two
            dimensions are never decayed, embeddings only with ``decay_embeddings``.
        decay_embeddings: decay the embedding matrices too (with ``weight_decay``).
        momentum: for ``sgd`` and ``rmsprop``.
        scheduler: ``none``; ``cosine`` (per epoch, from ``lr`` to ``min_lr_fraction ·
            lr`` over ``max_epochs``); ``warmup_cosine`` (per optimiser step: a linear
            warm-up over ``warmup_fraction`` of the steps, then cosine to ``min_lr_fraction
            · lr``); ``one_cycle`` (per step: cosine up from ``lr / 25`` to ``lr`` over
            ``warmup_fraction`` of the steps, then cosine down to ``min_lr_fraction · lr``;
            Smith & Topin 2019, momentum not cycled); or ``plateau`` (halve the rate when
            the monitored value stalls for ``patience`` epochs).
        warmup_fraction: share of the optimiser steps spent warming up, in ``[0, 1)``;
            ``None``: 0.05 for ``warmup_cosine``, 0.3 for ``one_cycle``.
        min_lr_fraction: the rate the cosine schedules end at, as a share of ``lr``.
        patience: for ``plateau``.
    """

    name: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    decay_embeddings: bool = False
    momentum: float = 0.0
    scheduler: str = "none"
    warmup_fraction: float | None = None
    min_lr_fraction: float = 0.0
    patience: int = 2

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"optimizer.lr: expected a number > 0, got {self.lr!r}")
        for name in ("weight_decay", "momentum"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"optimizer.{name}: expected a number >= 0, got {value!r}")
        _check_count("optimizer.patience", self.patience, minimum=0)
        if self.warmup_fraction is not None:
            if not 0.0 <= self.warmup_fraction < 1.0:
                raise ConfigError(
                    f"optimizer.warmup_fraction: expected a number in [0, 1), "
                    f"got {self.warmup_fraction!r}"
                )
            if self.scheduler in SCHEDULERS and self.scheduler not in WARMUP_DEFAULTS:
                raise ConfigError(
                    f"optimizer.warmup_fraction applies to the schedules "
                    f"{' and '.join(WARMUP_DEFAULTS)}, not scheduler={self.scheduler!r}"
                )
        if not 0.0 <= self.min_lr_fraction <= 1.0:
            raise ConfigError(
                f"optimizer.min_lr_fraction: expected a number in [0, 1], "
                f"got {self.min_lr_fraction!r}"
            )

    @property
    def warmup(self) -> float:
        """The warm-up share of the steps this config's schedule uses."""
        if self.warmup_fraction is not None:
            return self.warmup_fraction
        return WARMUP_DEFAULTS.get(self.scheduler, 0.0)


LOGGERS = ("csv", "tensorboard")
"""The experiment loggers ``train.logger`` names."""

MONITOR_MODES = ("min", "max")
LOWER_IS_BETTER = ("loss", "rmse", "mae", "mape", "ppl", "bpc")
"""Logged names ending in these are minimised (``train.monitor_mode`` left out)."""


@dataclass(frozen=True)
class TrainConfig:
    """How long and how to train: rnnkit's own options, and any Lightning ``Trainer`` argument.

    Attributes:
        max_epochs: epochs to train in total (early stopping may end sooner; a resumed
            run trains the epochs left).
        early_stopping_patience: epochs without improvement of the task's monitored
            value before stopping; ``None`` disables early stopping.
        progress_bar: show Lightning's progress bar and model summary.
        gradflow_every: record a gradient-flow summary every N steps into the run
            directory (``gradient_flow.jsonl``); ``None`` disables it.
        logger: the experiment log inside the run directory's ``logs/``: ``"csv"``
            (``logs/metrics.csv``) or ``"tensorboard"`` (event files for
            ``tensorboard --logdir <run>/logs``; ``pip install "rnnkit[tensorboard]"``).
        monitor: the validation value that picks the best epoch (``model.safetensors``,
            the weights tested) and that early stopping and the ``plateau`` schedule
            watch: ``"val_loss"`` or ``"val_<metric>"`` of the task (``val_acc``,
            ``val_f1``, ``val_bpc``, ...); ``None``: the task's own (classification:
            ``val_acc``; language models, forecasters: ``val_loss``).
        monitor_mode: ``"min"`` or ``"max"`` for ``monitor``; ``None``: the task's mode
            for its own monitor, else ``"min"`` for names ending in one of
            :data:`LOWER_IS_BETTER` and ``"max"`` for the others.
        num_threads: CPU threads for PyTorch's operations during the run
            (``torch.set_num_threads``, put back afterwards); ``None``: PyTorch's own
            default, one per physical core of the machine (or ``OMP_NUM_THREADS``).
        trainer: keyword arguments of ``lightning.Trainer`` (``strategy``,
            ``accumulate_grad_batches``, ``limit_train_batches``, ...), over
            :data:`~rnnkit.config.trainer.TRAINER_DEFAULTS`; checked by name, and the
            ones rnnkit sets itself are refused
            (:data:`~rnnkit.config.trainer.CONTROLLED`).
    """

    max_epochs: int = 10
    early_stopping_patience: int | None = None
    progress_bar: bool = True
    gradflow_every: int | None = None
    logger: str = "csv"
    monitor: str | None = None
    monitor_mode: str | None = None
    num_threads: int | None = None
    trainer: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_count("train.max_epochs", self.max_epochs, minimum=1)
        _check_count("train.early_stopping_patience", self.early_stopping_patience, minimum=0)
        _check_count("train.gradflow_every", self.gradflow_every, minimum=1)
        _check_count("train.num_threads", self.num_threads, minimum=1)
        check_choice("TrainConfig", "logger", self.logger, LOGGERS)
        if self.monitor is not None and not self.monitor.startswith("val_"):
            raise ConfigError(
                "train.monitor: expected a validation value ('val_loss' or 'val_<metric>'; "
                f"the test split chooses nothing), got {self.monitor!r}"
            )
        if self.monitor_mode is not None:
            check_choice("TrainConfig", "monitor_mode", self.monitor_mode, MONITOR_MODES)
        check_trainer_arguments(self.trainer)

    def monitored(self, task_monitor: str, task_mode: str) -> tuple[str, str]:
        """``(name, mode)`` of the value that selects the best epoch, given the task's own."""
        name = self.monitor or task_monitor
        if self.monitor_mode is not None:
            return name, self.monitor_mode
        if name == task_monitor:
            return name, task_mode
        return name, "min" if name.endswith(LOWER_IS_BETTER) else "max"

    def trainer_arguments(self) -> dict[str, Any]:
        """The arguments for ``lightning.Trainer``: ``trainer`` over :data:`TRAINER_DEFAULTS`."""
        return {**TRAINER_DEFAULTS, **copy.deepcopy(self.trainer)}


def _check_count(where: str, value: int | None, *, minimum: int) -> None:
    if value is not None and (isinstance(value, bool) or value < minimum):
        raise ConfigError(f"{where}: expected an integer >= {minimum}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Everything a run needs: see the module docstring for the YAML layout."""

    name: str
    description: str = ""
    seed: int = 0
    task: Component
    data: Component
    model: Component
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


_COMPONENTS = ("task", "data", "model")
TOP_LEVEL_KEYS = tuple(f.name for f in fields(RunConfig))


def run_config_from_dict(data: Mapping[str, Any]) -> RunConfig:
    """Build a :class:`RunConfig` from a recipe mapping, checking every key and type.

    Errors name the key as the recipe spells it (``train.max_epochs: expected int, got
    str 'three'``). The components' options are checked when they are built, against
    what the named class accepts.

    Raises:
        ConfigError: an unknown or missing key, a value of the wrong type, or a Lightning
            Trainer argument outside ``train.trainer``.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"a run config must be a mapping, got {type(data).__name__}")
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(unknown_name_message("top-level key", str(key), list(TOP_LEVEL_KEYS)))
    for key in ("name", *_COMPONENTS):
        if key not in data:
            raise ConfigError(f"the run config needs a {key!r} entry")
    if isinstance(data.get("train"), Mapping):
        check_train_keys(data["train"], [f.name for f in fields(TrainConfig)])
    values = {
        key: Component.from_mapping(value, key) if key in _COMPONENTS else value
        for key, value in data.items()
    }
    return config_from_dict(RunConfig, values, path="")


def run_config_to_dict(config: RunConfig) -> dict[str, Any]:
    """A run config as a recipe mapping (the inverse of :func:`run_config_from_dict`)."""
    values = {f.name: getattr(config, f.name) for f in fields(config)}
    return {
        key: value.to_mapping() if isinstance(value, Component) else config_to_dict(value)
        for key, value in values.items()
    }


# -- component options ----------------------------------------------------------------


def check_options(target: Any, options: Mapping[str, Any], path: str) -> None:
    """Raise a clear error if ``options`` has keys ``target``'s signature does not take.

    Follows ``**kwargs`` up the class hierarchy (a DataModule passes its base
    options to ``BaseDataModule``).
    """
    valid = accepted_options(target)
    for key in options:
        if key not in valid:
            raise ConfigError(f"{path}: " + unknown_name_message("option", key, sorted(valid)))


def build_component(target: Any, options: Mapping[str, Any], path: str, **given: Any) -> Any:
    """``target(**given, **options)`` with every user option checked at the boundary.

    Keys are checked by :func:`check_options`, types against ``target``'s annotations
    (as :func:`~rnnkit.config.convert.config_from_dict` checks a dataclass's), and a
    value the constructor itself rejects (``data.batch_size=0``) becomes a
    :class:`ConfigError` that names the option, whatever the constructor raised.

    Arguments:
        target: a class (or callable) that takes the options as keywords.
        options: the recipe's options (``data:`` without ``name``).
        path: where they sit in the recipe (``"data"``), for messages.
        given: keywords rnnkit adds itself (``seed``, ``data_dir``); ``options`` win.
    """
    check_options(target, options, path)
    hints = _option_hints(target)
    checked = {
        key: convert_value(value, hints[key], f"{path}.{key}") if key in hints else value
        for key, value in options.items()
    }
    try:
        return target(**{**given, **checked})
    except ConfigError:
        raise
    except (ValueError, TypeError) as err:
        message = str(err)
        name = message.split(":", 1)[0].strip()
        raise ConfigError(f"{path}.{message}" if name in options else f"{path}: {message}") from err


def _option_hints(target: Any) -> dict[str, Any]:
    """Each keyword's annotation along ``target``'s ``**kwargs`` chain (unresolvable: skipped)."""
    hints: dict[str, Any] = {}
    for fn in _keyword_chain(target):
        try:
            resolved = typing.get_type_hints(fn)
        except Exception:  # a forward reference the module cannot resolve: trust the value
            resolved = {}
        for name, hint in resolved.items():
            hints.setdefault(name, hint)
    hints.pop("return", None)
    return hints


def accepted_options(target: Any) -> set[str]:
    """Keyword names a callable or class accepts (through ``**kwargs`` chains)."""
    names: set[str] = set()
    for fn in _keyword_chain(target):
        params = inspect.signature(fn).parameters.values()
        names |= {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    names.discard("self")
    return names


def _keyword_chain(target: Any) -> list[Any]:
    """The functions whose keywords ``target`` takes: its ``__init__`` and, while each
    passes ``**kwargs`` on, its bases' (a DataModule passes its base options on)."""
    classes = (
        [c for c in inspect.getmro(target) if c is not object] if inspect.isclass(target) else []
    )
    chain = []
    for fn in [c.__init__ for c in classes] if classes else [target]:
        chain.append(fn)
        params = inspect.signature(fn).parameters.values()
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return chain
