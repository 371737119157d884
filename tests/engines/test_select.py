"""The one engine rule: ``Recurrent`` and the drop-ins describe a call by its facts, and
``select_engine`` picks, over a table of cases (the facts and the engine each expects)."""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest
import torch
from torch import nn

import rnnkit
from rnnkit.engines import EngineFacts, record_steps, select_engine


class _UserCell(nn.Module):
    """A cell the BPTT engine has no backward for."""

    input_size, output_size = 3, 4

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(7, 4)

    def init_state(self, batch_size, *, device=None, dtype=None):
        return torch.zeros(batch_size, 4, device=device, dtype=dtype)

    def forward(self, x, h):
        h = torch.tanh(self.lin(torch.cat([x, h], dim=-1)))
        return h, h


class Case(NamedTuple):
    make: Callable[[], nn.Module]
    facts: EngineFacts  # bptt_refusal: a pattern the layer's explanation matches
    engine: str
    call: dict[str, Any] | None = None  # engine_for() keywords
    context: str = ""  # "recording" or "no_grad"


def _drop_in(name: str, **facts: Any) -> EngineFacts:
    """A drop-in layer's facts for a call on the CPU in training (unless ``facts`` say else)."""
    return EngineFacts(**{"layer": name, "fused_kernel": True, "cpu_training": True, **facts})


def _recurrent(**facts: Any) -> EngineFacts:
    """A ``Recurrent``'s facts for a call on the CPU in training (unless ``facts`` say else)."""
    return EngineFacts(**{"layer": "Recurrent", "cpu_training": True, **facts})


def _minimal(name: str, **facts: Any) -> EngineFacts:
    """A minimal layer's facts for a call on the CPU in training (unless ``facts`` say else)."""
    refusal = f"{name}: the BPTT engine does not run minimal cells"
    base = {"layer": name, "linear": True, "bptt_refusal": refusal, "cpu_training": True}
    return EngineFacts(**{**base, **facts})


