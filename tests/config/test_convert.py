"""Dataclass configs ↔ plain dicts, strictly checked."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from rnnkit.config import ConfigError, config_from_dict, config_to_dict
from rnnkit.models import RecurrentSpec


@dataclass(frozen=True)
class Inner:
    size: int = 4
    rate: float = 0.5


@dataclass(frozen=True)
class Outer:
    name: str
    inner: Inner = field(default_factory=Inner)
    layers: tuple[int, ...] = (8, 8)
    mode: Literal["a", "b"] = "a"
    maybe: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    flag: bool = False


def test_round_trip_through_json_and_yaml() -> None:
    config = Outer("x", Inner(3, 0.1), (1, 2, 3), "b", 7, {"k": [1, 2]}, True)
    as_dict = config_to_dict(config)
    assert as_dict["layers"] == [1, 2, 3]
    for text in (json.dumps(as_dict), yaml.safe_dump(as_dict)):
        assert config_from_dict(Outer, yaml.safe_load(text)) == config


@given(
    cell=st.sampled_from(["rnn", "lstm", "gru"]),
    hidden=st.integers(1, 512),
    layers=st.integers(1, 4),
    bidirectional=st.booleans(),
    dropout=st.floats(0, 1),
)
def test_recurrent_spec_round_trip(
    cell: str, hidden: int, layers: int, bidirectional: bool, dropout: float
) -> None:
    spec = RecurrentSpec(cell, hidden, layers, bidirectional, dropout, {"layer_norm": True})
    assert config_from_dict(RecurrentSpec, json.loads(json.dumps(config_to_dict(spec)))) == spec


def test_unknown_key_lists_valid_keys_and_suggests() -> None:
    with pytest.raises(
        ConfigError,
        match=r"model\.inner: unknown key 'szie'; did you mean 'size'\? valid: rate, size",
    ):
        config_from_dict(Outer, {"name": "x", "inner": {"szie": 3}}, path="model")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"name": 3}, r"name: expected str, got int 3"),
        ({"name": "x", "inner": {"size": "big"}}, r"inner\.size: expected int, got str 'big'"),
        ({"name": "x", "inner": {"size": True}}, r"inner\.size: expected int, got bool True"),
        ({"name": "x", "mode": "c"}, r"mode: expected one of \['a', 'b'\], got 'c'"),
        ({"name": "x", "layers": 5}, r"layers: expected a list, got int 5"),
        ({"name": "x", "layers": [1, "two"]}, r"layers\[1\]: expected int"),
        ({"name": "x", "flag": "yes"}, r"flag: expected bool"),
        ({}, r"missing required key\(s\) name"),
        ({"name": "x", "inner": [1]}, r"inner: expected a mapping"),
    ],
)
def test_wrong_values_name_the_path(data: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        config_from_dict(Outer, data)


def test_ints_are_accepted_for_floats() -> None:
    assert config_from_dict(Inner, {"rate": 1}).rate == 1.0
