"""The drop-in layers' extras: lengths, per-step states, engines, and clear errors."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import rnnkit
from rnnkit import GRU, LSTM, RNN, LSTMState
from tests.helpers import assert_close, leaves, weighted_sum


def test_is_a_torch_layer_with_the_same_state_dict() -> None:
    ours, ref = (
        LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2),
        nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2),
    )
    assert isinstance(ours, nn.LSTM)
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in ref.state_dict().items()
    }


def test_lstm_returns_named_state() -> None:
    _, state = LSTM(3, 4)(torch.randn(5, 2, 3))
    assert isinstance(state, LSTMState)
    h_n, c_n = state
    assert h_n.shape == c_n.shape == (1, 2, 4)


@settings(max_examples=30, deadline=None)
@given(
    layer_type=st.sampled_from(["rnn", "lstm", "gru"]),
    lengths=st.lists(st.integers(0, 5), min_size=1, max_size=5),
    bidirectional=st.booleans(),
    num_layers=st.integers(1, 2),
    batch_first=st.booleans(),
)
def test_fused_with_lengths_equals_loop(
    layer_type: str, lengths: list[int], bidirectional: bool, num_layers: int, batch_first: bool
) -> None:
    """Ragged lengths (zeros included) on the fused kernel == the loop engine, gradients too."""
    cls = {"rnn": RNN, "lstm": LSTM, "gru": GRU}[layer_type]
    kwargs = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first)
    fused = cls(3, 4, engine="fused", dtype=torch.float64, **kwargs)
    loop = cls(3, 4, engine="loop", dtype=torch.float64, **kwargs)
    loop.load_state_dict(fused.state_dict())
    steps = max(max(lengths), 1)
    shape = (len(lengths), steps, 3) if batch_first else (steps, len(lengths), 3)
    x = torch.randn(*shape, dtype=torch.float64)
    h0 = loop._zero_state(len(lengths), x)
    h0 = type(h0)(*map(torch.randn_like, h0)) if isinstance(h0, tuple) else torch.randn_like(h0)
    results = []
    for layer in (fused, loop):
        xi = x.clone().requires_grad_(True)
        hi = [t.clone().requires_grad_(True) for t in leaves(h0)]
        hx = tuple(hi) if len(hi) == 2 else hi[0]
        out, state = layer(xi, hx, lengths=torch.tensor(lengths))
        grads = torch.autograd.grad(
            weighted_sum([out, *leaves(state)]), [xi, *hi, *layer.parameters()]
        )
        results.append([out, *leaves(state), *grads])
    for a, e in zip(*results, strict=True):
        assert_close(a, e, what="fused vs loop")


def test_zero_length_sequence_keeps_its_initial_state() -> None:
    lstm = LSTM(3, 4, bidirectional=True, batch_first=True)
    h0, c0 = torch.randn(2, 2, 4), torch.randn(2, 2, 4)
    out, (h, c) = lstm(torch.randn(2, 3, 3), (h0, c0), lengths=[3, 0])
    assert out[1].abs().max() == 0
    assert torch.equal(h[:, 1], h0[:, 1]) and torch.equal(c[:, 1], c0[:, 1])


def test_return_states_switches_to_loop_and_matches_outputs() -> None:
    lstm = LSTM(3, 4, num_layers=2, batch_first=True)
    assert lstm.active_engine == "fused"
    assert lstm.engine_for(return_states=True) == "loop"
    x, lengths = torch.randn(2, 6, 3), torch.tensor([6, 4])
    out, (_, c), states = lstm(x, lengths=lengths, return_states=True)
    assert states.h.shape == states.c.shape == (2, 2, 6, 4)  # (L*D, B, T, H), batch_first
    assert_close(states.h[-1], out, what="top-layer h_t is the output")
    assert_close(states.c[:, 0, 5], c[:, 0], what="c at the last step")
    assert_close(states.c[:, 1, 3], c[:, 1], what="c at the last valid step")
    fused_out, _ = lstm(x, lengths=lengths)
    assert_close(out, fused_out, what="same outputs as the fused call")


def test_return_states_for_gru_packed_and_unbatched() -> None:
    gru = GRU(3, 4)
    packed = nn.utils.rnn.pack_sequence([torch.randn(5, 3), torch.randn(2, 3)])
    out, h, states = gru(packed, return_states=True)
    assert isinstance(out, nn.utils.rnn.PackedSequence)
    assert states.shape == (1, 5, 2, 4) and states[0, 2:, 1].abs().sum() == 0
    out, h, states = gru(torch.randn(5, 3), return_states=True)
    assert out.shape == (5, 4) and h.shape == (1, 4) and states.shape == (1, 5, 4)


def test_forced_fused_engine_refuses_return_states() -> None:
    with pytest.raises(ValueError, match="return_states=True needs the 'loop' engine"):
        LSTM(3, 4, engine="fused")(torch.randn(2, 1, 3), return_states=True)


def test_loop_engine_dropout_only_in_training() -> None:
    gru = GRU(3, 8, num_layers=2, dropout=0.5, engine="loop")
    x = torch.randn(4, 2, 3)
    gru.eval()
    assert torch.equal(gru(x)[0], gru(x)[0])
    gru.train()
    assert not torch.equal(gru(x)[0], gru.eval()(x)[0])


def test_dtype_and_device_moves_keep_working() -> None:
    lstm = LSTM(3, 4).double()
    out, _ = lstm(torch.randn(2, 1, 3, dtype=torch.float64))
    assert out.dtype == torch.float64


@pytest.mark.parametrize(
    ("make", "call", "error", "match"),
    [
        (
            lambda: LSTM(3, 4),
            lambda m: m(torch.randn(5, 2, 6)),
            ValueError,
            r"input_size=3 .* got 6",
        ),
        (lambda: GRU(3, 4), lambda m: m(torch.randint(0, 9, (5, 2, 3))), TypeError, "torch.int64"),
        (lambda: RNN(3, 4), lambda m: m(torch.randn(5, 2, 3, 1)), ValueError, r"got 4-D shape"),
        (
            lambda: LSTM(3, 4, num_layers=2),
            lambda m: m(torch.randn(5, 2, 3), (torch.zeros(1, 2, 4), torch.zeros(2, 2, 4))),
            ValueError,
            r"expected hx shapes \[\(2, 2, 4\), \(2, 2, 4\)\], got \[\(1, 2, 4\), \(2, 2, 4\)\]",
        ),
        (
            lambda: GRU(3, 4, bidirectional=True),
            lambda m: m(torch.randn(5, 2, 3), torch.zeros(1, 2, 4)),
            ValueError,
            r"expected hx shapes \[\(2, 2, 4\)\], got \[\(1, 2, 4\)\]",
        ),
        (
            lambda: LSTM(3, 4),
            lambda m: m(torch.randn(5, 2, 3), torch.zeros(1, 2, 4)),
            TypeError,
            r"pair of tensors \(h_0, c_0\)",
        ),
        (
            lambda: GRU(3, 4),
            lambda m: m(torch.randn(5, 2, 3), lengths=[6, 1]),
            ValueError,
            "T=5, got 6",
        ),
        (
            lambda: GRU(3, 4),
            lambda m: m(torch.randn(5, 2, 3), lengths=[-1, 1]),
            ValueError,
            "got -1",
        ),
        (
            lambda: GRU(3, 4),
            lambda m: m(torch.randn(5, 2, 3).double()),
            TypeError,
            "expected input dtype torch.float32 .* got torch.float64",
        ),
    ],
)
def test_bad_input_errors(make: Any, call: Any, error: type, match: str) -> None:
    for engine in ("fused", "loop"):
        with pytest.raises(error, match=match):
            call(make().__class__(3, 4, **_config(make()), engine=engine))


def _config(layer: nn.RNNBase) -> dict[str, Any]:
    return {"num_layers": layer.num_layers, "bidirectional": layer.bidirectional}


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: LSTM(3, 4, proj_size=4), r"proj_size < hidden_size=4, got proj_size=4"),
        (lambda: LSTM(0, 4), "input_size to be an integer >= 1, got 0"),
        (lambda: GRU(3, 4, num_layers=0), "num_layers to be an integer >= 1, got 0"),
        (lambda: RNN(3, 4, nonlinearity="sigmoid"), "'tanh' or 'relu', got 'sigmoid'"),
        (lambda: GRU(3, 4, engine="cuda"), "engine must be one of"),
    ],
)
def test_bad_constructor_arguments(make: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_repr_shows_forced_engine() -> None:
    assert "engine='loop'" in repr(rnnkit.GRU(3, 4, engine="loop"))
    assert "engine" not in repr(rnnkit.GRU(3, 4))


def test_use_engine_switches_every_layer_and_restores() -> None:
    from rnnkit.layers import use_engine

    model = nn.Sequential(rnnkit.LSTM(3, 4), rnnkit.GRU(4, 2, engine="fused"))
    with use_engine(model, "loop") as switched:
        assert len(switched) == 2
        assert [m.active_engine for m in model] == ["loop", "loop"]
    assert [m.engine for m in model] == ["auto", "fused"]
    with pytest.raises(ValueError, match="engine must be one of"), use_engine(model, "gpu"):
        pass
    assert [m.engine for m in model] == ["auto", "fused"]
