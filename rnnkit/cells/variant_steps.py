r"""The variants' reference steps: one time step each, in plain autograd.

These are what a variant cell computes and what the loop engine runs for a variant
layer; the BPTT engine (:mod:`rnnkit.engines.bptt`) is held to them. Options as in
:mod:`rnnkit.cells.options`, masks (one step's, :meth:`VariantMasks.at`) as drawn by
:mod:`rnnkit.cells.masks`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.cells.base import LSTMState, State
from rnnkit.cells.masks import VariantMasks
from rnnkit.cells.options import LAYER_NORM_EPS, VariantOptions, VariantWeights
from rnnkit.cells.rnn import ACTIVATIONS


def variant_preactivations(
    x: Tensor, h: Tensor, w: VariantWeights, masks: VariantMasks, *, layer_norm: bool
) -> tuple[Tensor, Tensor]:
    r"""The input and recurrent pre-activations of one step, each ``(B, G·H)``.

    :math:`a^x = \mathrm{LN}(W_{ih}(m_x \odot x))\gamma_{ih} + b_{ih}` and
    :math:`a^h = \mathrm{LN}((M \odot W_{hh})(m_h \odot h))\gamma_{hh} + b_{hh}`
    (no LN without ``layer_norm``; each mask only if drawn).
    """
    if masks.input is not None:
        x = x * masks.input
    if masks.recurrent is not None:
        h = h * masks.recurrent
    weight_hh = w.weight_hh if masks.weight is None else w.weight_hh * masks.weight
    a_x, a_h = F.linear(x, w.weight_ih), F.linear(h, weight_hh)  # (B, G·H) each
    if layer_norm:
        a_x = F.layer_norm(a_x, a_x.shape[-1:], w.ln_weight_ih, eps=LAYER_NORM_EPS)
        a_h = F.layer_norm(a_h, a_h.shape[-1:], w.ln_weight_hh, eps=LAYER_NORM_EPS)
    if w.bias_ih is not None:
        a_x, a_h = a_x + w.bias_ih, a_h + w.bias_hh
    return a_x, a_h


def zoneout(new: Tensor, old: Tensor, keep: Tensor | float | None) -> Tensor:
    r""":math:`d \odot \text{old} + (1 - d) \odot \text{new}` (``keep`` a 0/1 mask or a rate)."""
    if keep is None:
        return new
    return keep * old + (1 - keep) * new


def lstm_variant_step(
    x: Tensor, state: LSTMState, w: VariantWeights, masks: VariantMasks, options: VariantOptions
) -> LSTMState:
    """One step of the LSTM variant, written plainly: the reference the engine is held to.

    Arguments:
        x: ``(B, I)``; state: ``LSTMState(h (B, H), c (B, H))``.
        w: the cell's weights; masks: this step's masks (see :meth:`VariantMasks.at`).
        options: which variants are on.

    Returns:
        ``LSTMState(h_t, c_t)`` after zoneout.
    """
    a_x, a_h = variant_preactivations(x, state.h, w, masks, layer_norm=options.layer_norm)
    a_i, a_f, a_g, a_o = (a_x + a_h).chunk(4, dim=-1)  # each (B, H)
    if options.peephole:
        a_i = a_i + w.weight_ci * state.c
        a_f = a_f + w.weight_cf * state.c
    i, f, g = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g)
    c = f * state.c + i * g
    if options.peephole:
        a_o = a_o + w.weight_co * c  # the output gate peeks at the *new* cell state
    o = torch.sigmoid(a_o)
    c_shown = c
    if options.layer_norm:
        c_shown = F.layer_norm(c, c.shape[-1:], w.ln_weight_c, w.ln_bias_c, eps=LAYER_NORM_EPS)
    h = o * torch.tanh(c_shown)
    return LSTMState(zoneout(h, state.h, masks.zoneout_h), zoneout(c, state.c, masks.zoneout_c))


def gru_variant_step(
    x: Tensor, h: Tensor, w: VariantWeights, masks: VariantMasks, options: VariantOptions
) -> Tensor:
    r"""One step of the GRU variant (PyTorch's convention), written plainly.

    .. math::
        r = \sigma(a^x_r + a^h_r), \quad z = \sigma(a^x_z + a^h_z), \quad
        n = \tanh(a^x_n + r \odot a^h_n), \quad \hat h_t = (1 - z) \odot n + z \odot h_{t-1}

    then zoneout on :math:`\hat h_t`. Shapes as :func:`lstm_variant_step`.
    """
    a_x, a_h = variant_preactivations(x, h, w, masks, layer_norm=options.layer_norm)
    x_r, x_z, x_n = a_x.chunk(3, dim=-1)
    h_r, h_z, h_n = a_h.chunk(3, dim=-1)
    r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return zoneout(n + z * (h - n), h, masks.zoneout_h)


def rnn_variant_step(
    x: Tensor,
    h: Tensor,
    w: VariantWeights,
    masks: VariantMasks,
    options: VariantOptions,
    *,
    nonlinearity: str = "tanh",
) -> Tensor:
    r"""One RNN step, :math:`\hat h_t = \tanh(a^x_t + a^h_t)`, then zoneout; written plainly."""
    a_x, a_h = variant_preactivations(x, h, w, masks, layer_norm=options.layer_norm)
    return zoneout(ACTIVATIONS[nonlinearity](a_x + a_h), h, masks.zoneout_h)


def variant_step(
    family: str,
    x: Tensor,
    state: State,
    masks: VariantMasks,
    *,
    weights: VariantWeights,
    options: VariantOptions,
    nonlinearity: str = "tanh",
) -> tuple[Tensor, State]:
    """One step of ``family``'s variant as a cell step: ``(y_t, new_state)``, ``y_t = h_t``.

    Arguments:
        family: ``"lstm"``, ``"gru"`` or ``"rnn"``.
        x, state, masks, weights, options: as in :func:`lstm_variant_step`.
        nonlinearity: the RNN's ``"tanh"`` or ``"relu"``.
    """
    if family == "lstm":
        new = lstm_variant_step(x, state, weights, masks, options)
        return new.h, new
    if family == "gru":
        h = gru_variant_step(x, state, weights, masks, options)
    else:
        h = rnn_variant_step(x, state, weights, masks, options, nonlinearity=nonlinearity)
    return h, h
