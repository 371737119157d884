"""config_to_dict / config_from_dict: round trips, type checks and helpful errors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
import yaml

from rnnkit.config import ConfigError, config_from_dict, config_to_dict
from rnnkit.models import (
    MODELS,
    ClassifierConfig,
    InputSpec,
    RecurrentSpec,
    Seq2SeqConfig,
    build_model,
)
from tests.models.cases import CASES


def _configs() -> list[Any]:
    """Every model's default config and its tiny test config (nested, tuples, options)."""
    configs = [MODELS.get(name).Config() for name in MODELS.names()]
    configs += [CASES[name]("lstm").model.config for name in MODELS.names()]
    configs.append(
        ClassifierConfig(rnn=RecurrentSpec("lstm", 8, options={"proj_size": 4}), head_hidden=(3, 2))
    )
    return configs


@pytest.mark.parametrize("config", _configs(), ids=lambda c: type(c).__name__)
def test_round_trip_through_json_and_yaml(config: Any) -> None:
    data = config_to_dict(config)
    assert config_from_dict(type(config), json.loads(json.dumps(data))) == config
    assert config_from_dict(type(config), yaml.safe_load(yaml.safe_dump(data))) == config
    assert type(config).from_dict(config.to_dict()) == config


def test_to_dict_is_plain_data() -> None:
    data = config_to_dict(ClassifierConfig(head_hidden=(4, 2)))
    assert data["head_hidden"] == [4, 2]
    assert data["rnn"] == {
        "cell": "lstm",
        "hidden_size": 128,
        "num_layers": 1,
        "bidirectional": False,
        "dropout": 0.0,
        "options": {},
    }
    assert data["input"]["kind"] == "embedding"


def test_unknown_key_lists_valid_keys_and_suggests_the_closest() -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict(ClassifierConfig, {"num_clases": 3})
    message = str(err.value)
    assert "unknown key 'num_clases'" in message
    assert "did you mean 'num_classes'?" in message
    assert "head_dropout, head_hidden" in message  # the valid keys, sorted


def test_nested_unknown_key_names_its_path() -> None:
    with pytest.raises(
        ConfigError,
        match=r"Seq2SeqConfig\.encoder: unknown key 'hiden_size'; "
        r"did you mean 'hidden_size'\?",
    ):
        config_from_dict(Seq2SeqConfig, {"encoder": {"hiden_size": 3}})


def test_model_path_in_build_model_errors() -> None:
    with pytest.raises(ConfigError, match=r"model \(classifier\)\.rnn\.hidden_size: expected int"):
        build_model("classifier", {"rnn": {"hidden_size": "big"}})


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"num_classes": "3"}, r"ClassifierConfig\.num_classes: expected int, got str '3'"),
        ({"num_classes": True}, r"expected int, got bool True"),
        ({"head_hidden": 3}, r"head_hidden: expected a list, got int 3"),
        ({"head_hidden": [3, "a"]}, r"head_hidden\[1\]: expected int, got str 'a'"),
        ({"rnn": 5}, r"ClassifierConfig\.rnn: expected a mapping of RecurrentSpec fields"),
        ({"pooling": "maxx"}, r"unknown pooling 'maxx'; did you mean 'max'\?"),
        (
            {"input": {"kind": "embedding"}},
            r"ClassifierConfig\.input: InputSpec: kind='embedding'"
            r" needs vocab_size",
        ),
    ],
)
def test_bad_values_are_rejected_with_their_path(data: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        config_from_dict(ClassifierConfig, data)


def test_conversions() -> None:
    cfg = config_from_dict(ClassifierConfig, {"head_dropout": 0, "head_hidden": [5]})
    assert cfg.head_dropout == 0.0 and isinstance(cfg.head_dropout, float)
    assert cfg.head_hidden == (5,)
    spec = config_from_dict(InputSpec, {"kind": "identity", "input_size": 28, "padding_idx": None})
    assert spec.padding_idx is None
    # An instance is accepted where a dict is expected.
    rnn = RecurrentSpec("gru", 4)
    assert config_from_dict(ClassifierConfig, {"rnn": rnn}).rnn is rnn


@dataclass(frozen=True)
class Inner:
    size: int
    name: str = "x"


@dataclass(frozen=True)
class Outer:
    """A run-config-like dataclass: the converter is generic, not model-specific."""

    inner: Inner
    maybe: Inner | None = None
    pair: tuple[int, str] = (1, "a")
    tags: list[str] = field(default_factory=list)
    table: dict[str, float] = field(default_factory=dict)
    mode: Literal["fast", "slow"] = "fast"
    anything: Any = None


def test_generic_dataclasses() -> None:
    data = {
        "inner": {"size": 2},
        "maybe": {"size": 3, "name": "y"},
        "pair": [2, "b"],
        "tags": ["a", "b"],
        "table": {"lr": 1},
        "mode": "slow",
        "anything": {"free": ["form"]},
    }
    cfg = config_from_dict(Outer, data)
    assert cfg == Outer(
        Inner(2), Inner(3, "y"), (2, "b"), ["a", "b"], {"lr": 1.0}, "slow", {"free": ["form"]}
    )
    assert config_from_dict(Outer, json.loads(json.dumps(config_to_dict(cfg)))) == cfg
    assert config_from_dict(Outer, {"inner": {"size": 1}, "maybe": None}).maybe is None


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({}, r"Outer: missing required key\(s\) inner"),
        ({"inner": {}}, r"Outer\.inner: missing required key\(s\) size"),
        ({"inner": {"size": 1}, "pair": [1]}, r"Outer\.pair: expected 2 items, got 1"),
        ({"inner": {"size": 1}, "mode": "medium"}, r"Outer\.mode: expected one of \['fast', "),
        ({"inner": {"size": 1}, "table": {"lr": "x"}}, r"Outer\.table\.lr: expected float"),
        ({"inner": None}, r"Outer\.inner: expected a mapping of Inner fields, got None"),
        ({"inner": {"size": 1}, "pair": None}, r"Outer\.pair: expected tuple, got None"),
    ],
)
def test_generic_errors(data: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        config_from_dict(Outer, data)


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)
