"""The cells called the torch.nn way: what they accept, what torch_compat returns, and
torch.nn code that runs unchanged on rnnkit's cells."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import rnnkit
from rnnkit.cells import LSTMState, map_state
from tests.helpers import assert_close, leaves, weighted_sum

DT = torch.float64
TORCH_CELLS: dict[str, tuple[type, type, dict[str, Any]]] = {
    "rnn_tanh": (rnnkit.RNNCell, nn.RNNCell, {}),
    "rnn_relu": (rnnkit.RNNCell, nn.RNNCell, {"nonlinearity": "relu"}),
    "lstm": (rnnkit.LSTMCell, nn.LSTMCell, {}),
    "gru": (rnnkit.GRUCell, nn.GRUCell, {}),
}


def _torch_state(kind: str, lead: tuple[int, ...], hidden: int) -> Any:
    """A random state as a torch user passes it: a tensor, or a plain ``(h, c)`` tuple."""
    parts = [torch.randn(*lead, hidden, dtype=DT, requires_grad=True) for _ in range(2)]
    return (parts[0], parts[1]) if kind == "lstm" else parts[0]


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(list(TORCH_CELLS)),
    input_size=st.integers(1, 6),
    hidden_size=st.integers(1, 6),
    batch=st.one_of(st.none(), st.integers(1, 4)),
    bias=st.booleans(),
    with_state=st.booleans(),
)
def test_a_torch_compat_cell_answers_a_torch_call_as_torch_nn_does(
    kind: str, input_size: int, hidden_size: int, batch: int | None, bias: bool, with_state: bool
) -> None:
    """``cell(x, hx)`` with hx a tensor, a plain (h, c) tuple or None, batched (B, I) or
    unbatched (I,): the same outputs and gradients as torch.nn's cell with its state_dict."""
    ours_cls, torch_cls, extra = TORCH_CELLS[kind]
    reference = torch_cls(input_size, hidden_size, bias=bias, dtype=DT, **extra)
    ours = ours_cls(input_size, hidden_size, bias=bias, dtype=DT, torch_compat=True, **extra)
    ours.load_state_dict(reference.state_dict())
    lead = () if batch is None else (batch,)
    x = torch.randn(*lead, input_size, dtype=DT, requires_grad=True)
    hx = _torch_state(kind, lead, hidden_size) if with_state else None

    expected, actual = reference(x, hx), ours(x, hx)
    assert isinstance(actual, tuple) == isinstance(expected, tuple)
    for a, e in zip(leaves(actual), leaves(expected), strict=True):
        assert a.shape == e.shape
        assert_close(a, e, what="new state")
    inputs = [x, *([] if hx is None else leaves(hx))]
    grads = torch.autograd.grad(weighted_sum(leaves(actual)), [*inputs, *ours.parameters()])
    wanted = torch.autograd.grad(weighted_sum(leaves(expected)), [*inputs, *reference.parameters()])
    for a, e in zip(grads, wanted, strict=True):
        assert_close(a, e, what="gradient")


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("kind", list(TORCH_CELLS))
def test_without_torch_compat_a_call_takes_the_same_and_returns_the_protocol(
    kind: str, batched: bool
) -> None:
    ours_cls, _, extra = TORCH_CELLS[kind]
    cell = ours_cls(3, 4, dtype=DT, **extra)
    compat = ours_cls(3, 4, dtype=DT, torch_compat=True, **extra)
    compat.load_state_dict(cell.state_dict())
    lead = (2,) if batched else ()
    x, hx = torch.randn(*lead, 3, dtype=DT), _torch_state(kind, lead, 4)
    y, state = cell(x, hx)
    assert type(state) is (LSTMState if kind == "lstm" else torch.Tensor)
    assert torch.equal(y, leaves(state)[0])
    for a, e in zip(leaves(state), leaves(compat(x, hx)), strict=True):
        assert torch.equal(a, e)
    if kind == "lstm":  # torch's LSTMCell also takes [h, c]
        assert all(map(torch.equal, cell(x, list(hx))[1], state))


def _torch_docs_lstm_loop(make_cell: Callable[[int, int], nn.Module]) -> list[torch.Tensor]:
    # torch.nn.LSTMCell's own example, as a torch user writes it, and its training step.
    torch.manual_seed(0)
    rnn = make_cell(10, 20)  # (input_size, hidden_size)
    input = torch.randn(2, 3, 10)  # (time_steps, batch, input_size)
    hx = torch.randn(3, 20)  # (batch, hidden_size)
    cx = torch.randn(3, 20)
    output = []
    for i in range(input.size()[0]):
        hx, cx = rnn(input[i], (hx, cx))
        output.append(hx)
    output = torch.stack(output, dim=0)
    loss = output.pow(2).mean() + cx.sum()
    loss.backward()
    return [output, cx, *(p.grad for p in rnn.parameters())]


def _torch_docs_gru_loop(make_cell: Callable[[int, int], nn.Module]) -> list[torch.Tensor]:
    # torch.nn.GRUCell's example, unbatched (one sequence, no batch dimension).
    torch.manual_seed(0)
    rnn = make_cell(10, 20)
    input = torch.randn(6, 10)  # (time_steps, input_size)
    hx = torch.randn(20)
    output = []
    for i in range(6):
        hx = rnn(input[i], hx)
        output.append(hx)
    torch.stack(output).sum().backward()
    return [*output, *(p.grad for p in rnn.parameters())]


