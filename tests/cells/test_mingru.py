"""minGRU and minLSTM cells: the paper's equations, torch-style parameters, a safe
normalisation, and the coefficients the scan engine runs (the same step, for a sequence)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from rnnkit.cells import (
    Cell,
    GRUCell,
    LinearCell,
    MinGRUCell,
    MinLSTMCell,
    mingru_step,
    minlstm_gates,
    minlstm_step,
)
from tests.helpers import assert_close

IN, H, B, T = 5, 7, 4, 6
F64 = torch.float64
CELLS = {"mingru": (MinGRUCell, 2), "minlstm": (MinLSTMCell, 3)}


def _projections(cell: MinGRUCell | MinLSTMCell, x: torch.Tensor) -> list[torch.Tensor]:
    """``W x + b`` of each gate block, by hand."""
    weights = cell.weight_ih.chunk(cell.gates)
    biases = cell.bias_ih.chunk(cell.gates)
    return [x @ w.T + b for w, b in zip(weights, biases, strict=True)]


def test_mingru_step_is_the_papers_equations() -> None:
    cell = MinGRUCell(IN, H, dtype=F64)
    x, h = torch.randn(B, IN, dtype=F64), torch.randn(B, H, dtype=F64)
    k_z, h_tilde = _projections(cell, x)
    z = torch.sigmoid(k_z)
    y, new = cell(x, h)
    assert_close(new, (1 - z) * h + z * h_tilde)
    assert y is new


def test_minlstm_step_is_the_papers_equations() -> None:
    cell = MinLSTMCell(IN, H, dtype=F64)
    x, h = torch.randn(B, IN, dtype=F64), torch.randn(B, H, dtype=F64)
    k_i, k_f, h_tilde = _projections(cell, x)
    i, f = torch.sigmoid(k_i), torch.sigmoid(k_f)
    _, new = cell(x, h)
    assert_close(new, f / (f + i) * h + i / (f + i) * h_tilde)


@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=["f32", "f64"])
def test_minlstm_normalised_gates_sum_to_one_even_when_both_gates_underflow(
    dtype: torch.dtype,
) -> None:
    # Pre-activations down to -200: σ underflows to 0 in fp32, so f / (f + i) would be 0/0.
    k = torch.tensor([[-200.0, -200.0, 1.0], [-200.0, -150.0, 1.0], [30.0, -30.0, 1.0]])
    x = torch.ones(3, 1, dtype=dtype)
    for row in k:
        i, f, _ = minlstm_gates(x[:1], row.to(dtype).view(3, 1))
        assert torch.isfinite(i).all() and torch.isfinite(f).all()
        assert_close(i + f, torch.ones_like(i))
    i, f, _ = minlstm_gates(x[:1], k[1].to(dtype).view(3, 1))
    assert float(f) == pytest.approx(1.0) and float(i) < 1e-20  # f ≈ e^50 · i


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kind", list(CELLS))
def test_parameters_follow_torch_names_shapes_and_init(kind: str, bias: bool) -> None:
    cls, gates = CELLS[kind]
    cell = cls(IN, H, bias=bias)
    names = ["weight_ih", "bias_ih"] if bias else ["weight_ih"]
    assert [n for n, _ in cell.named_parameters()] == names
    assert cell.weight_ih.shape == (gates * H, IN)
    bound = 1 / H**0.5
    for param in cell.parameters():
        assert param.abs().max() <= bound and param.std() > bound / 4
    assert isinstance(cell, Cell) and isinstance(cell, LinearCell)
    assert not isinstance(GRUCell(IN, H), LinearCell)


@pytest.mark.parametrize("kind", list(CELLS))
def test_coefficients_of_a_sequence_are_the_step(kind: str) -> None:
    cell = CELLS[kind][0](IN, H, dtype=F64)
    x, h = torch.randn(T, B, IN, dtype=F64), torch.randn(B, H, dtype=F64)
    a, b = cell.coefficients(x)  # each (T, B, H)
    assert a.shape == b.shape == (T, B, H)
    assert bool(((a >= 0) & (a <= 1)).all())
    for t in range(T):
        _, new = cell(x[t], h)
        assert_close(a[t] * h + b[t], new, what=f"step {t}")
        h = new


@pytest.mark.parametrize("kind", list(CELLS))
def test_unbatched_input_and_default_state(kind: str) -> None:
    cell = CELLS[kind][0](IN, H)
    x = torch.randn(IN)
    y, h = cell(x)
    assert y.shape == h.shape == (H,)
    assert_close(h, cell(x[None], torch.zeros(1, H))[1][0])
    with pytest.raises(ValueError, match=r"expected state shapes \[\(4, 7\)\], got \[\(4, 3\)\]"):
        cell(torch.randn(B, IN), torch.zeros(B, 3))


@pytest.mark.parametrize("step", [mingru_step, minlstm_step], ids=["mingru", "minlstm"])
def test_gradcheck_of_one_step_in_fp64(step: Callable[..., torch.Tensor]) -> None:
    gates = 2 if step is mingru_step else 3
    inputs = (
        torch.randn(2, IN, dtype=F64),
        torch.randn(2, 3, dtype=F64),
        torch.randn(gates * 3, IN, dtype=F64),
        torch.randn(gates * 3, dtype=F64),
    )
    assert torch.autograd.gradcheck(step, tuple(t.requires_grad_() for t in inputs))
