"""Configs: one home for every config in rnnkit, and the one path from YAML to objects.

=====================  ==============================================================
module                 holds
=====================  ==============================================================
:mod:`.convert`        dataclass ⇄ plain dict (:func:`config_from_dict`,
                       :func:`config_to_dict`), :class:`ConfigError`, value checks
:mod:`.run`            the run config: :class:`RunConfig` of :class:`Component` s,
                       :class:`OptimizerConfig`, :class:`TrainConfig`; recipe mapping ⇄
                       :class:`RunConfig`; component options checked against signatures
:mod:`.trainer`        ``train.trainer``: :data:`TRAINER_DEFAULTS`, the arguments rnnkit
                       sets itself (:data:`CONTROLLED`), checks against
                       ``lightning.Trainer``'s signature
:mod:`.recipe`         YAML files and ``--set key=value`` overrides
=====================  ==============================================================

A run goes recipe YAML → :func:`load_yaml` → :func:`apply_overrides` →
:func:`run_config_from_dict` (every key and type checked once, errors named as the
recipe spells them: ``train.max_epochs``) → :class:`RunConfig`; the training code
builds the data, task, model and Trainer from it (:mod:`rnnkit.training.run`).
"""

from rnnkit.config.convert import (
    ConfigError,
    ConfigMixin,
    check_choice,
    check_positive,
    check_probability,
    config_from_dict,
    config_to_dict,
)
from rnnkit.config.recipe import apply_overrides, load_yaml, save_yaml
from rnnkit.config.run import (
    TOP_LEVEL_KEYS,
    Component,
    OptimizerConfig,
    RunConfig,
    TrainConfig,
    accepted_options,
    build_component,
    check_options,
    run_config_from_dict,
    run_config_to_dict,
)
from rnnkit.config.trainer import (
    CONTROLLED,
    TRAINER_DEFAULTS,
    check_train_keys,
    check_trainer_arguments,
    trainer_parameters,
)

__all__ = [
    "CONTROLLED",
    "TOP_LEVEL_KEYS",
    "TRAINER_DEFAULTS",
    "Component",
    "ConfigError",
    "ConfigMixin",
    "OptimizerConfig",
    "RunConfig",
    "TrainConfig",
    "accepted_options",
    "apply_overrides",
    "build_component",
    "check_choice",
    "check_options",
    "check_positive",
    "check_probability",
    "check_train_keys",
    "check_trainer_arguments",
    "config_from_dict",
    "config_to_dict",
    "load_yaml",
    "run_config_from_dict",
    "run_config_to_dict",
    "save_yaml",
    "trainer_parameters",
]
