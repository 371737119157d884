r"""The RNN (Elman, vanilla) family on the BPTT engine: plain, layer norm, zoneout, dropouts.

This is the course's BPTT, written out. Forward, per step (``a_t`` precomputed):

.. math::
    \hat h_t = \phi(a_t + \mathrm{LN}(\tilde W_{hh} \tilde h_{t-1})\gamma_{hh}), \qquad
    h_t = k_t \odot h_{t-1} + (1 - k_t) \odot \hat h_t

with :math:`\phi = \tanh` (or ReLU). Backward, per step:

.. math::
    \delta a_t = \delta h_t \odot (1 - k_t) \odot \phi'(\hat h_t), \qquad
    \delta h_{t-1} = \bar\delta h_{t-1} + k_t \odot \delta h_t
                     + m_h \odot (\mathrm{LN}^\top(\delta a_t)\, \tilde W_{hh})

(:math:`\phi' = 1 - \hat h^2` for tanh, :math:`[\hat h > 0]` for ReLU), and after the loop
:math:`\partial L/\partial \tilde W_{hh} = \sum_t \delta a_t^\top \tilde h_{t-1}` as one GEMM.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor

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
    state_result,
    tanh_backward,
    threshold_backward,
    time_order,
)
from rnnkit.engines.runner import ScanResult

NONLINEARITIES = ("tanh", "relu")


class RNNRecurrence(torch.autograd.Function):
    """The RNN recurrence with a hand-derived backward (see the module docstring).

    Inputs (positional, for ``apply``; :func:`_forward` takes them in the same order):
        a: input pre-activations ``(T, B, H)`` (biases included).
        weight_hh: ``W̃_hh`` ``(H, H)``.
        h0: initial state ``(B, H)``.
        ln_weight_hh: LN gain on the recurrent pre-activation ``(H,)``, or ``None``.
        keep: keep weights ``(T, B, H or 1)`` (padding + zoneout), or ``None``.
        recurrent_mask: dropout mask on ``h_{t-1}`` entering ``W_hh`` ``(B, H)``, or ``None``.
        reverse: visit the steps from ``T-1`` down to ``0``.
        nonlinearity: ``"tanh"`` or ``"relu"``.

    Returns:
        ``hs``: the state after every step ``(T, B, H)``, time-indexed.
    """

    @staticmethod
    def forward(ctx: Any, *inputs: Any) -> Tensor:  # type: ignore[override]
        a, weight_hh, h0, ln_weight_hh, keep, recurrent_mask, reverse, nonlinearity = inputs
        saved = _forward(a.contiguous(), *inputs[1:], any(ctx.needs_input_grad))
        ctx.reverse, ctx.nonlinearity = reverse, nonlinearity
        ctx.save_for_backward(weight_hh, h0, ln_weight_hh, keep, recurrent_mask, *saved)
        return saved[0]

    @staticmethod
    def backward(ctx: Any, d_hs: Tensor) -> tuple[Tensor | None, ...]:
        saved = _Saved(*ctx.saved_tensors)
        grads = _backward(ctx.reverse, ctx.nonlinearity, d_hs.contiguous(), saved)
        return (*grads, None, None, None, None)


def _forward(
    a: Tensor,
    weight_hh: Tensor,
    h0: Tensor,
    ln_weight_hh: Tensor | None,
    keep: Tensor | None,
    recurrent_mask: Tensor | None,
    reverse: bool,
    nonlinearity: str,
    save: bool,
) -> tuple[Tensor | None, ...]:
    steps, batch, hidden = a.shape
    buf = Buffers(a, steps, save)
    hs = buf.new(batch, hidden, always=True)
    h_new = hs if keep is None else buf.new(batch, hidden)  # ĥ_t before zoneout
    h_in = None if recurrent_mask is None else buf.new(batch, hidden)
    raw = mean = rstd = None
    if ln_weight_hh is not None:
        raw, mean, rstd = buf.new(batch, hidden), buf.new(batch, 1), buf.new(batch, 1)
    activate = torch.Tensor.tanh_ if nonlinearity == "tanh" else torch.Tensor.relu_
    w_t = weight_hh.t()
    h = h0
    for t in time_order(steps, reverse):
        k = buf.slot(t)
        x_h = h if h_in is None else torch.mul(h, recurrent_mask, out=h_in[k])
        new = h_new[t if keep is None else k]
        if raw is None:
            torch.addmm(a[t], x_h, w_t, out=new)
        else:
            torch.mm(x_h, w_t, out=raw[k])
            torch.add(a[t], layer_norm_step(raw[k], ln_weight_hh, None, mean[k], rstd[k]), out=new)
        activate(new)
        if keep is not None:
            torch.lerp(new, h, keep[t], out=hs[t])
        h = hs[t]
    return hs, h_new, h_in, raw, mean, rstd


class _Saved(NamedTuple):
    """What the backward reads (inputs and forward buffers, see :func:`_forward`)."""

    weight_hh: Tensor
    h0: Tensor
    ln_weight_hh: Tensor | None
    keep: Tensor | None
    recurrent_mask: Tensor | None
    hs: Tensor
    h_new: Tensor
    h_in: Tensor | None
    raw: Tensor | None
    mean: Tensor | None
    rstd: Tensor | None


def _backward(
    reverse: bool, nonlinearity: str, d_hs: Tensor, s: _Saved
) -> tuple[Tensor | None, ...]:
    steps, batch, hidden = s.hs.shape
    d_a = s.hs.new_empty(steps, batch, hidden)
    d_raw = d_a if s.raw is None else s.hs.new_empty(steps, batch, hidden)
    order = list(time_order(steps, reverse))[::-1]
    dh = d_hs[order[0]]
    for i, t in enumerate(order):
        keep_t = None if s.keep is None else s.keep[t]
        dh_new = dh if keep_t is None else torch.addcmul(dh, dh, keep_t, value=-1)
        if nonlinearity == "tanh":
            tanh_backward(dh_new, s.h_new[t], grad_input=d_a[t])  # ⊙ (1 - ĥ²)
        else:
            threshold_backward(dh_new, s.h_new[t], 0, grad_input=d_a[t])  # ⊙ [ĥ > 0]
        if s.raw is not None:
            d_raw[t] = layer_norm_step_backward(
                d_a[t], s.raw[t], s.mean[t], s.rstd[t], s.ln_weight_hh
            )
        ext = d_hs[order[i + 1]] if i + 1 < steps else None
        dh = previous_state_grad(d_raw[t], s.weight_hh, s.recurrent_mask, ext, keep_t, dh)
    d_weight_hh = recurrent_weight_grad(d_raw, s.hs, s.h0, reverse, s.h_in)
    d_ln = None
    if s.raw is not None:
        d_ln, _ = layer_norm_param_grads(d_a, s.raw, s.mean, s.rstd, s.ln_weight_hh)
    return d_a, d_weight_hh, dh, d_ln


def rnn_scan(
    layer: FamilyLayer,
    x: Tensor,
    state: Tensor,
    *,
    valid: Tensor | None,
    reverse: bool,
    return_states: bool,
) -> ScanResult:
    """One RNN layer and direction over time on the BPTT engine.

    Arguments and result as :func:`rnnkit.engines.bptt.lstm_scan`, with ``layer.nonlinearity``
    (``"tanh"`` or ``"relu"``); the state is ``h (B, H)``.
    """
    if layer.nonlinearity not in NONLINEARITIES:
        raise ValueError(
            f"rnn_scan: expected nonlinearity in {NONLINEARITIES}, got {layer.nonlinearity!r}"
        )
    masks = layer.masks
    a, weight_hh = input_side(x, layer, layer.weights.bias_hh)  # (T, B, H)
    hs = RNNRecurrence.apply(
        a,
        weight_hh,
        state,
        layer.weights.ln_weight_hh,
        keep_weights(valid, masks.zoneout_h, a),
        masks.recurrent,
        reverse,
        layer.nonlinearity,
    )
    return state_result(hs, valid, reverse, return_states)


SCANS["rnn"] = rnn_scan
