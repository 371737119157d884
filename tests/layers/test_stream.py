"""Stream: a layer fed step by step or chunk by chunk equals the full-sequence call."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

import rnnkit
from rnnkit import GRUCell, GRUVariantCell, LSTMCell, LSTMVariantCell, Recurrent
from rnnkit.layers.stream import Stream
from tests.helpers import assert_close, leaves
from tests.layers.test_recurrent import SCRNCell

IN, H = 3, 5


def _drop_in(cls: type, engine: str, **options: object) -> Callable[[bool], nn.Module]:
    return lambda bf: cls(IN, H, num_layers=2, batch_first=bf, engine=engine, **options)


LAYERS: dict[str, Callable[[bool], nn.Module]] = {
    **{
        f"{cls.__name__}-{engine}": _drop_in(cls, engine)
        for cls in (rnnkit.RNN, rnnkit.LSTM, rnnkit.GRU)
        for engine in ("fused", "bptt", "loop")
    },
    "LSTM-layer_norm": _drop_in(rnnkit.LSTM, "auto", layer_norm=True),
    "LSTM-peephole": _drop_in(rnnkit.LSTM, "loop", peephole=True),
    "LSTM-zoneout": _drop_in(rnnkit.LSTM, "bptt", zoneout_h=0.3, zoneout_c=0.2),
    "GRU-layer_norm-zoneout": _drop_in(rnnkit.GRU, "auto", layer_norm=True, zoneout_h=0.2),
    "RNN-relu-dropouts": lambda bf: rnnkit.RNN(
        IN, H, nonlinearity="relu", batch_first=bf, input_dropout=0.3, recurrent_dropout=0.3
    ),
    "LSTM-projection": lambda bf: rnnkit.LSTM(IN, H, proj_size=2, batch_first=bf),
    "Recurrent-LSTMCell": lambda bf: Recurrent(
        lambda n: LSTMCell(n, H), input_size=IN, num_layers=2, batch_first=bf
    ),
    "Recurrent-GRUCell-loop": lambda bf: Recurrent(GRUCell(IN, H), batch_first=bf, engine="loop"),
    "Recurrent-variant-cells": lambda bf: Recurrent(
        lambda n: LSTMVariantCell(n, H, layer_norm=True, peephole=True, zoneout_c=0.1),
        input_size=IN,
        num_layers=2,
        batch_first=bf,
    ),
    "Recurrent-GRUVariantCell": lambda bf: Recurrent(
        GRUVariantCell(IN, H, zoneout_h=0.4), batch_first=bf
    ),
    "Recurrent-user-cell": lambda bf: Recurrent(SCRNCell(IN, H), batch_first=bf),
}


def _inputs(batch_first: bool, batch: int = 4, steps: int = 9) -> torch.Tensor:
    x = torch.randn(batch, steps, IN)
    return x if batch_first else x.transpose(0, 1)


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_steps_and_chunks_equal_the_full_sequence_call(name: str, batch_first: bool) -> None:
    layer = LAYERS[name](batch_first).eval()
    x = _inputs(batch_first)
    time = 1 if batch_first else 0
    full, final = layer(x)

    stream = Stream(layer)
    stepped = torch.stack([stream.step(x.select(time, t)) for t in range(x.shape[time])], time)
    assert_close(stepped, full, what=f"{name} step by step")
    for a, b in zip(leaves(stream.state), leaves(final), strict=True):
        assert_close(a, b, what=f"{name} final state after steps")

    stream.reset()
    pieces = [stream.chunk(x.narrow(time, start, size)) for start, size in ((0, 4), (4, 1), (5, 4))]
    assert_close(torch.cat(pieces, time), full, what=f"{name} in chunks")
    for a, b in zip(leaves(stream.state), leaves(final), strict=True):
        assert_close(a, b, what=f"{name} final state after chunks")


@pytest.mark.parametrize("name", ["LSTM-fused", "GRU-bptt", "Recurrent-user-cell"])
def test_ragged_streams_keep_each_sequence_state_at_its_end(name: str) -> None:
    layer = LAYERS[name](True).eval()
    x = _inputs(True)
    lengths = torch.tensor([9, 6, 1, 4])
    full, final = layer(x, lengths=lengths)

    stream = Stream(layer)
    first = stream.chunk(x[:, :5], lengths=lengths.clamp(max=5))
    rest = [stream.step(x[:, t], valid=lengths > t) for t in range(5, 9)]
    assert_close(torch.cat([first, torch.stack(rest, 1)], 1), full, what="ragged stream")
    for a, b in zip(leaves(stream.state), leaves(final), strict=True):
        assert_close(a, b, what="each sequence's state at its own end")


def test_a_stream_continues_from_a_given_state() -> None:
    layer = rnnkit.GRU(IN, H, batch_first=True).eval()
    x = _inputs(True)
    h0 = torch.randn(1, 4, H)
    full, _ = layer(x, h0)
    stream = Stream(layer, h0)
    assert_close(stream.chunk(x), full, what="from h0")


def test_a_bidirectional_layer_cannot_stream() -> None:
    with pytest.raises(ValueError, match="bidirectional layer cannot stream"):
        Stream(rnnkit.LSTM(IN, H, bidirectional=True))
    with pytest.raises(ValueError, match="bidirectional layer cannot stream"):
        Stream(Recurrent(LSTMCell(IN, H), bidirectional=True))


def test_noise_in_training_mode_is_refused_and_eval_mode_streams() -> None:
    layer = rnnkit.LSTM(IN, H, zoneout_h=0.2)
    with pytest.raises(ValueError, match=r"training mode.*layer\.eval\(\)"):
        Stream(layer)
    Stream(layer.eval())
    Stream(rnnkit.LSTM(IN, H))  # a plain layer in training mode draws no noise


def test_step_wants_one_step_per_sequence() -> None:
    stream = Stream(rnnkit.GRU(IN, H, batch_first=True).eval())
    with pytest.raises(ValueError, match=r"expected one step of shape \(B, I\)"):
        stream.step(torch.randn(4, 2, IN))