@pytest.mark.parametrize(
    ("script", "torch_cls", "ours_cls"),
    [
        (_torch_docs_lstm_loop, nn.LSTMCell, rnnkit.LSTMCell),
        (_torch_docs_gru_loop, nn.GRUCell, rnnkit.GRUCell),
    ],
    ids=["lstm", "gru"],
)
def test_torch_nn_code_runs_unchanged_and_gives_torchs_numbers(
    script: Callable[..., list[torch.Tensor]], torch_cls: type, ours_cls: type
) -> None:
    """Swapping the class is the only change; the same seed draws the same initial weights."""
    expected = script(torch_cls)
    actual = script(partial(ours_cls, torch_compat=True))
    for a, e in zip(actual, expected, strict=True):
        assert_close(a, e, what="torch's loop")


@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: rnnkit.LSTMVariantCell(3, 4, layer_norm=True, peephole=True, **kw),
        lambda **kw: rnnkit.GRUVariantCell(3, 4, layer_norm=True, **kw),
        lambda **kw: rnnkit.RNNVariantCell(3, 4, zoneout_h=0.3, **kw),
        lambda **kw: rnnkit.MinGRUCell(3, 4, **kw),
        lambda **kw: rnnkit.MinLSTMCell(3, 4, **kw),
    ],
    ids=["lstm_variant", "gru_variant", "rnn_variant", "mingru", "minlstm"],
)
def test_variant_and_minimal_cells_take_plain_tuples_none_and_unbatched_input(
    make: Callable[..., nn.Module],
) -> None:
    cell = make(dtype=DT).eval()
    compat = make(dtype=DT, torch_compat=True).eval()
    compat.load_state_dict(cell.state_dict())
    x = torch.randn(3, dtype=DT)
    state = map_state(lambda s: torch.randn_like(s[0]), cell.init_state(1, dtype=DT))  # (H,)
    plain = tuple(state) if isinstance(state, tuple) else state  # torch's (h, c), or h
    y, new = cell(x, plain)
    y_batched, new_batched = cell(x.unsqueeze(0), map_state(lambda s: s[None], state))
    assert_close(y, y_batched[0], what="unbatched output")
    for a, e, t in zip(leaves(new), leaves(new_batched), leaves(compat(x, plain)), strict=True):
        assert a.shape == (4,)
        assert_close(a, e[0], what="unbatched state")
        assert torch.equal(t, a)
    assert leaves(cell(x)[1])[0].shape == (4,)  # None: zeros, unbatched


def test_a_torch_compat_variant_cell_returns_the_state_under_masks_too() -> None:
    options = {"zoneout_h": 0.5, "recurrent_dropout": 0.5}
    cell = rnnkit.LSTMVariantCell(3, 4, **options)
    compat = rnnkit.LSTMVariantCell(3, 4, torch_compat=True, **options)
    compat.load_state_dict(cell.state_dict())
    x, masks = torch.randn(2, 3), cell.sample_masks(2, 3)  # training mode: masks required
    _, want = cell(x, None, masks=masks.at(0))
    got = compat(x, None, masks=masks.at(0))
    assert isinstance(got, LSTMState)
    assert all(map(torch.equal, got, want))


def test_a_torch_compat_cell_still_runs_in_recurrent() -> None:
    cell = rnnkit.LSTMCell(3, 4, dtype=DT)
    compat = rnnkit.LSTMCell(3, 4, dtype=DT, torch_compat=True)
    compat.load_state_dict(cell.state_dict())
    x = torch.randn(5, 2, 3, dtype=DT)
    for engine in ("loop", "bptt"):
        out, (h, c) = rnnkit.Recurrent(cell, engine=engine)(x)
        out_c, (h_c, c_c) = rnnkit.Recurrent(compat, engine=engine)(x)
        for a, e in ((out_c, out), (h_c, h), (c_c, c)):
            assert_close(a, e, what=engine)


def test_torch_compat_shows_in_the_repr_not_the_state_dict() -> None:
    cell = rnnkit.GRUCell(3, 4, bias=False, torch_compat=True)
    assert repr(cell) == "GRUCell(3, 4, bias=False, torch_compat=True)"
    assert list(cell.state_dict()) == list(nn.GRUCell(3, 4, bias=False).state_dict())


@pytest.mark.parametrize(
    ("cell", "x", "state", "match"),
    [
        (rnnkit.GRUCell(3, 4), torch.randn(2, 3), (torch.zeros(2, 4),), "as one Tensor, got tuple"),
        (rnnkit.LSTMCell(3, 4), torch.randn(2, 3), torch.zeros(2, 4), "as LSTMState, got Tensor"),
        (
            rnnkit.LSTMCell(3, 4),
            torch.randn(3),
            (torch.zeros(1, 4), torch.zeros(1, 4)),
            r"\[\(4,\), \(4,\)\] \(unbatched, as the 1-D input\), got \[\(1, 4\), \(1, 4\)\]",
        ),
        (
            rnnkit.LSTMCell(3, 4),
            torch.randn(2, 3),
            (torch.zeros(2, 4),) * 3,
            r"expected state shapes \[\(2, 4\), \(2, 4\)\], got \[\(2, 4\), \(2, 4\), \(2, 4\)\]",
        ),
    ],
    ids=["gru_tuple", "lstm_tensor", "unbatched_x_batched_state", "lstm_three_parts"],
)
def test_a_state_torch_would_refuse_is_a_clear_error(
    cell: nn.Module, x: torch.Tensor, state: Any, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        cell(x, state)
