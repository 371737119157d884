"""Lightning ``Trainer`` arguments from a recipe: ``train.trainer``, checked and merged.

``train.trainer`` is a mapping of any ``lightning.Trainer.__init__`` argument; the
Trainer gets it merged over :data:`TRAINER_DEFAULTS`. A recipe for two GPUs with
gradient accumulation::

    train:
      max_epochs: 20
      trainer: {accelerator: gpu, devices: 2, strategy: ddp, accumulate_grad_batches: 4}

Names are checked against the Trainer's signature when the config is built, with a
close-match suggestion. The arguments rnnkit sets itself (:data:`CONTROLLED`: the
epoch count, callbacks, logger, checkpointing, run directory, progress display,
distributed sampling) are refused with the rnnkit option that controls each.
``plugins`` are passed on, beside rnnkit's own checkpoint IO.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from functools import cache
from types import MappingProxyType
from typing import Any

from rnnkit.config.convert import ConfigError, convert_value
from rnnkit.registry import unknown_name_message

TRAINER_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "accelerator": "auto",  # a GPU when there is one
        "devices": "auto",
        "precision": "32-true",
        # Clip the global gradient norm: exploding gradients are the other half of the
        # vanishing-gradient story. `gradient_clip_val: null` switches it off.
        "gradient_clip_val": 1.0,
        "num_sanity_val_steps": 2,
        "log_every_n_steps": 20,  # Lightning's 50 is more than a small dataset's epoch
        "deterministic": False,
    }
)
"""rnnkit's Trainer arguments; ``train.trainer`` overrides any of them."""

CONTROLLED: Mapping[str, str] = MappingProxyType(
    {
        "max_epochs": "set train.max_epochs (a resumed run trains the epochs left)",
        "enable_progress_bar": "set train.progress_bar",
        "enable_model_summary": "set train.progress_bar",
        "callbacks": (
            "it adds history and checkpoint callbacks, and those of "
            "train.early_stopping_patience and train.gradflow_every"
        ),
        "logger": "set train.logger (csv or tensorboard; written under the run directory's logs/)",
        "enable_checkpointing": (
            "it writes safetensors checkpoints into the run directory "
            "(checkpoints/last.safetensors; Lightning's own are pickles)"
        ),
        "default_root_dir": "it is the run directory (rnnkit train --out)",
        "use_distributed_sampler": (
            "rnnkit's DataModules shard every split across processes themselves "
            "(see rnnkit.data.batching)"
        ),
    }
)
"""Trainer arguments rnnkit sets itself, with what controls each instead."""


@cache
def trainer_parameters() -> tuple[str, ...]:
    """The keyword arguments ``lightning.Trainer`` accepts (Lightning is imported here)."""
    import lightning

    params = inspect.signature(lightning.Trainer.__init__).parameters.values()
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return tuple(p.name for p in params if p.name != "self" and p.kind not in variadic)


def check_trainer_arguments(arguments: Mapping[str, Any]) -> None:
    """Raise a :class:`ConfigError` unless every key of ``train.trainer`` is one a recipe may set.

    Raises:
        ConfigError: a name ``lightning.Trainer`` does not take (with the closest
            valid one), or one rnnkit sets itself (naming what controls it).
    """
    if not arguments:
        return  # no need to import Lightning
    valid = [name for name in trainer_parameters() if name not in CONTROLLED]
    for key in map(str, arguments):
        if key in CONTROLLED:
            raise ConfigError(_controlled_message(f"train.trainer.{key}", key))
        if key not in valid:
            raise ConfigError(
                "train.trainer: " + unknown_name_message("Lightning Trainer argument", key, valid)
            )
    hints = _trainer_hints()
    for key, value in arguments.items():
        where = f"train.trainer.{key}"
        if key in hints:
            convert_value(value, hints[key], where)  # a check only: 2 must stay an int
        if key in _COUNTS and not (isinstance(value, int) and value >= 1):
            raise ConfigError(f"{where}: expected an integer >= 1, got {value!r}")


_COUNTS = ("accumulate_grad_batches", "check_val_every_n_epoch", "log_every_n_steps")
"""Trainer arguments that count steps or epochs (Lightning finds 0 only while training)."""


@cache
def _trainer_hints() -> dict[str, Any]:
    """``lightning.Trainer``'s argument annotations (none if they cannot be resolved)."""
    import typing

    import lightning

    try:
        return typing.get_type_hints(lightning.Trainer.__init__)
    except Exception:  # an annotation this Lightning version cannot resolve: trust values
        return {}


def check_train_keys(keys: Iterable[str], own: Iterable[str]) -> None:
    """Point a Trainer argument written directly under ``train:`` to ``train.trainer``.

    Arguments:
        keys: the keys of a recipe's ``train`` mapping.
        own: the keys ``train`` itself takes (:class:`~rnnkit.config.run.TrainConfig`'s
            fields); the others are left for the usual unknown-key error.

    Raises:
        ConfigError: for a Trainer argument such as ``train.gradient_clip_val``.
    """
    own = set(own)
    others = [str(key) for key in keys if key not in own]
    if not others:
        return
    for key in others:
        if key in CONTROLLED:
            raise ConfigError(_controlled_message(f"train.{key}", key))
        if key in trainer_parameters():
            raise ConfigError(
                f"train.{key}: Lightning Trainer arguments go under train.trainer; "
                f"write train.trainer.{key}"
            )


def _controlled_message(where: str, key: str) -> str:
    return f"{where}: rnnkit sets this Trainer argument itself; {CONTROLLED[key]}"
