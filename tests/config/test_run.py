"""The run config: recipe mappings, --set overrides, option checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnkit.config import (
    ConfigError,
    accepted_options,
    apply_overrides,
    check_options,
    load_yaml,
    run_config_from_dict,
    run_config_to_dict,
    save_yaml,
)

RECIPE = {
    "name": "toy",
    "description": "a toy",
    "seed": 3,
    "task": {"name": "classification"},
    "data": {"name": "digits", "batch_size": 32},
    "model": {"name": "classifier", "rnn": {"cell": "gru", "hidden_size": 16}},
    "optimizer": {"name": "adam", "lr": 0.01},
    "train": {"max_epochs": 2, "trainer": {"accumulate_grad_batches": 2}},
}


def test_round_trip(tmp_path: Path) -> None:
    config = run_config_from_dict(RECIPE)
    assert config.data.name == "digits" and config.data.options == {"batch_size": 32}
    assert config.train.max_epochs == 2 and config.optimizer.lr == 0.01
    assert config.train.trainer == {"accumulate_grad_batches": 2}
    save_yaml(run_config_to_dict(config), tmp_path / "c.yaml")
    assert run_config_from_dict(load_yaml(tmp_path / "c.yaml")) == config


def test_overrides_parse_yaml_values() -> None:
    data = apply_overrides(
        RECIPE,
        [
            "train.max_epochs=5",
            "model.rnn.cell=lstm",
            "model.rnn.bidirectional=true",
            "optimizer.lr=1e-4",
        ],
    )
    config = run_config_from_dict(data)
    assert config.train.max_epochs == 5 and config.optimizer.lr == 1e-4
    assert config.model.options["rnn"] == {"cell": "lstm", "hidden_size": 16, "bidirectional": True}
    assert RECIPE["train"]["max_epochs"] == 2  # not modified


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["trian.max_epochs=3"], r"unknown top-level key 'trian'; did you mean 'train'\?"),
        (["train.max_epoch=3"], r"train: unknown key 'max_epoch'; did you mean 'max_epochs'\?"),
        (["train.max_epochs"], r"--set expects key=value"),
        (["train.max_epochs=three"], r"train\.max_epochs: expected int, got str 'three'"),
        (["seed.x=1"], r"seed is not a mapping"),
    ],
)
def test_bad_overrides(overrides: list[str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        run_config_from_dict(apply_overrides(RECIPE, overrides))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.max_epochs=three"], "train.max_epochs: expected int, got str 'three'"),
        (["optimizer.lr=fast"], "optimizer.lr: expected float, got str 'fast'"),
        (["seed=x"], "seed: expected int, got str 'x'"),
        (["name=3"], "name: expected str, got int 3"),
        (["train.trainer=5"], "train.trainer: expected a mapping, got int 5"),
        (["train.max_epochs=0"], "train.max_epochs: expected an integer >= 1, got 0"),
        (
            ["train.early_stopping_patience=-1"],
            "train.early_stopping_patience: expected an integer >= 0, got -1",
        ),
        (["train.gradflow_every=0"], "train.gradflow_every: expected an integer >= 1, got 0"),
        (["optimizer.lr=-1"], "optimizer.lr: expected a number > 0, got -1.0"),
        (["optimizer.lr=.nan"], "optimizer.lr: expected a number > 0, got nan"),
        (
            ["optimizer.weight_decay=-0.1"],
            "optimizer.weight_decay: expected a number >= 0, got -0.1",
        ),
        (["optimizer.patience=-2"], "optimizer.patience: expected an integer >= 0, got -2"),
    ],
)
def test_errors_name_the_key_as_the_recipe_spells_it(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        run_config_from_dict(apply_overrides(RECIPE, overrides))
    assert str(err.value) == message


def test_missing_component() -> None:
    with pytest.raises(ConfigError, match="needs a 'model' entry"):
        run_config_from_dict({k: v for k, v in RECIPE.items() if k != "model"})
    with pytest.raises(ConfigError, match="expected a mapping with a 'name'"):
        run_config_from_dict({**RECIPE, "data": {"batch_size": 3}})


class Base:
    def __init__(self, *, seed: int = 0, batch_size: int = 1) -> None: ...


class Child(Base):
    def __init__(self, *, path: str = "", **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]


def test_accepted_options_follow_kwargs_chains() -> None:
    assert accepted_options(Child) == {"path", "seed", "batch_size"}
    check_options(Child, {"path": "x", "seed": 1}, "data")
    with pytest.raises(
        ConfigError, match=r"data: unknown option 'batchsize'; did you mean 'batch_size'\?"
    ):
        check_options(Child, {"batchsize": 3}, "data")


def test_load_yaml_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_yaml(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a YAML mapping, got list"):
        load_yaml(tmp_path / "list.yaml")
