"""The run config: one YAML file (a recipe) describes data, model, task and training.

A recipe looks like::

    name: digits
    description: GRU over the rows of real MNIST digits
    seed: 0
    task: {name: classification}
    data: {name: digits, batch_size: 64}
    model: {name: classifier, rnn: {cell: gru, hidden_size: 128}, pooling: last}
    optimizer: {name: adam, lr: 0.002}
    train: {max_epochs: 8}

``task``, ``data`` and ``model`` are *components*: a registered ``name`` plus that
component's own options, checked against what the named class accepts. Values that
follow from the data (vocabulary size, number of classes, input features) are filled
in when the run starts; the run directory keeps the fully resolved config.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rnnkit.config import ConfigError, config_from_dict, config_to_dict
from rnnkit.registry import unknown_name_message
from rnnkit.training.module import OptimizerConfig


@dataclass(frozen=True)
class Component:
    """A registered thing by ``name`` with its ``options`` (everything else in the mapping)."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Any, path: str) -> Component:
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise ConfigError(f"{path}: expected a mapping with a 'name', got {data!r}")
        return cls(data["name"], {k: v for k, v in data.items() if k != "name"})

    def to_mapping(self) -> dict[str, Any]:
        return {"name": self.name, **copy.deepcopy(self.options)}


@dataclass(frozen=True)
class TrainConfig:
    """How long and how to train; Lightning ``Trainer`` options pass through.

    Attributes:
        max_epochs: epochs to train (early stopping may end sooner).
        max_steps: stop after this many optimiser steps (-1: no limit).
        gradient_clip_val: clip the global gradient norm (exploding gradients are the
            other half of the vanishing-gradient story); ``None`` disables it.
        early_stopping_patience: epochs without improvement of the task's monitored
            value before stopping; ``None`` disables early stopping.
        accelerator, devices, precision: passed to ``lightning.Trainer`` (``"auto"``
            uses a GPU when there is one).
        deterministic: ask PyTorch for deterministic kernels.
        limit_train_batches, limit_val_batches, limit_test_batches: Lightning's limits
            (a count or a fraction), for quick runs.
        num_sanity_val_steps: validation batches run before training to catch errors.
        log_every_n_steps: logging interval.
        progress_bar: show Lightning's progress bar.
        gradflow_every: record a gradient-flow summary every N steps into the run
            directory (``gradflow.jsonl``); ``None`` disables it.
    """

    max_epochs: int = 10
    max_steps: int = -1
    gradient_clip_val: float | None = 1.0
    early_stopping_patience: int | None = None
    accelerator: str = "auto"
    devices: int | str = "auto"
    precision: str = "32-true"
    deterministic: bool = False
    limit_train_batches: int | float | None = None
    limit_val_batches: int | float | None = None
    limit_test_batches: int | float | None = None
    num_sanity_val_steps: int = 2
    log_every_n_steps: int = 20
    progress_bar: bool = True
    gradflow_every: int | None = None


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs: see the module docstring for the YAML layout."""

    name: str
    task: Component
    data: Component
    model: Component
    description: str = ""
    seed: int = 0
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


_COMPONENTS = ("task", "data", "model")
_TOP_LEVEL = ("name", "description", "seed", "task", "data", "model", "optimizer", "train")


def run_config_from_dict(data: dict[str, Any]) -> RunConfig:
    """Build a :class:`RunConfig` from a recipe mapping (checks keys and types)."""
    if not isinstance(data, dict):
        raise ConfigError(f"a run config must be a mapping, got {type(data).__name__}")
    for key in data:
        if key not in _TOP_LEVEL:
            raise ConfigError(unknown_name_message("top-level key", str(key), list(_TOP_LEVEL)))
    for key in ("name", *_COMPONENTS):
        if key not in data:
            raise ConfigError(f"the run config needs a {key!r} entry")
    components = {k: Component.from_mapping(data[k], k) for k in _COMPONENTS}
    plain = {k: v for k, v in data.items() if k not in _COMPONENTS}
    base = config_from_dict(_PlainRun, plain)
    return RunConfig(
        name=base.name,
        description=base.description,
        seed=base.seed,
        optimizer=base.optimizer,
        train=base.train,
        **components,
    )


@dataclass(frozen=True)
class _PlainRun:
    """The non-component part of a run config, for checking."""

    name: str
    description: str = ""
    seed: int = 0
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def run_config_to_dict(config: RunConfig) -> dict[str, Any]:
    """A run config as a recipe mapping (the inverse of :func:`run_config_from_dict`)."""
    return {
        "name": config.name,
        "description": config.description,
        "seed": config.seed,
        "task": config.task.to_mapping(),
        "data": config.data.to_mapping(),
        "model": config.model.to_mapping(),
        "optimizer": config_to_dict(config.optimizer),
        "train": config_to_dict(config.train),
    }


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or a non-mapping gives a clear error."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a YAML mapping, got {type(data).__name__}")
    return data


def save_yaml(data: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=None))


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to a recipe mapping.

    Arguments:
        data: the recipe mapping (not modified).
        overrides: ``["train.max_epochs=3", "model.rnn.cell=gru", ...]``.

    Returns:
        A new mapping. A top-level key must exist (or be a known one); deeper keys
        are checked when the config is built, against what the component accepts.
    """
    result = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        parts = key.split(".")
        if parts[0] not in _TOP_LEVEL:
            raise ConfigError(
                f"--set {item!r}: "
                + unknown_name_message("top-level key", parts[0], list(_TOP_LEVEL))
            )
        node = result
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {'.'.join(parts[: i + 1])} is not a mapping")
            node = child
        node[parts[-1]] = yaml.safe_load(raw) if raw != "" else ""
    return result


def check_options(target: Any, options: dict[str, Any], path: str) -> None:
    """Raise a clear error if ``options`` has keys ``target``'s signature does not take.

    Follows ``**kwargs`` up the class hierarchy (a DataModule passes its base
    options to ``BaseDataModule``).
    """
    valid = accepted_options(target)
    for key in options:
        if key not in valid:
            raise ConfigError(f"{path}: " + unknown_name_message("option", key, sorted(valid)))


def accepted_options(target: Any) -> set[str]:
    """Keyword names a callable or class accepts (through ``**kwargs`` chains)."""
    names: set[str] = set()
    classes = (
        [c for c in inspect.getmro(target) if c is not object] if inspect.isclass(target) else []
    )
    callables = [c.__init__ for c in classes] if classes else [target]
    for fn in callables:
        params = inspect.signature(fn).parameters.values()
        names |= {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    names.discard("self")
    return names
