"""The LSTM cell (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000)."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells.base import Device, DType, LSTMState, RNNCellBase


class LSTMGates(NamedTuple):
    """The four LSTM gates after their activations, each ``(B, H)``."""

    i: Tensor  # input gate σ: how much of the candidate to write
    f: Tensor  # forget gate σ: how much of the old cell state to keep
    g: Tensor  # candidate values tanh
    o: Tensor  # output gate σ: how much of the cell state to show


def lstm_gates(
    x: Tensor,
    h: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None = None,
    bias_hh: Tensor | None = None,
) -> LSTMGates:
    r"""The gates of one LSTM step, in PyTorch's order ``i, f, g, o``.

    .. math::
        i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}) \\
        f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) \\
        g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
        o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho})

    Arguments:
        x: input ``x_t``, ``(B, I)``; h: ``h_{t-1}``, ``(B, P or H)``.
        weight_ih: the four input maps stacked, ``(4H, I)``.
        weight_hh: the four recurrent maps stacked, ``(4H, P or H)``.
        bias_ih, bias_hh: ``(4H,)`` or ``None``.
    """
    # One matrix product per source gives all four pre-activations (the notes' x2h + h2h).
    gates = F.linear(x, weight_ih, bias_ih) + F.linear(h, weight_hh, bias_hh)  # (B, 4H)
    i, f, g, o = gates.chunk(4, dim=-1)  # each (B, H)
    return LSTMGates(torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o))


def lstm_step(
    x: Tensor,
    state: LSTMState,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None = None,
    bias_hh: Tensor | None = None,
    weight_hr: Tensor | None = None,
) -> LSTMState:
    r"""One LSTM step: the gates (:func:`lstm_gates`), then the cell and hidden state.

    .. math::
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
        h_t &= o_t \odot \tanh(c_t) \quad (\text{then } h_t = W_{hr} h_t \text{ with a projection})

    Arguments:
        x: input ``x_t``, shape ``(B, I)``.
        state: ``LSTMState(h, c)`` with ``h`` ``(B, P or H)`` and ``c`` ``(B, H)``.
        weight_ih, weight_hh, bias_ih, bias_hh: as in :func:`lstm_gates`.
        weight_hr: projection ``(P, H)`` or ``None``.

    Returns:
        ``LSTMState(h_t, c_t)``.
    """
    i, f, g, o = lstm_gates(x, state.h, weight_ih, weight_hh, bias_ih, bias_hh)
    c = f * state.c + i * g  # the conveyor belt: additive, so gradients flow through it
    h = o * torch.tanh(c)  # note tanh(c_t), not tanh(c_{t-1})
    if weight_hr is not None:
        h = F.linear(h, weight_hr)  # (B, P)
    return LSTMState(h, c)


class LSTMCell(RNNCellBase):
    r"""LSTM cell, with the parameters and call of :class:`torch.nn.LSTMCell` (plus ``proj_size``).

    .. math::
        (i, f, g, o) &= (\sigma, \sigma, \tanh, \sigma)
                        (W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}) \\
        c_t &= f \odot c_{t-1} + i \odot g, \qquad h_t = o \odot \tanh(c_t), \qquad y_t = h_t

    See :func:`lstm_step` for the gate-by-gate form. With ``proj_size=P > 0`` the hidden
    state is projected to ``P`` features by ``weight_hr`` (Sak et al. 2014), as in
    ``torch.nn.LSTM``.

    As ``torch.nn.LSTMCell``: the constructor's arguments and their order; parameter
    names, gate order (``i, f, g, o``), shapes and initialisation (U(−1/√H, 1/√H)), so a
    ``state_dict`` moves between the two unchanged; what a call takes, ``cell(x, (h, c))``
    with a plain tuple, an ``LSTMState`` or ``None``, batched or unbatched. It returns
    ``(y, LSTMState(h, c))`` (the cell protocol), or ``(h, c)`` alone, as torch does, with
    ``torch_compat=True`` (an ``LSTMState``, which unpacks like torch's tuple).

    Arguments:
        input_size: features of ``x_t`` (``I``).
        hidden_size: features of the cell state (``H``).
        bias: learn ``b_ih`` and ``b_hh``.
        proj_size: ``0`` (no projection) or ``0 < P < H``.
        torch_compat: a call returns ``(h, c)`` alone
            (:class:`~rnnkit.cells.base.RecurrentCell`).

    Shape:
        ``x``: ``(B, I)`` or ``(I,)``; state: ``LSTMState(h (B, P or H), c (B, H))``, or
        both without ``B`` for a 1-D ``x``; output ``y = h``.

    Example::

        >>> cell = LSTMCell(10, 20)
        >>> y, (h, c) = cell(torch.randn(3, 10))
        >>> y.shape, c.shape
        (torch.Size([3, 20]), torch.Size([3, 20]))
        >>> torch_style = LSTMCell(10, 20, torch_compat=True)
        >>> h, c = torch_style(torch.randn(3, 10), (h, c))  # as with torch.nn.LSTMCell
    """

    gates = 4  # i, f, g, o

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Device = None,
        dtype: DType = None,
        *,
        proj_size: int = 0,
        torch_compat: bool = False,
    ) -> None:
        if not 0 <= proj_size < hidden_size:
            raise ValueError(
                f"LSTMCell: expected 0 <= proj_size < hidden_size={hidden_size}, got {proj_size}"
            )
        super().__init__(
            input_size,
            hidden_size,
            bias,
            device,
            dtype,
            recurrent_size=proj_size,
            torch_compat=torch_compat,
        )
        self.proj_size = proj_size
        self.weight_hr = None
        if proj_size:
            weight_hr = torch.empty(proj_size, hidden_size, device=device, dtype=dtype)
            self.weight_hr = nn.Parameter(weight_hr)
        self.reset_parameters()

    def init_state(
        self, batch_size: int, *, device: Device = None, dtype: DType = None
    ) -> LSTMState:
        h = self.zeros(batch_size, self.output_size, device=device, dtype=dtype)
        return LSTMState(h, super().init_state(batch_size, device=device, dtype=dtype))

    def step(self, x: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
        weights = (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, self.weight_hr)
        new = lstm_step(x, state, *weights)
        return new.h, new

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", proj_size={self.proj_size}" if self.proj_size else "")
