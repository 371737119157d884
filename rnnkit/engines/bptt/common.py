"""Pieces the BPTT engine's cell families share.

Every family splits a layer's work the same way (see ``docs/bptt.md``):

1. *Before the loop*, with autograd, over all ``T·B`` rows at once: input dropout, the
   input projection ``a = W_ih x̃ + biases`` (one GEMM; LN on it if asked), DropConnect
   on ``W_hh``. Autograd's own backward of these is already one GEMM each for ``dW_ih``
   and ``dx``, so they need no hand-written code.
2. *The recurrence*, a ``torch.autograd.Function`` per family with a hand-derived
   backward: per step only the recurrent GEMM and the gate arithmetic; after the loop,
   ``dW_hh`` as one GEMM over all ``T·B`` rows.
3. *After the loop*, with autograd: outputs masked at padded steps, final state picked.

Padded steps and zoneout are one mechanism inside the recurrence: a *keep weight*
``k_t`` mixes the new and previous state, ``s_t = k_t ⊙ s_{t-1} + (1 - k_t) ⊙ ŝ_t``;
``k_t = 1`` at a padded step (the state does not change), the 0/1 zoneout mask (or
the rate, in eval mode) at a real one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.cells.masks import VariantMasks
from rnnkit.cells.options import LAYER_NORM_EPS, VariantOptions, VariantWeights
from rnnkit.engines.runner import ScanResult, SequenceRunner

NO_MASKS = VariantMasks()


class FamilyLayer(NamedTuple):
    """One layer and direction as a family's scan runs it: the part of a runner bound
    before the call (``functools.partial(lstm_scan, layer)`` is a runner).

    Attributes:
        weights: the layer and direction's parameters (torch names, plus the variants').
        options: which variants are on.
        masks: this call's masks (:func:`rnnkit.cells.masks.sample_masks`).
        nonlinearity: the RNN family's ``"tanh"`` or ``"relu"``.
    """

    weights: VariantWeights
    options: VariantOptions
    masks: VariantMasks = NO_MASKS
    nonlinearity: str = "tanh"


SCANS: dict[str, Callable[..., ScanResult]] = {}
"""The BPTT engine's scan per cell family (``"rnn"``, ``"lstm"``, ``"gru"``), each added by
its family module: ``scan(layer: FamilyLayer, x, state, *, valid, reverse, return_states)``."""


def family_runner(
    family: str,
    weights: VariantWeights,
    options: VariantOptions,
    masks: VariantMasks | None,
    *,
    nonlinearity: str = "tanh",
) -> SequenceRunner:
    """A runner for one layer and direction of a family, given its weights and masks."""
    layer = FamilyLayer(weights, options, NO_MASKS if masks is None else masks, nonlinearity)
    return functools.partial(SCANS[family], layer)


# ATen's fused derivative kernels, with ``grad_input=`` to write into a slice of a buffer:
# sigmoid_backward(g, y) = g ⊙ (1 - y) ⊙ y; tanh_backward(g, y) = g ⊙ (1 - y²);
# threshold_backward(g, y, 0) = g ⊙ [y > 0]. They are what autograd itself uses, so the
# rounding matches the reference path; and σ' as (1 - y) y, not y - y², keeps its
# relative precision when σ saturates.
sigmoid_backward = torch.ops.aten.sigmoid_backward.grad_input
tanh_backward = torch.ops.aten.tanh_backward.grad_input
threshold_backward = torch.ops.aten.threshold_backward.grad_input


def time_order(num_steps: int, reverse: bool) -> range:
    """The order in which a direction visits the steps."""
    return range(num_steps - 1, -1, -1) if reverse else range(num_steps)


def first_step(num_steps: int, reverse: bool) -> int:
    """The index of the first visited step."""
    return num_steps - 1 if reverse else 0


def recurrent_weight_grad(
    d_raw: Tensor, hs: Tensor, h0: Tensor, reverse: bool, h_in: Tensor | None = None
) -> Tensor:
    """``∂L/∂W̃_hh = Σ_t δ_tᵀ h̃_{t-1}``: one GEMM over all ``T·B`` rows (plus the ``h_0`` rows).

    Arguments:
        d_raw: gradients of the recurrent products ``(T, B, G·H)``.
        hs: states after each step ``(T, B, H)``; ``h0``: the initial state ``(B, H)``.
        reverse: the direction, which decides which state precedes which step.
        h_in: the recurrent product's inputs ``(T, B, H)`` when they are not the states
            (recurrent dropout); then one GEMM over them.
    """
    rows = d_raw.shape[-1]
    if h_in is not None:
        return d_raw.reshape(-1, rows).t() @ h_in.reshape(-1, h_in.shape[-1])
    # The state before step t is hs[t-1] (hs[t+1] in reverse), except at the first
    # visited step, where it is h0: the big GEMM runs on views, without a copy.
    first = first_step(hs.shape[0], reverse)
    later, before = (
        (slice(None, -1), slice(1, None)) if reverse else (slice(1, None), slice(None, -1))
    )
    return torch.addmm(
        d_raw[first].t() @ h0,
        d_raw[later].reshape(-1, rows).t(),
        hs[before].reshape(-1, hs.shape[-1]),
    )


def previous_state_grad(
    d_raw_t: Tensor,
    weight_hh: Tensor,
    mask: Tensor | None,
    outside: Tensor | None,
    keep_t: Tensor | None,
    dh: Tensor,
) -> Tensor:
    """``δh_{t-1} = outside + k_t ⊙ δh_t + m_h ⊙ (δâ_t W̃_hh)``, the part every family shares.

    Arguments:
        d_raw_t: gradient of the recurrent pre-activations ``(B, G·H)`` (before any LN).
        weight_hh: ``W̃_hh`` ``(G·H, H)``.
        mask: recurrent dropout mask ``(B, H)``, or ``None``.
        outside: the gradient arriving from outside at ``h_{t-1}``, or ``None``.
        keep_t: step ``t``'s keep weights ``(B, H or 1)`` (padding + zoneout), or ``None``.
        dh: ``δh_t`` ``(B, H)``, the part of which ``keep_t`` passes straight back.

    Returns:
        A fresh ``(B, H)`` tensor the caller may add to in place (the GRU adds ``z ⊙ δĥ_t``).
    """
    if mask is None:
        prev = d_raw_t @ weight_hh if outside is None else torch.addmm(outside, d_raw_t, weight_hh)
    else:
        through = d_raw_t @ weight_hh
        prev = through * mask if outside is None else torch.addcmul(outside, through, mask)
    return prev if keep_t is None else prev.addcmul_(keep_t, dh)


def keep_weights(
    valid: Tensor | None, zoneout: Tensor | float | None, like: Tensor
) -> Tensor | None:
    """Weight of the previous state at each step, ``(T, B, H)`` or ``(T, B, 1)``, or ``None``.

    Arguments:
        valid: ``(T, B)`` bool mask of real steps, or ``None``.
        zoneout: ``(T, B, H)`` 0/1 keep mask, a rate (eval mode), or ``None``.
        like: a ``(T, B, ·)`` tensor for dtype, device and the step and batch counts.
    """
    if valid is None and zoneout is None:
        return None
    steps, batch = like.shape[:2]
    if zoneout is None:
        keep = like.new_zeros(steps, batch, 1)  # no zoneout: a real step never keeps
    elif isinstance(zoneout, Tensor):
        keep = zoneout
    else:
        keep = like.new_full((1, 1, 1), float(zoneout)).expand(steps, batch, 1)
    if valid is not None:
        keep = torch.where(valid.unsqueeze(-1), keep, 1.0)  # a padded step keeps everything
    return keep


def input_side(
    x: Tensor, layer: FamilyLayer, recurrent_bias: Tensor | None
) -> tuple[Tensor, Tensor]:
    """The time-parallel part of a layer, with autograd: input pre-activations and ``W̃_hh``.

    Arguments:
        x: ``(T, B, I)``.
        layer: the weights, the options (``layer_norm`` decides whether ``a`` is
            layer-normalised) and the masks (input dropout and DropConnect, if drawn).
        recurrent_bias: the part of ``b_hh`` that is constant over time and can join ``a``
            (all of it for the RNN and LSTM, the ``r, z`` blocks for a GRU), or ``None``.

    Returns:
        ``a`` ``(T, B, G·H)`` = LN(W_ih (m_x ⊙ x)) γ_ih + b_ih + recurrent_bias, and the
        (DropConnected) recurrent weight ``(G·H, H)``.
    """
    w, masks = layer.weights, layer.masks
    if masks.input is not None:
        x = x * masks.input  # (T, B, I) * (B, I): one mask for every step of a sequence
    weight_hh = w.weight_hh if masks.weight is None else w.weight_hh * masks.weight
    bias = w.bias_ih
    if recurrent_bias is not None:
        bias = recurrent_bias if bias is None else bias + recurrent_bias
    if not layer.options.layer_norm:
        return F.linear(x, w.weight_ih, bias), weight_hh  # one GEMM over T·B rows
    rows = (w.weight_ih.shape[0],)
    # The biases come after the LN, so they are its shift: one fused op, no extra pass.
    a = F.layer_norm(F.linear(x, w.weight_ih), rows, w.ln_weight_ih, bias, eps=LAYER_NORM_EPS)
    return a, weight_hh


def layer_norm_step(
    x: Tensor, weight: Tensor, bias: Tensor | None, mean: Tensor, rstd: Tensor
) -> Tensor:
    """LN over the last dim of a ``(B, N)`` step; its statistics are copied into ``mean``
    and ``rstd`` (``(B, 1)`` slots of the buffers the backward reads).

    The functional kernel plus two tiny copies: ``native_layer_norm.out`` was measured
    slower (it runs the functional kernel and copies all three results).
    """
    out, step_mean, step_rstd = torch.native_layer_norm(
        x, (x.shape[-1],), weight, bias, LAYER_NORM_EPS
    )
    mean.copy_(step_mean)
    rstd.copy_(step_rstd)
    return out


class Buffers:
    """Per-step buffers of a forward loop: one slot per step, or one reused slot.

    When nothing needs a gradient (inference), the backward will never read them, so a
    single slot is reused at every step: less memory and no fresh pages to touch.
    """

    def __init__(self, like: Tensor, steps: int, save: bool) -> None:
        self.like, self.steps, self.save = like, steps, save

    def new(self, *shape: int, always: bool = False) -> Tensor:
        """A ``(T or 1, *shape)`` buffer (``T`` slots if saving or ``always``)."""
        return self.like.new_empty(self.steps if self.save or always else 1, *shape)

    def slot(self, t: int) -> int:
        """The index to use for step ``t`` in a buffer made by :meth:`new`."""
        return t if self.save else 0


def layer_norm_step_backward(
    grad: Tensor, x: Tensor, mean: Tensor, rstd: Tensor, weight: Tensor
) -> Tensor:
    """``∂L/∂x`` of :func:`layer_norm_step` given ``∂L/∂out`` (ATen's fused kernel)."""
    return torch.ops.aten.native_layer_norm_backward(
        grad, x, (x.shape[-1],), mean, rstd, weight, None, [True, False, False]
    )[0]


def layer_norm_param_grads(
    grad: Tensor, x: Tensor, mean: Tensor, rstd: Tensor, weight: Tensor, shift: bool = False
) -> tuple[Tensor, Tensor | None]:
    """``∂L/∂γ = Σ grad ⊙ x̂`` (and ``∂L/∂β = Σ grad``) over all steps: one fused pass.

    Arguments:
        grad: ``∂L/∂out`` ``(T, B, N)``; x: the LN inputs ``(T, B, N)``;
        mean, rstd: their statistics ``(T, B, 1)``; weight: ``γ`` ``(N,)``.
        shift: also return ``∂L/∂β``.
    """
    n = x.shape[-1]
    _, d_weight, d_bias = torch.ops.aten.native_layer_norm_backward(
        grad.reshape(-1, n),
        x.reshape(-1, n),
        (n,),
        mean.reshape(-1, 1),
        rstd.reshape(-1, 1),
        weight,
        weight if shift else None,  # only tells the kernel that a shift exists
        [False, True, shift],
    )
    return d_weight, d_bias


def finish(hs: Tensor, valid: Tensor | None, reverse: bool) -> tuple[Tensor, int, Tensor | None]:
    """Outputs zeroed at padded steps, the index of the final state, the float mask.

    The final state is the state after the direction's last visited step; padded steps
    keep the state, so this is each sequence's last valid step (or the initial state).
    """
    mask = None if valid is None else valid.unsqueeze(-1).to(hs.dtype)  # (T, B, 1)
    outputs = hs if mask is None else hs * mask
    return outputs, 0 if reverse else hs.shape[0] - 1, mask


def state_result(
    hs: Tensor, valid: Tensor | None, reverse: bool, return_states: bool
) -> ScanResult:
    """The result of a runner whose output is its state ``h``: outputs and states are
    ``hs`` zeroed at padded steps, the final state is the last visited step's (see
    :func:`finish`)."""
    outputs, last, _ = finish(hs, valid, reverse)
    return ScanResult(outputs, hs[last], outputs if return_states else None)
