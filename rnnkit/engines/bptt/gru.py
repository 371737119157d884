r"""The GRU family on the BPTT engine: plain, layer norm, zoneout, dropouts.

Forward, per step (``a_t`` precomputed for all steps; it holds ``b_ih`` and the ``r, z``
blocks of ``b_hh``, while ``b_hn`` stays inside the reset gate's product):

.. math::
    q_t &= \mathrm{LN}(\tilde W_{hh}\tilde h_{t-1})\gamma_{hh} + [0; 0; b_{hn}] \\
    r &= \sigma(a_r + q_r), \quad z = \sigma(a_z + q_z), \quad n = \tanh(a_n + r \odot q_n) \\
    \hat h_t &= n + z \odot (h_{t-1} - n), \qquad h_t = k_t \odot h_{t-1} + (1 - k_t) \odot \hat h_t

Backward, per step, with :math:`\bar k = 1 - k`:

.. math::
    \delta a_n &= \delta h_t \odot \bar k (1 - z)(1 - n^2), \quad
    \delta a_z = \delta h_t \odot \bar k (h_{t-1} - n)\, z(1 - z), \quad
    \delta a_r = \delta a_n \odot q_n\, r(1 - r) \\
    \delta q &= [\delta a_r;\ \delta a_z;\ \delta a_n \odot r], \qquad
    \delta h_{t-1} = \bar\delta h_{t-1} + (k + \bar k z) \odot \delta h_t
                     + m_h \odot (\mathrm{LN}^\top(\delta q)\, \tilde W_{hh})

Each step is about ten small element-wise ops on ``(B, ·)`` tensors and one GEMM.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.engines.bptt import native
from rnnkit.engines.bptt.common import (
    SCANS,
    Buffers,
    FamilyLayer,
    input_side,
    keep_weights,
    layer_norm_param_grads,
    layer_norm_step,
    layer_norm_step_backward,
    previous_state_grad,
    recurrent_weight_grad,
    sigmoid_backward,
    state_result,
    tanh_backward,
    time_order,
)
from rnnkit.engines.runner import ScanResult


class GRURecurrence(torch.autograd.Function):
    """The GRU recurrence with a hand-derived backward (see the module docstring).

    Inputs (positional, for ``apply``; :func:`_forward` takes them in the same order):
        a: input pre-activations ``(T, B, 3H)``, gate order ``r, z, n``.
        weight_hh: ``W̃_hh`` ``(3H, H)``.
        h0: initial state ``(B, H)``.
        bias_hn: ``b_hn`` ``(H,)`` (inside the reset gate's product), or ``None``.
        ln_weight_hh: LN gain on the recurrent pre-activations ``(3H,)``, or ``None``.
        keep: keep weights ``(T, B, H or 1)`` (padding + zoneout), or ``None``.
        recurrent_mask: dropout mask on ``h_{t-1}`` entering ``W_hh`` ``(B, H)``, or ``None``.
        reverse: visit the steps from ``T-1`` down to ``0``.

    Returns:
        ``hs``: the state after every step ``(T, B, H)``, time-indexed.
    """

    @staticmethod
    def forward(ctx: Any, *inputs: Any) -> Tensor:  # type: ignore[override]
        a, weight_hh, h0, bias_hn, ln_weight_hh, keep, recurrent_mask, reverse = inputs
        a, keep = a.contiguous(), native.keep_layout(keep)
        args = (
            a, weight_hh, h0, bias_hn, ln_weight_hh, keep, recurrent_mask, reverse,
            any(ctx.needs_input_grad),
        )  # fmt: skip
        saved = native.forward_loop("gru", _forward, args)
        ctx.reverse, ctx.has_bias = reverse, bias_hn is not None
        ctx.save_for_backward(weight_hh, h0, ln_weight_hh, keep, recurrent_mask, *saved)
        return saved[0]

    @staticmethod
    def backward(ctx: Any, d_hs: Tensor) -> tuple[Tensor | None, ...]:
        d_a, d_w, d_h0, d_bias, d_ln = _backward(
            ctx.reverse, d_hs.contiguous(), _Saved(*ctx.saved_tensors), ctx.has_bias
        )
        return d_a, d_w, d_h0, d_bias, d_ln, None, None, None


def _forward(
    a: Tensor,
    weight_hh: Tensor,
    h0: Tensor,
    bias_hn: Tensor | None,
    ln_weight_hh: Tensor | None,
    keep: Tensor | None,
    recurrent_mask: Tensor | None,
    reverse: bool,
    save: bool,
) -> tuple[Tensor | None, ...]:
    """The forward loop; returns the outputs, then what the backward needs."""
    steps, batch, rows = a.shape
    H = rows // 3
    buf = Buffers(a, steps, save)
    hs, gates = buf.new(batch, H, always=True), buf.new(batch, rows)
    q = buf.new(batch, rows)  # recurrent pre-activations, after LN and b_hn
    h_in = None if recurrent_mask is None else buf.new(batch, H)
    raw = mean = rstd = None
    if ln_weight_hh is not None:
        raw, mean, rstd = buf.new(batch, rows), buf.new(batch, 1), buf.new(batch, 1)
    bias = None if bias_hn is None else F.pad(bias_hn, (2 * H, 0))  # [0; 0; b_hn]
    h_new = None if keep is None else a.new_empty(batch, H)
    w_t = weight_hh.t()
    h = h0
    for t in time_order(steps, reverse):
        k = buf.slot(t)
        x_h = h if h_in is None else torch.mul(h, recurrent_mask, out=h_in[k])
        q_t = q[k]
        if raw is not None:
            torch.mm(x_h, w_t, out=raw[k])
            q_t.copy_(layer_norm_step(raw[k], ln_weight_hh, bias, mean[k], rstd[k]))
        elif bias is None:
            torch.mm(x_h, w_t, out=q_t)
        else:
            torch.addmm(bias, x_h, w_t, out=q_t)
        a_t, g_t = a[t], gates[k]
        rz = torch.add(a_t[:, : 2 * H], q_t[:, : 2 * H], out=g_t[:, : 2 * H]).sigmoid_()
        n = torch.addcmul(a_t[:, 2 * H :], rz[:, :H], q_t[:, 2 * H :], out=g_t[:, 2 * H :])
        n.tanh_()
        if h_new is None:
            torch.lerp(n, h, rz[:, H:], out=hs[t])  # n + z ⊙ (h - n)
        else:
            torch.lerp(torch.lerp(n, h, rz[:, H:], out=h_new), h, keep[t], out=hs[t])
        h = hs[t]
    return hs, gates, q, h_in, raw, mean, rstd


class _Saved(NamedTuple):
    """What the backward reads (inputs and forward buffers, see :func:`_forward`)."""

    weight_hh: Tensor
    h0: Tensor
    ln_weight_hh: Tensor | None
    keep: Tensor | None
    recurrent_mask: Tensor | None
    hs: Tensor
    gates: Tensor
    q: Tensor
    h_in: Tensor | None
    raw: Tensor | None
    mean: Tensor | None
    rstd: Tensor | None


def _backward(reverse: bool, d_hs: Tensor, s: _Saved, has_bias: bool) -> tuple[Tensor | None, ...]:
    """The backward loop (module docstring), then the parameter gradients in one pass each.

    The native loop accumulates ``∂L/∂b_hn`` and the LN gain's gradient as it goes.
    """
    kernels = native.usable(s.gates)
    if kernels is None:
        d_a, d_q, d_raw, dh = _backward_loop(reverse, d_hs, s)
        rows = s.gates.shape[-1]
        d_bias_hn = d_q[..., 2 * (rows // 3) :].sum((0, 1)) if has_bias else None
        d_ln = None
        if s.raw is not None:
            d_ln, _ = layer_norm_param_grads(d_q, s.raw, s.mean, s.rstd, s.ln_weight_hh)
    else:  # the same loop in C++ (native/recurrence.cpp)
        d_a, d_raw, dh, d_bias_hn, d_ln = kernels.gru_backward(
            d_hs, s.weight_hh, s.h0, s.ln_weight_hh, s.keep, s.recurrent_mask, s.hs, s.gates,
            s.q, s.raw, s.mean, s.rstd, reverse, has_bias,
        )  # fmt: skip
    d_weight_hh = recurrent_weight_grad(d_raw, s.hs, s.h0, reverse, s.h_in)
    return d_a, d_weight_hh, dh, d_bias_hn, d_ln


def _backward_loop(reverse: bool, d_hs: Tensor, s: _Saved) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The backward loop in Python: ``δa``, ``δq``, ``δ`` before the LN, ``δh_0``."""
    steps, batch, rows = s.gates.shape
    d_a = s.gates.new_empty(steps, batch, rows)  # δa_t
    d_q = s.gates.new_empty(steps, batch, rows)  # δq_t
    d_raw = d_q if s.raw is None else s.gates.new_empty(steps, batch, rows)
    order = list(time_order(steps, reverse))[::-1]
    dh = d_hs[order[0]]
    for i, t in enumerate(order):
        before = order[i + 1] if i + 1 < steps else None
        h_prev = s.h0 if before is None else s.hs[before]
        dh_new = _step_gate_grads(t, dh, h_prev, s, d_a[t], d_q[t])
        if s.raw is not None:
            d_raw[t] = layer_norm_step_backward(
                d_q[t], s.raw[t], s.mean[t], s.rstd[t], s.ln_weight_hh
            )
        dh = _step_state_grad(t, dh, dh_new, None if before is None else d_hs[before], d_raw[t], s)
    return d_a, d_q, d_raw, dh


def _step_gate_grads(
    t: int, dh: Tensor, h_prev: Tensor, s: _Saved, d_a_t: Tensor, d_q_t: Tensor
) -> Tensor:
    """Write ``δa_t`` and ``δq_t`` (B, 3H); return ``δĥ_t = (1 - k) δh_t``.

    Per step, on ``(B, ·)`` tensors that stay in cache (cheaper than precomputing the
    factors for all steps in fresh ``(T, B, H)`` buffers).
    """
    H = dh.shape[-1]
    g_t = s.gates[t]
    r, z, n = g_t[:, :H], g_t[:, H : 2 * H], g_t[:, 2 * H :]
    dh_new = dh if s.keep is None else torch.addcmul(dh, dh, s.keep[t], value=-1)
    d_n = torch.addcmul(dh_new, dh_new, z, value=-1)  # ∂L/∂n = δĥ (1 - z)
    d_a_n = tanh_backward(d_n, n, grad_input=d_a_t[:, 2 * H :])  # ⊙ (1 - n²)
    torch.sub(h_prev, n, out=d_a_t[:, H : 2 * H]).mul_(dh_new)  # ∂L/∂z = δĥ (h_{t-1} - n)
    torch.mul(d_a_n, s.q[t][:, 2 * H :], out=d_a_t[:, :H])  # ∂L/∂r = δa_n ⊙ q_n
    d_rz = d_a_t[:, : 2 * H]
    sigmoid_backward(d_rz, g_t[:, : 2 * H], grad_input=d_rz)  # ⊙ σ' of r and z
    d_q_t[:, : 2 * H].copy_(d_a_t[:, : 2 * H])
    torch.mul(d_a_n, r, out=d_q_t[:, 2 * H :])
    return dh_new


def _step_state_grad(
    t: int, dh: Tensor, dh_new: Tensor, ext: Tensor | None, d_raw_t: Tensor, s: _Saved
) -> Tensor:
    """``δh_{t-1}``: outside gradient + through ``W̃_hh`` + directly (``z``, zoneout/padding)."""
    keep_t = None if s.keep is None else s.keep[t]
    dh_prev = previous_state_grad(d_raw_t, s.weight_hh, s.recurrent_mask, ext, keep_t, dh)
    H = dh.shape[-1]
    return dh_prev.addcmul_(dh_new, s.gates[t][:, H : 2 * H])  # ĥ = ... + z h_{t-1}


def gru_scan(
    layer: FamilyLayer,
    x: Tensor,
    state: Tensor,
    *,
    valid: Tensor | None,
    reverse: bool,
    return_states: bool,
) -> ScanResult:
    """One GRU layer and direction over time on the BPTT engine.

    Arguments and result as :func:`rnnkit.engines.bptt.lstm_scan`; the state is ``h (B, H)``.
    """
    masks, bias_hh = layer.masks, layer.weights.bias_hh
    H = layer.weights.weight_hh.shape[1]
    folded = bias_n = None
    if bias_hh is not None:
        folded = F.pad(bias_hh[: 2 * H], (0, H))  # b_hr, b_hz join a; b_hn cannot (r ⊙ ...)
        bias_n = bias_hh[2 * H :]
    a, weight_hh = input_side(x, layer, folded)  # (T, B, 3H)
    hs = GRURecurrence.apply(
        a,
        weight_hh,
        state,
        bias_n,
        layer.weights.ln_weight_hh,
        keep_weights(valid, masks.zoneout_h, a),
        masks.recurrent,
        reverse,
    )
    return state_result(hs, valid, reverse, return_states)


SCANS["gru"] = gru_scan
