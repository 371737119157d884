"""Worked example (docs/bptt.md, "Adding a cell"): a new cell with a hand-written backward.

The leaky RNN cell (a continuous-time RNN discretised with step α, as in echo-state and
neuroscience models):

    ĥ_t = tanh(W x_t + b + U h_{t-1}),    h_t = (1 - α) h_{t-1} + α ĥ_t

Four pieces, each short:

1. the cell, written plainly (the reference the engine is tested against);
2. an ``autograd.Function`` for the recurrence with the backward derived by hand:
   δa_t = α (1 - k_t) δh_t ⊙ (1 - ĥ_t²),
   δh_{t-1} = δ̄h_{t-1} + (k_t + (1 - k_t)(1 - α)) δh_t + δa_t U,
   ∂L/∂U = Σ_t δa_tᵀ h_{t-1} (one GEMM after the loop);
3. a runner: input projection for all steps as one GEMM, the Function, outputs;
4. ``register_backward``, after which ``Recurrent`` runs the cell on the BPTT engine.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import rnnkit
from rnnkit.engines import ScanResult
from rnnkit.engines.bptt import register_backward
from rnnkit.engines.bptt.common import finish, keep_weights, recurrent_weight_grad, time_order
from tests.helpers import assert_close, leaves, weighted_sum

# -- 1. the cell ------------------------------------------------------------------------------


class LeakyRNNCell(nn.Module):
    """``h_t = (1 - α) h_{t-1} + α tanh(W x_t + b + U h_{t-1})``; output ``y_t = h_t``."""

    def __init__(self, input_size: int, hidden_size: int, *, leak: float = 0.5) -> None:
        super().__init__()
        self.input_size, self.output_size, self.leak = input_size, hidden_size, leak
        bound = hidden_size**-0.5
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size).uniform_(-bound, bound))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(hidden_size))

    def init_state(self, batch_size: int, *, device=None, dtype=None) -> Tensor:
        return self.weight_hh.new_zeros(batch_size, self.output_size, device=device, dtype=dtype)

    def forward(self, x: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        target = torch.tanh(F.linear(x, self.weight_ih, self.bias) + F.linear(h, self.weight_hh))
        h = h + self.leak * (target - h)
        return h, h


# -- 2. the recurrence with its hand-written backward ----------------------------------------


class LeakyRecurrence(torch.autograd.Function):
    """Inputs: ``a (T, B, H)`` = W x + b for all steps, ``U (H, H)``, ``h0 (B, H)``,
    keep weights ``(T, B, 1)`` or ``None`` (padding), ``leak``, ``reverse``.
    Returns the state after every step ``(T, B, H)``."""

    @staticmethod
    def forward(ctx: Any, a, weight_hh, h0, keep, leak: float, reverse: bool) -> Tensor:
        steps, batch, hidden = a.shape
        hs, targets = a.new_empty(steps, batch, hidden), a.new_empty(steps, batch, hidden)
        h = h0
        for t in time_order(steps, reverse):  # per step: one GEMM, then element-wise
            torch.addmm(a[t], h, weight_hh.t(), out=targets[t]).tanh_()
            new = torch.lerp(h, targets[t], leak)  # h + α (ĥ - h)
            hs[t] = new if keep is None else torch.lerp(new, h, keep[t])
            h = hs[t]
        ctx.leak, ctx.reverse = leak, reverse
        ctx.save_for_backward(weight_hh, h0, keep, hs, targets)
        return hs

    @staticmethod
    def backward(ctx: Any, d_hs: Tensor):
        weight_hh, h0, keep, hs, targets = ctx.saved_tensors
        leak, steps = ctx.leak, hs.shape[0]
        d_a = torch.empty_like(targets)
        order = list(time_order(steps, ctx.reverse))[::-1]
        dh = d_hs[order[0]]
        for n, t in enumerate(order):
            d_new = dh if keep is None else dh * (1 - keep[t])  # through the padding mask
            d_a[t] = leak * d_new * (1 - targets[t] ** 2)  # through α tanh(·)
            direct = (1 - leak) * d_new + (0 if keep is None else keep[t] * dh)
            outside = d_hs[order[n + 1]] if n + 1 < steps else 0
            dh = outside + direct + d_a[t] @ weight_hh  # δh_{t-1}
        d_weight_hh = recurrent_weight_grad(d_a, hs, h0, ctx.reverse)  # one GEMM
        return d_a, d_weight_hh, dh, None, None, None


# -- 3. the runner and 4. the registration --------------------------------------------------


def leaky_scan(
    cell: LeakyRNNCell,
    x: Tensor,
    h0: Tensor,
    *,
    valid: Tensor | None,
    reverse: bool,
    return_states: bool,
) -> ScanResult:
    a = F.linear(x, cell.weight_ih, cell.bias)  # (T, B, H): all steps in one GEMM
    keep = keep_weights(valid, None, a)  # padded steps keep the state
    hs = LeakyRecurrence.apply(a, cell.weight_hh, h0, keep, cell.leak, reverse)
    outputs, last, _ = finish(hs, valid, reverse)  # zeros at padded steps
    return ScanResult(outputs, hs[last], outputs if return_states else None)


register_backward(LeakyRNNCell, lambda cell, masks: functools.partial(leaky_scan, cell))


# -- the tests that every new cell needs ----------------------------------------------------


def _run(layer: nn.Module, x: Tensor, lengths: Tensor) -> list[Tensor]:
    x = x.detach().clone().requires_grad_(True)
    out, final, states = layer(x, lengths=lengths, return_states=True)
    loss = weighted_sum([out, final, states])
    return [out, final, states, *torch.autograd.grad(loss, [x, *layer.parameters()])]


def test_registered_cell_runs_on_bptt_and_equals_its_own_loop() -> None:
    layer = rnnkit.Recurrent(
        lambda n: LeakyRNNCell(n, 4, leak=0.3).double(),
        input_size=3,
        num_layers=2,
        bidirectional=True,
    )
    assert layer.active_engine == "bptt"
    x, lengths = torch.randn(6, 3, 3, dtype=torch.float64), torch.tensor([6, 0, 2])
    results = {}
    for engine in ("bptt", "loop"):
        layer.engine = engine
        results[engine] = _run(layer, x, lengths)
    for got, want in zip(results["bptt"], results["loop"], strict=True):
        assert_close(got, want, what="LeakyRNNCell")


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_leaky_recurrence_gradcheck(reverse: bool, padded: bool) -> None:
    dt = torch.float64
    valid = torch.tensor([[True, True], [True, False], [False, False]])
    a = torch.randn(3, 2, 4, dtype=dt, requires_grad=True)
    weight = (0.5 * torch.randn(4, 4, dtype=dt)).requires_grad_(True)
    h0 = torch.randn(2, 4, dtype=dt, requires_grad=True)
    keep = keep_weights(valid if padded else None, None, a.detach())
    assert torch.autograd.gradcheck(LeakyRecurrence.apply, (a, weight, h0, keep, 0.3, reverse))


def test_unregistered_subclass_is_not_run_with_its_parents_backward() -> None:
    class Tweaked(LeakyRNNCell):
        def forward(self, x, h):  # different math: the registered backward would be wrong
            return super().forward(2 * x, h)

    layer = rnnkit.Recurrent(Tweaked(3, 4))
    assert layer.active_engine == "loop"
    assert leaves(layer(torch.randn(2, 1, 3)))[0].shape == (2, 1, 4)
