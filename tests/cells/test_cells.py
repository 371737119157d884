"""The readable cells against torch.nn's fused cells, gradcheck, and the protocol."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

import rnnkit
from rnnkit.cells import Cell, GRUCell, LSTMCell, LSTMState, RNNCell
from tests.helpers import assert_close, leaves, weighted_sum

IN, H, B = 5, 7, 4

CELLS: dict[str, tuple[type, type, dict[str, Any]]] = {
    "rnn_tanh": (RNNCell, nn.RNNCell, {"nonlinearity": "tanh"}),
    "rnn_relu": (RNNCell, nn.RNNCell, {"nonlinearity": "relu"}),
    "lstm": (LSTMCell, nn.LSTMCell, {}),
    "gru": (GRUCell, nn.GRUCell, {}),
}


def _torch_step(cell: nn.Module, x: torch.Tensor, state: Any) -> Any:
    """torch.nn cells return the new state directly."""
    return cell(x, None if state is None else tuple(state) if isinstance(state, tuple) else state)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("with_state", [True, False])
@pytest.mark.parametrize("kind", list(CELLS))
def test_cell_matches_torch(
    kind: str, with_state: bool, batched: bool, bias: bool, dtype: torch.dtype
) -> None:
    ours_cls, torch_cls, extra = CELLS[kind]
    reference = torch_cls(IN, H, bias=bias, dtype=dtype, **extra)
    ours = ours_cls(IN, H, bias=bias, dtype=dtype, **extra)
    ours.load_state_dict(reference.state_dict())
    assert list(ours.state_dict()) == list(reference.state_dict())

    lead = (B,) if batched else ()
    x = torch.randn(*lead, IN, dtype=dtype, requires_grad=True)
    state = None
    if with_state:
        h = torch.randn(*lead, H, dtype=dtype, requires_grad=True)
        state = (
            LSTMState(h, torch.randn(*lead, H, dtype=dtype, requires_grad=True))
            if kind == "lstm"
            else h
        )

    expected = _torch_step(reference, x, state)
    y, actual = ours(x, state)
    assert_close(y, leaves(actual)[0], what="output is h")
    for a, e in zip(leaves(actual), leaves(expected), strict=True):
        assert_close(a, e, what="state")
    inputs = [x, *([] if state is None else leaves(state))]
    grads_ours = torch.autograd.grad(weighted_sum(leaves(actual)), inputs + list(ours.parameters()))
    grads_ref = torch.autograd.grad(
        weighted_sum(leaves(expected)), inputs + list(reference.parameters())
    )
    for a, e in zip(grads_ours, grads_ref, strict=True):
        assert_close(a, e, what="gradient")


@pytest.mark.parametrize("kind", list(CELLS))
def test_state_dict_loads_into_torch(kind: str) -> None:
    ours_cls, torch_cls, extra = CELLS[kind]
    ours = ours_cls(IN, H, **extra)
    reference = torch_cls(IN, H, **extra)
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(B, IN)
    assert_close(leaves(ours(x)[1])[0], leaves(_torch_step(reference, x, None))[0], what="h")


@pytest.mark.parametrize(
    "cell",
    [
        RNNCell(3, 4, dtype=torch.float64),
        RNNCell(3, 4, nonlinearity="relu", dtype=torch.float64),
        LSTMCell(3, 4, dtype=torch.float64),
        LSTMCell(3, 4, proj_size=2, dtype=torch.float64),
        GRUCell(3, 4, dtype=torch.float64),
        GRUCell(3, 4, bias=False, dtype=torch.float64),
    ],
    ids=["rnn_tanh", "rnn_relu", "lstm", "lstm_proj", "gru", "gru_nobias"],
)
def test_gradcheck(cell: nn.Module) -> None:
    """fp64 gradcheck with respect to the input, the state and every parameter."""
    names = [name for name, _ in cell.named_parameters()]
    state = cell.init_state(2)
    n_state = len(leaves(state))

    def step(x: torch.Tensor, *rest: torch.Tensor) -> tuple[torch.Tensor, ...]:
        parts, params = rest[:n_state], dict(zip(names, rest[n_state:], strict=True))
        state = LSTMState(*parts) if n_state == 2 else parts[0]
        return tuple(leaves(torch.func.functional_call(cell, params, (x, state))))

    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    parts = [torch.randn_like(s).requires_grad_() for s in leaves(state)]
    assert torch.autograd.gradcheck(step, (x, *parts, *cell.parameters()))


def test_lstm_projection_shapes() -> None:
    cell = LSTMCell(IN, H, proj_size=3)
    y, (h, c) = cell(torch.randn(B, IN))
    assert y.shape == h.shape == (B, 3) and c.shape == (B, H)
    assert cell.weight_hr.shape == (3, H) and cell.weight_hh.shape == (4 * H, 3)


@pytest.mark.parametrize("kind", list(CELLS))
def test_initialisation_matches_torch(kind: str) -> None:
    """U(−1/√H, 1/√H) for every parameter, as torch.nn."""
    ours_cls, _, extra = CELLS[kind]
    cell = ours_cls(IN, 400, **extra)
    bound = 1 / 400**0.5
    for name, p in cell.named_parameters():
        assert p.abs().max() <= bound, name
        assert p.abs().max() > 0.9 * bound, name  # actually spread over the range


def test_cells_follow_the_protocol() -> None:
    for cell in (RNNCell(2, 3), LSTMCell(2, 3), GRUCell(2, 3)):
        assert isinstance(cell, Cell)
        assert cell.input_size == 2 and cell.output_size == 3


@pytest.mark.parametrize(
    ("make_input", "error", "match"),
    [
        (lambda: torch.randn(B, IN + 1), ValueError, "expected input_size=5 .* got 6"),
        (
            lambda: torch.randint(0, 5, (B, IN)),
            TypeError,
            "floating-point .* got dtype torch.int64",
        ),
        (lambda: torch.randn(2, B, IN), ValueError, r"got 3-D shape \(2, 4, 5\)"),
    ],
)
def test_bad_input_errors(make_input: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        LSTMCell(IN, H)(make_input())


def test_bad_state_errors() -> None:
    cell = LSTMCell(IN, H)
    bad = LSTMState(torch.zeros(B, H), torch.zeros(B, H + 1))
    with pytest.raises(
        ValueError,
        match=r"expected state shapes \[\(4, 7\), \(4, 7\)\], got \[\(4, 7\), \(4, 8\)\]",
    ):
        cell(torch.randn(B, IN), bad)


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="proj_size < hidden_size=4, got 4"):
        LSTMCell(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="'tanh' or 'relu', got 'gelu'"):
        RNNCell(3, 4, nonlinearity="gelu")


def test_cells_are_exported_at_top_level() -> None:
    assert rnnkit.LSTMCell is LSTMCell and rnnkit.LSTMState is LSTMState