NO_PROJECTION = r"LSTM: the BPTT engine does not implement projections \(proj_size=2\)"
CASES: dict[str, Case] = {
    "plain: fused": Case(lambda: rnnkit.LSTM(3, 4), _drop_in("LSTM"), "fused"),
    "plain, per-step states: loop": Case(
        lambda: rnnkit.LSTM(3, 4),
        _drop_in("LSTM", return_states=True),
        "loop",
        {"return_states": True},
    ),
    "init-only options: fused": Case(
        lambda: rnnkit.LSTM(3, 4, forget_bias=1.0, recurrent_init="orthogonal"),
        _drop_in("LSTM"),
        "fused",
    ),
    "variant: bptt": Case(
        lambda: rnnkit.LSTM(3, 4, zoneout_h=0.1), _drop_in("LSTM", variant="zoneout_h=0.1"), "bptt"
    ),
    "variant, per-step states: bptt": Case(
        lambda: rnnkit.GRU(3, 4, layer_norm=True),
        _drop_in("GRU", variant="layer_norm=True", return_states=True),
        "bptt",
        {"return_states": True},
    ),
    "variant, recording: loop": Case(
        lambda: rnnkit.GRU(3, 4, layer_norm=True),
        _drop_in("GRU", variant="layer_norm=True", recording=True),
        "loop",
        context="recording",
    ),
    "plain, recording: fused": Case(
        lambda: rnnkit.RNN(3, 4), _drop_in("RNN", recording=True), "fused", context="recording"
    ),
    "plain, recording, per-step states: loop": Case(
        lambda: rnnkit.RNN(3, 4),
        _drop_in("RNN", recording=True, return_states=True),
        "loop",
        {"return_states": True},
        "recording",
    ),
    "ragged CPU training: bptt": Case(
        lambda: rnnkit.GRU(3, 4), _drop_in("GRU", ragged=True), "bptt", {"ragged": True}
    ),
    "ragged, not the CPU: fused": Case(
        lambda: rnnkit.GRU(3, 4),
        _drop_in("GRU", ragged=True, cpu_training=False),
        "fused",
        {"ragged": True, "device": "meta"},
    ),
    "ragged inference: fused": Case(
        lambda: rnnkit.GRU(3, 4),
        _drop_in("GRU", ragged=True, cpu_training=False),
        "fused",
        {"ragged": True},
        "no_grad",
    ),
    "ragged, recording: fused": Case(
        lambda: rnnkit.LSTM(3, 4),
        _drop_in("LSTM", ragged=True, recording=True),
        "fused",
        {"ragged": True},
        "recording",
    ),
    "ragged with a projection: fused": Case(
        lambda: rnnkit.LSTM(3, 4, proj_size=2),
        _drop_in("LSTM", ragged=True, bptt_refusal=NO_PROJECTION),
        "fused",
        {"ragged": True},
    ),
    "forced loop: loop": Case(
        lambda: rnnkit.LSTM(3, 4, layer_norm=True, engine="loop"),
        _drop_in("LSTM", forced="loop", variant="layer_norm=True"),
        "loop",
    ),
    "forced bptt: bptt": Case(
        lambda: rnnkit.RNN(3, 4, engine="bptt"), _drop_in("RNN", forced="bptt"), "bptt"
    ),
    "Recurrent, built-in cell: bptt": Case(
        lambda: rnnkit.Recurrent(rnnkit.GRUCell(3, 4)), _recurrent(), "bptt"
    ),
    "Recurrent, per-step states: bptt": Case(
        lambda: rnnkit.Recurrent(rnnkit.GRUCell(3, 4)),
        _recurrent(return_states=True),
        "bptt",
        {"return_states": True},
    ),
    "Recurrent, variant cell: bptt": Case(
        lambda: rnnkit.Recurrent(rnnkit.LSTMVariantCell(3, 4, zoneout_h=0.1)), _recurrent(), "bptt"
    ),
    "Recurrent, recording: loop": Case(
        lambda: rnnkit.Recurrent(rnnkit.GRUCell(3, 4)),
        _recurrent(recording=True),
        "loop",
        context="recording",
    ),
    "Recurrent, a projection: loop": Case(
        lambda: rnnkit.Recurrent(rnnkit.LSTMCell(3, 4, proj_size=2)),
        _recurrent(bptt_refusal="does not support this LSTMCell configuration"),
        "loop",
    ),
    "Recurrent, a user cell: loop": Case(
        lambda: rnnkit.Recurrent(_UserCell()),
        _recurrent(bptt_refusal=r"no backward for _UserCell .*register_backward"),
        "loop",
    ),
    "Recurrent, forced loop: loop": Case(
        lambda: rnnkit.Recurrent(rnnkit.GRUCell(3, 4), engine="loop"),
        _recurrent(forced="loop"),
        "loop",
    ),
    "MinGRU: scan": Case(lambda: rnnkit.MinGRU(3, 4), _minimal("MinGRU"), "scan"),
    "MinLSTM, ragged, per-step states: scan": Case(
        lambda: rnnkit.MinLSTM(3, 4),
        _minimal("MinLSTM", ragged=True, return_states=True),
        "scan",
        {"ragged": True, "return_states": True},
    ),
    "MinGRU, inference, not the CPU: scan": Case(
        lambda: rnnkit.MinGRU(3, 4),
        _minimal("MinGRU", cpu_training=False),
        "scan",
        {"device": "meta"},
        "no_grad",
    ),
    "MinGRU, recording: loop": Case(
        lambda: rnnkit.MinGRU(3, 4),
        _minimal("MinGRU", recording=True),
        "loop",
        context="recording",
    ),
    "MinLSTM, forced loop: loop": Case(
        lambda: rnnkit.MinLSTM(3, 4, engine="loop"), _minimal("MinLSTM", forced="loop"), "loop"
    ),
    "Recurrent, minimal cells: scan": Case(
        lambda: rnnkit.Recurrent(lambda n: rnnkit.MinLSTMCell(n, 4), input_size=3, num_layers=2),
        _recurrent(linear=True, bptt_refusal="no backward for MinLSTMCell"),
        "scan",
    ),
    "Recurrent, minimal cells, recording: loop": Case(
        lambda: rnnkit.Recurrent(rnnkit.MinGRUCell(3, 4)),
        _recurrent(linear=True, bptt_refusal="no backward for MinGRUCell", recording=True),
        "loop",
        context="recording",
    ),
}


