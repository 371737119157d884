"""The GRU cell (Cho et al. 2014), in PyTorch's convention."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.cells.base import BasicCell


class GRUGates(NamedTuple):
    """The GRU gates and candidate after their activations, each ``(B, H)``."""

    r: Tensor  # reset gate σ: how much of the past enters the candidate
    z: Tensor  # update gate σ: how much of the past to keep
    n: Tensor  # candidate state tanh


def gru_gates(
    x: Tensor,
    h: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None = None,
    bias_hh: Tensor | None = None,
) -> GRUGates:
    r"""The gates of one GRU step, in PyTorch's order ``r, z, n``.

    .. math::
        r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
        z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
        n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn}))

    The reset gate multiplies the *recurrent product* (``b_hn`` included), not
    ``h_{t-1}`` before it: this is the cuDNN/PyTorch formulation, which the course's
    GRUCell also uses.

    Arguments:
        x: input ``x_t``, ``(B, I)``; h: ``h_{t-1}``, ``(B, H)``.
        weight_ih: ``(3H, I)``; weight_hh: ``(3H, H)``; bias_ih, bias_hh: ``(3H,)`` or ``None``.
    """
    x_r, x_z, x_n = F.linear(x, weight_ih, bias_ih).chunk(3, dim=-1)  # each (B, H)
    h_r, h_z, h_n = F.linear(h, weight_hh, bias_hh).chunk(3, dim=-1)  # each (B, H)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return GRUGates(r, z, n)


def gru_step(
    x: Tensor,
    h: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None = None,
    bias_hh: Tensor | None = None,
) -> Tensor:
    r"""One GRU step: the gates (:func:`gru_gates`), then the interpolation.

    .. math::
        h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1} = n_t + z_t \odot (h_{t-1} - n_t)

    Arguments:
        x: input ``x_t``, shape ``(B, I)``.
        h: previous hidden state ``h_{t-1}``, shape ``(B, H)``.
        weight_ih, weight_hh, bias_ih, bias_hh: as in :func:`gru_gates`.

    Returns:
        ``h_t``, shape ``(B, H)``.
    """
    _, z, n = gru_gates(x, h, weight_ih, weight_hh, bias_ih, bias_hh)
    return n + z * (h - n)  # = (1 - z) * n + z * h


class GRUCell(BasicCell):
    r"""GRU cell, with the parameters and call of :class:`torch.nn.GRUCell`.

    .. math::
        r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}), \quad
        z_t = \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
        n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})), \quad
        h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}

    No separate cell state and three gate blocks instead of four, so fewer parameters
    than an LSTM of the same width. See :func:`gru_step`.

    As ``torch.nn.GRUCell``: the constructor's arguments and their order; parameter
    names, gate order (``r, z, n``), shapes and initialisation, so a ``state_dict`` moves
    between the two unchanged; what a call takes, ``cell(x, h)`` with ``h`` a tensor or
    ``None``, batched or unbatched. It returns ``(y, h)`` (the cell protocol), or ``h``
    alone, as torch does, with ``torch_compat=True``.

    Arguments:
        input_size: features of ``x_t`` (``I``).
        hidden_size: features of ``h_t`` (``H``).
        bias: learn ``b_ih`` and ``b_hh``.
        torch_compat: a call returns ``h`` alone (:class:`~rnnkit.cells.base.RecurrentCell`).

    Shape:
        ``x``: ``(B, I)`` or ``(I,)``; state and output ``y = h``: ``(B, H)`` or ``(H,)``.

    Example::

        >>> cell = GRUCell(28, 128)
        >>> y, h = cell(torch.randn(64, 28))
        >>> h.shape
        torch.Size([64, 128])
        >>> h = GRUCell(28, 128, torch_compat=True)(torch.randn(64, 28), h)  # torch's way
    """

    gates = 3  # r, z, n

    def step(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        h = gru_step(x, state, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return h, h
