"""The optimiser's weight-decay groups and the closed-form learning-rate schedules."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from rnnkit.config import ConfigError, OptimizerConfig
from rnnkit.models.recurrent import RecurrentSpec
from rnnkit.models.tagger import LanguageModel, LanguageModelConfig
from rnnkit.training.module import (
    ONE_CYCLE_START,
    build_optimizer,
    one_cycle_factor,
    parameter_groups,
    warmup_cosine_factor,
)


def _tied_lm() -> nn.Module:
    config = LanguageModelConfig(
        vocab_size=12, embedding_dim=6, rnn=RecurrentSpec("lstm", 8), tie_weights=True
    )
    model = LanguageModel(config)
    model.norm = nn.LayerNorm(8)  # a normalisation gain and bias to keep out of the decay
    return model


def _names(model: nn.Module, group: dict) -> set[str]:
    ids = {id(p) for p in group["params"]}
    return {name for name, p in model.named_parameters() if id(p) in ids}


def test_weight_decay_skips_biases_norms_and_embeddings() -> None:
    model = _tied_lm()
    decayed, plain = parameter_groups(model, OptimizerConfig(name="adamw", weight_decay=0.1))
    assert "weight_decay" not in decayed and plain["weight_decay"] == 0.0
    assert _names(model, decayed) == {
        "rnn.weight_ih_l0",
        "rnn.weight_hh_l0",
        "projection.weight",
    }
    assert {"encoder.embedding.weight", "norm.weight", "norm.bias", "rnn.bias_ih_l0"} <= _names(
        model, plain
    )
    every = {name for name, _ in model.named_parameters()}
    assert _names(model, decayed) | _names(model, plain) == every  # the tied output once


def test_decay_embeddings_decays_the_embedding_and_the_output_tied_to_it() -> None:
    model = _tied_lm()
    config = OptimizerConfig(name="adamw", weight_decay=0.1, decay_embeddings=True)
    decayed = parameter_groups(model, config)[0]
    assert "encoder.embedding.weight" in _names(model, decayed)


def test_without_weight_decay_one_group_as_before() -> None:
    model = _tied_lm()
    (group,) = parameter_groups(model, OptimizerConfig())
    assert len(group["params"]) == len(list(model.parameters()))


def test_adamw_moves_undecayed_parameters_only_by_their_gradient() -> None:
    """With a zero gradient, AdamW shrinks the weight matrices and leaves the biases."""
    model = nn.Sequential(nn.Embedding(5, 3), nn.Linear(3, 2))
    optimizer = build_optimizer(
        parameter_groups(model, OptimizerConfig(name="adamw", lr=0.1, weight_decay=0.5)),
        OptimizerConfig(name="adamw", lr=0.1, weight_decay=0.5),
    )
    before = [p.detach().clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    embedding, weight, bias = (p.detach() for p in model.parameters())
    assert torch.equal(embedding, before[0]) and torch.equal(bias, before[2])
    assert torch.allclose(weight, before[1] * (1 - 0.1 * 0.5))


@settings(max_examples=60, deadline=None)
@given(
    total=st.integers(1, 500),
    warmup_share=st.floats(0.0, 0.9),
    minimum=st.floats(0.0, 0.5),
    one_cycle=st.booleans(),
)
def test_schedules_rise_to_the_peak_then_fall_to_the_minimum(
    total: int, warmup_share: float, minimum: float, one_cycle: bool
) -> None:
    warmup = min(round(warmup_share * total), total - 1)  # as schedule_factor does
    build = one_cycle_factor if one_cycle else warmup_cosine_factor
    f = build(total, warmup_steps=warmup, min_fraction=minimum)
    values = [f(s) for s in range(total + 3)]
    rising, falling = values[: warmup + 1], values[warmup:]
    assert all(a < b for a, b in itertools.pairwise(rising))
    assert all(a >= b for a, b in itertools.pairwise(falling))
    assert values[warmup] == pytest.approx(1.0)
    assert values[total] == pytest.approx(minimum) and values[-1] == pytest.approx(minimum)
    if one_cycle:
        assert values[0] == pytest.approx(ONE_CYCLE_START if warmup else 1.0)
    elif warmup:
        assert values[0] == pytest.approx(1 / (warmup + 1))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"scheduler": "cosine", "warmup_fraction": 0.1}, "applies to the schedules"),
        ({"scheduler": "warmup_cosine", "warmup_fraction": 1.0}, r"in \[0, 1\)"),
        ({"min_lr_fraction": 1.5}, r"min_lr_fraction: expected a number in \[0, 1\]"),
    ],
)
def test_schedule_options_are_checked(options: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        OptimizerConfig(**options)


def test_warmup_defaults_per_schedule() -> None:
    assert OptimizerConfig(scheduler="warmup_cosine").warmup == 0.05
    assert OptimizerConfig(scheduler="one_cycle").warmup == 0.3
    assert OptimizerConfig(scheduler="one_cycle", warmup_fraction=0.1).warmup == 0.1