def _context(name: str) -> contextlib.AbstractContextManager[Any]:
    if name == "recording":
        return record_steps()
    return torch.no_grad() if name == "no_grad" else contextlib.nullcontext()


@pytest.mark.parametrize("name", list(CASES))
def test_layers_and_the_rule_agree_on_every_case(name: str) -> None:
    case = CASES[name]
    layer = case.make()
    with _context(case.context):
        facts = layer.engine_facts(**(case.call or {}))
        engine = layer.engine_for(**(case.call or {}))
    expected = case.facts
    if expected.bptt_refusal is None:
        assert facts.bptt_refusal is None
    else:
        assert re.search(expected.bptt_refusal, facts.bptt_refusal or "")
    assert dataclasses.replace(facts, bptt_refusal=None) == dataclasses.replace(
        expected, bptt_refusal=None
    )
    assert select_engine(expected) == engine == case.engine


@pytest.mark.parametrize(
    ("facts", "make", "message"),
    [
        (
            _drop_in("LSTM", forced="fused", variant="layer_norm=True"),
            lambda: rnnkit.LSTM(3, 4, layer_norm=True, engine="fused"),
            r"LSTM: fused kernels cannot run the variant options \(layer_norm=True\)",
        ),
        (
            _drop_in("LSTM", forced="fused", return_states=True),
            lambda: rnnkit.LSTM(3, 4, engine="fused").engine_for(return_states=True),
            "return_states=True needs the 'loop' engine",
        ),
        (
            _drop_in("LSTM", forced="bptt", bptt_refusal=NO_PROJECTION.replace("\\", "")),
            lambda: rnnkit.LSTM(3, 4, proj_size=2, engine="bptt"),
            NO_PROJECTION,
        ),
        (
            _recurrent(forced="bptt", bptt_refusal="the BPTT engine has no backward for _UserCell"),
            lambda: rnnkit.Recurrent(_UserCell(), engine="bptt"),
            "no backward for _UserCell",
        ),
        (
            _recurrent(forced="scan"),
            lambda: rnnkit.Recurrent(rnnkit.GRUCell(3, 4), engine="scan"),
            "Recurrent: the scan engine runs only cells linear in their state",
        ),
        (
            _recurrent(forced="bptt", linear=True, bptt_refusal="no backward for MinGRUCell"),
            lambda: rnnkit.Recurrent(rnnkit.MinGRUCell(3, 4), engine="bptt"),
            "no backward for MinGRUCell",
        ),
    ],
)
def test_a_forced_engine_that_cannot_run_is_refused_by_rule_and_layer(
    facts: EngineFacts, make: Callable[[], Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        select_engine(facts)
    with pytest.raises(ValueError, match=message):
        make()


def test_the_rule_refuses_what_no_layer_could_ask() -> None:
    with pytest.raises(ValueError, match="Recurrent: has no fused kernels"):
        select_engine(_recurrent(forced="fused"))
    with pytest.raises(ValueError, match="engine must be one of"):
        select_engine(_drop_in("LSTM", forced="cuda"))
    with pytest.raises(ValueError, match="GRU: the scan engine runs only cells linear"):
        select_engine(_drop_in("GRU", forced="scan"))
    with pytest.raises(
        ValueError, match=r"GRU: engine must be one of \('auto', 'fused', 'bptt', 'loop'\)"
    ):
        rnnkit.GRU(3, 4, engine="scan")
