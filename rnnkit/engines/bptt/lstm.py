r"""The LSTM family on the BPTT engine: plain, layer norm, peepholes, zoneout, dropouts.

Forward, per step ``t`` (the input pre-activations ``a_t`` are precomputed for all steps):

.. math::
    \hat a_t &= a_t + \mathrm{LN}(\tilde W_{hh} \tilde h_{t-1})\gamma_{hh}
              + [p_i \odot c_{t-1};\ p_f \odot c_{t-1};\ 0;\ p_o \odot \hat c_t] \\
    i, f, g, o &= \sigma(\hat a_i), \sigma(\hat a_f), \tanh(\hat a_g), \sigma(\hat a_o), \qquad
    \hat c_t = f \odot c_{t-1} + i \odot g \\
    \tau_t &= \tanh(\mathrm{LN}(\hat c_t)\gamma_c + \beta_c), \qquad \hat h_t = o \odot \tau_t \\
    h_t &= k^h_t \odot h_{t-1} + (1 - k^h_t) \odot \hat h_t, \qquad
    c_t = k^c_t \odot c_{t-1} + (1 - k^c_t) \odot \hat c_t

Backward, per step, given the total gradients :math:`\delta h_t, \delta c_t` of the state
after step ``t`` (without LN on ``c`` and peepholes, for brevity; ``docs/bptt.md`` has all):

.. math::
    \delta \hat c_t &= (1 - k^c_t)\,\delta c_t
                       + \delta h_t \odot (1 - k^h_t)\, o \odot (1 - \tau_t^2) \\
    \delta \hat a_t &= [\delta \hat c_t \odot g\, i(1-i);\
                        \delta \hat c_t \odot c_{t-1} f(1-f);\
                        \delta \hat c_t \odot i (1-g^2);\
                        \delta h_t \odot (1-k^h_t)\,\tau_t\, o(1-o)] \\
    \delta c_{t-1} &= \bar\delta c_{t-1} + \delta \hat c_t \odot f + k^c_t \odot \delta c_t, \qquad
    \delta h_{t-1} = \bar\delta h_{t-1} + k^h_t \odot \delta h_t
                     + m_h \odot (\delta \hat a_t \tilde W_{hh})

where :math:`\bar\delta` is the gradient arriving from outside (outputs, final state).
A step is about a dozen small element-wise ops on ``(B, ·)`` tensors, which stay in cache,
and one GEMM. (Computing the gradient-free factors such as ``g i(1-i)`` for all steps at
once before the loop was measured slower on CPU: it needs fresh ``(T, B, H)`` buffers.)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor

from rnnkit.cells.base import LSTMState
from rnnkit.engines.bptt import native
from rnnkit.engines.bptt.common import (
    SCANS,
    Buffers,
    FamilyLayer,
    finish,
    first_step,
    input_side,
    keep_weights,
    layer_norm_param_grads,
    layer_norm_step,
    layer_norm_step_backward,
    previous_state_grad,
    recurrent_weight_grad,
    sigmoid_backward,
    tanh_backward,
    time_order,
)
from rnnkit.engines.runner import ScanResult


class LSTMRecurrence(torch.autograd.Function):
    """The LSTM recurrence with a hand-derived backward (see the module docstring).

    Inputs (positional, for ``apply``; :func:`_forward` takes them in the same order):
        a: input pre-activations ``(T, B, 4H)`` (biases included), gate order ``i, f, g, o``.
        weight_hh: ``W̃_hh`` ``(4H, H)``.
        h0, c0: initial state ``(B, H)`` each.
        ln_weight_hh: LN gain on the recurrent pre-activations ``(4H,)``, or ``None``.
        ln_weight_c, ln_bias_c: LN gain and shift on the cell state ``(H,)``, or ``None``.
        peephole: ``(3, H)`` stacked ``p_i, p_f, p_o``, or ``None``.
        keep_h, keep_c: keep weights ``(T, B, H or 1)`` (padding + zoneout), or ``None``.
        recurrent_mask: dropout mask on ``h_{t-1}`` entering ``W_hh`` ``(B, H)``, or ``None``.
        reverse: visit the steps from ``T-1`` down to ``0``.

    Returns:
        ``hs``, ``cs``: the state after every step ``(T, B, H)`` each, time-indexed.
    """

    @staticmethod
    def forward(ctx: Any, *inputs: Any) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        a, weight_hh, h0, c0, ln_weight_hh, ln_weight_c, ln_bias_c, peephole = inputs[:8]
        keep_h, keep_c, recurrent_mask, reverse = inputs[8:]
        a = a.contiguous()
        keep_h, keep_c = native.keep_layout(keep_h), native.keep_layout(keep_c)
        args = (
            a, weight_hh, h0, c0, ln_weight_hh, ln_weight_c, ln_bias_c, peephole,
            keep_h, keep_c, recurrent_mask, reverse, any(ctx.needs_input_grad),
        )  # fmt: skip
        saved = native.forward_loop("lstm", _forward, args)
        ctx.reverse = reverse
        ctx.save_for_backward(
            weight_hh, h0, c0, ln_weight_hh, ln_weight_c, ln_bias_c, peephole,
            keep_h, keep_c, recurrent_mask, *saved,
        )  # fmt: skip
        return saved[0], saved[1]

    @staticmethod
    def backward(ctx: Any, d_hs: Tensor, d_cs: Tensor) -> tuple[Tensor | None, ...]:
        saved = _Saved(*ctx.saved_tensors)
        grads = _backward(ctx.reverse, d_hs.contiguous(), d_cs.contiguous(), saved)
        return (*grads, None, None, None, None)


def _forward(
    a: Tensor,
    weight_hh: Tensor,
    h0: Tensor,
    c0: Tensor,
    ln_weight_hh: Tensor | None,
    ln_weight_c: Tensor | None,
    ln_bias_c: Tensor | None,
    peephole: Tensor | None,
    keep_h: Tensor | None,
    keep_c: Tensor | None,
    recurrent_mask: Tensor | None,
    reverse: bool,
    save: bool,
) -> tuple[Tensor | None, ...]:
    """The forward loop; returns the outputs, then what the backward needs."""
    steps, batch, rows = a.shape
    H = rows // 4
    buf = Buffers(a, steps, save)
    hs, cs = buf.new(batch, H, always=True), buf.new(batch, H, always=True)
    gates, tau = buf.new(batch, rows), buf.new(batch, H)
    c_new = cs if keep_c is None else buf.new(batch, H)  # ĉ_t before zoneout
    h_in = None if recurrent_mask is None else buf.new(batch, H)  # m_h ⊙ h_{t-1}, for dW_hh
    ln_h = None if ln_weight_hh is None else _LNBuffers(buf, batch, rows)  # W̃ h̃ before LN
    ln_c = None if ln_weight_c is None else _LNBuffers(buf, batch, H, input_saved=True)
    pre, h_new = a.new_empty(batch, rows), a.new_empty(batch, H)
    w_t = weight_hh.t()
    h, c = h0, c0
    for t in time_order(steps, reverse):
        k = buf.slot(t)
        x_h = h if h_in is None else torch.mul(h, recurrent_mask, out=h_in[k])
        if ln_h is None:
            torch.addmm(a[t], x_h, w_t, out=pre)
        else:
            torch.mm(x_h, w_t, out=ln_h.x[k])
            torch.add(a[t], ln_h.normalize(k, ln_weight_hh, None), out=pre)
        g_t = gates[k]
        if peephole is not None:  # i and f peek at c_{t-1}
            pre[:, : 2 * H].view(batch, 2, H).addcmul_(peephole[:2], c.unsqueeze(1))
        torch.sigmoid(pre, out=g_t)  # i, f, o (g is overwritten next)
        torch.tanh(pre[:, 2 * H : 3 * H], out=g_t[:, 2 * H : 3 * H])
        cn = c_new[t if keep_c is None else k]
        torch.mul(g_t[:, H : 2 * H], c, out=cn)
        cn.addcmul_(g_t[:, :H], g_t[:, 2 * H : 3 * H])  # ĉ = f ⊙ c + i ⊙ g
        o = g_t[:, 3 * H :]
        if peephole is not None:  # o peeks at the new cell state
            torch.sigmoid(pre[:, 3 * H :].addcmul_(peephole[2], cn), out=o)
        if ln_c is None:
            torch.tanh(cn, out=tau[k])
        else:
            shown = layer_norm_step(cn, ln_weight_c, ln_bias_c, ln_c.mean[k], ln_c.rstd[k])
            torch.tanh(shown, out=tau[k])
        if keep_h is None:
            torch.mul(o, tau[k], out=hs[t])
        else:
            torch.lerp(torch.mul(o, tau[k], out=h_new), h, keep_h[t], out=hs[t])
        if keep_c is not None:
            torch.lerp(cn, c, keep_c[t], out=cs[t])
        h, c = hs[t], cs[t]
    raw, mean_h, rstd_h = (None, None, None) if ln_h is None else (ln_h.x, ln_h.mean, ln_h.rstd)
    mean_c, rstd_c = (None, None) if ln_c is None else (ln_c.mean, ln_c.rstd)
    return hs, cs, gates, tau, c_new, h_in, raw, mean_h, rstd_h, mean_c, rstd_c


class _LNBuffers:
    """One LN's per-step input, mean and rstd (what its backward needs).

    ``input_saved``: the LN input is already kept elsewhere (the cell state), so only
    the statistics get buffers.
    """

    def __init__(self, buf: Buffers, batch: int, width: int, *, input_saved: bool = False) -> None:
        self.x = None if input_saved else buf.new(batch, width)
        self.mean, self.rstd = buf.new(batch, 1), buf.new(batch, 1)

    def normalize(self, k: int, weight: Tensor, bias: Tensor | None) -> Tensor:
        return layer_norm_step(self.x[k], weight, bias, self.mean[k], self.rstd[k])


class _Saved(NamedTuple):
    """What the backward reads (inputs and forward buffers, see :func:`_forward`)."""

    weight_hh: Tensor
    h0: Tensor
    c0: Tensor
    ln_weight_hh: Tensor | None
    ln_weight_c: Tensor | None
    ln_bias_c: Tensor | None
    peephole: Tensor | None
    keep_h: Tensor | None
    keep_c: Tensor | None
    recurrent_mask: Tensor | None
    hs: Tensor
    cs: Tensor
    gates: Tensor
    tau: Tensor
    c_new: Tensor
    h_in: Tensor | None
    raw: Tensor | None
    mean_h: Tensor | None
    rstd_h: Tensor | None
    mean_c: Tensor | None
    rstd_c: Tensor | None


def _backward(reverse: bool, d_hs: Tensor, d_cs: Tensor, s: _Saved) -> tuple[Tensor | None, ...]:
    """The backward loop (module docstring), then the parameter gradients in one pass each.

    The native loop accumulates the LN and peephole gradients as it goes (no second pass
    over the saved buffers); the Python loop leaves them to :func:`_parameter_grads`.
    """
    kernels = native.usable(s.gates)
    if kernels is None:
        d_pre, d_raw, d_shown, dh, dc = _backward_loop(reverse, d_hs, d_cs, s)
        extras = _parameter_grads(d_pre, d_shown, s, reverse)
    else:  # the same loop in C++ (native/recurrence.cpp)
        d_pre, d_raw, dh, dc, *extras = kernels.lstm_backward(
            d_hs, d_cs, s.weight_hh, s.c0, s.ln_weight_hh, s.ln_weight_c, s.peephole,
            s.keep_h, s.keep_c, s.recurrent_mask, s.gates, s.tau, s.c_new, s.cs,
            s.raw, s.mean_h, s.rstd_h, s.mean_c, s.rstd_c, reverse,
        )  # fmt: skip
    d_weight_hh = recurrent_weight_grad(d_raw, s.hs, s.h0, reverse, s.h_in)
    return (d_pre, d_weight_hh, dh, dc, *extras)


def _parameter_grads(
    d_pre: Tensor, d_shown: Tensor | None, s: _Saved, reverse: bool
) -> tuple[Tensor | None, ...]:
    """The LN gains, the LN shift on ``c`` and the peepholes: one pass over all steps each."""
    d_ln_hh = d_ln_c = d_ln_c_bias = None
    if s.raw is not None:
        d_ln_hh, _ = layer_norm_param_grads(d_pre, s.raw, s.mean_h, s.rstd_h, s.ln_weight_hh)
    if d_shown is not None:
        d_ln_c, d_ln_c_bias = layer_norm_param_grads(
            d_shown, s.c_new, s.mean_c, s.rstd_c, s.ln_weight_c, shift=True
        )
    d_peephole = None if s.peephole is None else _peephole_grads(d_pre, s, reverse)
    return d_ln_hh, d_ln_c, d_ln_c_bias, d_peephole


def _backward_loop(
    reverse: bool, d_hs: Tensor, d_cs: Tensor, s: _Saved
) -> tuple[Tensor, Tensor, Tensor | None, Tensor, Tensor]:
    """The backward loop in Python: ``δâ`` (and ``δ`` before the LN), ``δ`` of the shown
    cell state, and the gradients of the initial state."""
    steps, batch, rows = s.gates.shape
    H = rows // 4
    d_pre = s.gates.new_empty(steps, batch, rows)  # δâ_t, the gate gradients
    d_raw = d_pre if s.raw is None else s.gates.new_empty(steps, batch, rows)
    d_shown = None if s.ln_weight_c is None else s.gates.new_empty(steps, batch, H)
    order = list(time_order(steps, reverse))[::-1]
    dh, dc = d_hs[order[0]], d_cs[order[0]]
    for n, t in enumerate(order):
        before = order[n + 1] if n + 1 < steps else None
        c_prev = s.c0 if before is None else s.cs[before]
        dcn = _step_gate_grads(t, dh, dc, c_prev, s, d_pre[t], d_shown)
        if s.raw is not None:
            d_raw[t] = layer_norm_step_backward(
                d_pre[t], s.raw[t], s.mean_h[t], s.rstd_h[t], s.ln_weight_hh
            )
        dh, dc = _step_state_grads(t, dh, dc, dcn, before, d_hs, d_cs, d_pre[t], d_raw[t], s)
    return d_pre, d_raw, d_shown, dh, dc


def _step_gate_grads(
    t: int,
    dh: Tensor,
    dc: Tensor,
    c_prev: Tensor,
    s: _Saved,
    d_t: Tensor,
    d_shown: Tensor | None,
) -> Tensor:
    """Write ``δâ_t`` (B, 4H) into ``d_t``; return ``δĉ_t``.

    Per step, on ``(B, ·)`` tensors that stay in cache: precomputing the factors for all
    steps at once was slower on CPU (it needs fresh ``(T, B, H)`` buffers).
    """
    H = dh.shape[-1]
    g_t, tau_t = s.gates[t], s.tau[t]
    i, g, o = g_t[:, :H], g_t[:, 2 * H : 3 * H], g_t[:, 3 * H :]
    dh_new = dh if s.keep_h is None else torch.addcmul(dh, dh, s.keep_h[t], value=-1)
    d_o = sigmoid_backward(
        torch.mul(tau_t, dh_new, out=d_t[:, 3 * H :]), o, grad_input=d_t[:, 3 * H :]
    )
    carried = dc if s.keep_c is None else torch.addcmul(dc, dc, s.keep_c[t], value=-1)
    through_h = dh_new * o
    tanh_backward(through_h, tau_t, grad_input=through_h)  # ∂L/∂(shown ĉ): h = o ⊙ tanh(·)
    if d_shown is None:
        dcn = through_h.add_(carried)
    else:  # the LN on ĉ sits between the state and the tanh
        d_shown[t] = through_h
        dcn = layer_norm_step_backward(
            through_h, s.c_new[t], s.mean_c[t], s.rstd_c[t], s.ln_weight_c
        ).add_(carried)
    if s.peephole is not None:
        dcn.addcmul_(s.peephole[2], d_o)  # o reads ĉ_t through p_o
    torch.mul(g, dcn, out=d_t[:, :H])  # then ⊙ σ'(i)
    torch.mul(c_prev, dcn, out=d_t[:, H : 2 * H])  # then ⊙ σ'(f)
    if_ = d_t[:, : 2 * H]
    sigmoid_backward(if_, g_t[:, : 2 * H], grad_input=if_)
    d_g = torch.mul(i, dcn, out=d_t[:, 2 * H : 3 * H])
    tanh_backward(d_g, g, grad_input=d_g)
    return dcn


def _step_state_grads(
    t: int,
    dh: Tensor,
    dc: Tensor,
    dcn: Tensor,
    before: int | None,
    d_hs: Tensor,
    d_cs: Tensor,
    d_t: Tensor,
    d_raw_t: Tensor,
    s: _Saved,
) -> tuple[Tensor, Tensor]:
    """``(δh_{t-1}, δc_{t-1})``: outside gradient + zoneout/padding path + through step t."""
    H = dh.shape[-1]
    ext_h = None if before is None else d_hs[before]
    ext_c = None if before is None else d_cs[before]
    f = s.gates[t][:, H : 2 * H]
    dc_prev = torch.mul(dcn, f) if ext_c is None else torch.addcmul(ext_c, dcn, f)
    if s.peephole is not None:  # i and f read c_{t-1}
        dc_prev.addcmul_(s.peephole[0], d_t[:, :H]).addcmul_(s.peephole[1], d_t[:, H : 2 * H])
    if s.keep_c is not None:
        dc_prev.addcmul_(s.keep_c[t], dc)
    keep_h = None if s.keep_h is None else s.keep_h[t]
    dh_prev = previous_state_grad(d_raw_t, s.weight_hh, s.recurrent_mask, ext_h, keep_h, dh)
    return dh_prev, dc_prev


def _peephole_grads(d_pre: Tensor, s: _Saved, reverse: bool) -> Tensor:
    """``∂L/∂p_{i,f} = Σ δâ_{i,f} ⊙ c_{t-1}`` and ``∂L/∂p_o = Σ δâ_o ⊙ ĉ_t``, over all steps."""
    H = s.cs.shape[-1]
    first = first_step(s.cs.shape[0], reverse)
    later, before = (
        (slice(None, -1), slice(1, None)) if reverse else (slice(1, None), slice(None, -1))
    )

    def with_c_prev(d: Tensor) -> Tensor:
        return (d[later] * s.cs[before]).sum((0, 1)) + (d[first] * s.c0).sum(0)

    return torch.stack(
        [
            with_c_prev(d_pre[..., :H]),
            with_c_prev(d_pre[..., H : 2 * H]),
            (d_pre[..., 3 * H :] * s.c_new).sum((0, 1)),
        ]
    )


def lstm_scan(
    layer: FamilyLayer,
    x: Tensor,
    state: LSTMState,
    *,
    valid: Tensor | None,
    reverse: bool,
    return_states: bool,
) -> ScanResult:
    """One LSTM layer and direction over time on the BPTT engine (a runner once ``layer`` is
    bound: :class:`rnnkit.engines.SequenceRunner`).

    Arguments:
        layer: the weights, options and masks of this layer and direction.
        x: time-major input ``(T, B, I)``.
        state: ``LSTMState(h (B, H), c (B, H))`` before the first visited step.
        valid: ``(T, B)`` bool mask of real steps, or ``None``.
        reverse: the backward direction.
        return_states: also return every step's ``LSTMState`` (zeros at padded steps).

    Returns:
        A :class:`rnnkit.engines.ScanResult`, as every runner.
    """
    w, masks = layer.weights, layer.masks
    a, weight_hh = input_side(x, layer, w.bias_hh)  # (T, B, 4H)
    peephole = None
    if layer.options.peephole:
        peephole = torch.stack([w.weight_ci, w.weight_cf, w.weight_co])
    hs, cs = LSTMRecurrence.apply(
        a,
        weight_hh,
        state.h,
        state.c,
        w.ln_weight_hh,
        w.ln_weight_c,
        w.ln_bias_c,
        peephole,
        keep_weights(valid, masks.zoneout_h, a),
        keep_weights(valid, masks.zoneout_c, a),
        masks.recurrent,
        reverse,
    )
    outputs, last, mask = finish(hs, valid, reverse)
    states = None
    if return_states:
        states = LSTMState(outputs, cs if mask is None else cs * mask)
    return ScanResult(outputs, LSTMState(hs[last], cs[last]), states)


SCANS["lstm"] = lstm_scan
