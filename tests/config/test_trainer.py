"""``train.trainer``: any Lightning Trainer argument, checked by name, over rnnkit's defaults."""

from __future__ import annotations

import inspect

import lightning as L
import pytest

from rnnkit.config import (
    CONTROLLED,
    TRAINER_DEFAULTS,
    ConfigError,
    TrainConfig,
    apply_overrides,
    run_config_from_dict,
    trainer_parameters,
)

RECIPE = {
    "name": "toy",
    "task": {"name": "classification"},
    "data": {"name": "digits"},
    "model": {"name": "classifier"},
    "train": {"max_epochs": 2},
}


def _train(*overrides: str) -> TrainConfig:
    return run_config_from_dict(apply_overrides(RECIPE, list(overrides))).train


def test_parameters_are_the_trainers_keyword_arguments() -> None:
    expected = set(inspect.signature(L.Trainer.__init__).parameters) - {"self"}
    assert set(trainer_parameters()) == expected
    assert set(TRAINER_DEFAULTS) <= expected and set(CONTROLLED) <= expected
    assert not set(TRAINER_DEFAULTS) & set(CONTROLLED)


def test_any_trainer_argument_is_taken_from_a_recipe() -> None:
    train = _train(
        "train.trainer.strategy=ddp",
        "train.trainer.num_nodes=2",
        "train.trainer.accumulate_grad_batches=4",
        "train.trainer.limit_train_batches=0.5",
    )
    assert train.trainer == {
        "strategy": "ddp",
        "num_nodes": 2,
        "accumulate_grad_batches": 4,
        "limit_train_batches": 0.5,
    }
    assert train.max_epochs == 2


def test_recipe_values_are_merged_over_the_defaults() -> None:
    assert TRAINER_DEFAULTS == {
        "accelerator": "auto",
        "devices": "auto",
        "precision": "32-true",
        "gradient_clip_val": 1.0,
        "num_sanity_val_steps": 2,
        "log_every_n_steps": 20,
        "deterministic": False,
    }
    assert TrainConfig().trainer_arguments() == TRAINER_DEFAULTS
    train = _train("train.trainer.gradient_clip_val=null", "train.trainer.max_steps=5")
    assert train.trainer_arguments() == {
        **TRAINER_DEFAULTS,
        "gradient_clip_val": None,  # null switches clipping off
        "max_steps": 5,
    }


def test_unknown_trainer_argument_suggests_the_closest() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^train\.trainer: unknown Lightning Trainer argument 'stratgy'; "
        r"did you mean 'strategy'\? valid: accelerator, ",
    ):
        _train("train.trainer.stratgy=ddp")
    with pytest.raises(ConfigError, match=r"unknown Lightning Trainer argument 'bogus'"):
        TrainConfig(trainer={"bogus": 1})


@pytest.mark.parametrize(
    ("key", "names"),
    [
        ("max_epochs", "train.max_epochs"),
        ("enable_progress_bar", "train.progress_bar"),
        ("enable_model_summary", "train.progress_bar"),
        ("callbacks", "train.early_stopping_patience"),
        ("logger", "run directory"),
        ("enable_checkpointing", "safetensors"),
        ("default_root_dir", "--out"),
    ],
)
def test_arguments_rnnkit_sets_itself_are_refused(key: str, names: str) -> None:
    with pytest.raises(ConfigError) as err:
        _train(f"train.trainer.{key}=1")
    message = str(err.value)
    assert message.startswith(f"train.trainer.{key}: rnnkit sets this Trainer argument itself; ")
    assert names in message and "\n" not in message


@pytest.mark.parametrize(
    "key",
    [
        "gradient_clip_val",
        "accelerator",
        "devices",
        "precision",
        "deterministic",
        "max_steps",
        "limit_train_batches",
        "limit_val_batches",
        "limit_test_batches",
        "num_sanity_val_steps",
        "log_every_n_steps",
        "strategy",
    ],
)
def test_trainer_arguments_directly_under_train_point_to_train_trainer(key: str) -> None:
    with pytest.raises(
        ConfigError,
        match=rf"^train\.{key}: Lightning Trainer arguments go under train\.trainer; "
        rf"write train\.trainer\.{key}$",
    ):
        _train(f"train.{key}=1")


def test_a_controlled_argument_directly_under_train_names_its_option() -> None:
    with pytest.raises(ConfigError, match=r"^train\.enable_progress_bar: .* train\.progress_bar"):
        _train("train.enable_progress_bar=false")


def test_other_unknown_train_keys_keep_the_usual_error() -> None:
    with pytest.raises(ConfigError, match=r"train: unknown key 'max_epoch'; did you mean"):
        _train("train.max_epoch=3")
