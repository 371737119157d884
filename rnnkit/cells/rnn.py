"""The vanilla (Elman) RNN cell: the recurrence the course starts from."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells.base import RecurrentCell, uniform_init_

_ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}


def rnn_step(
    x: Tensor,
    h: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None = None,
    bias_hh: Tensor | None = None,
    *,
    nonlinearity: str = "tanh",
) -> Tensor:
    r"""One Elman step: :math:`h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})`.

    Arguments:
        x: input ``x_t``, shape ``(B, I)``.
        h: previous hidden state ``h_{t-1}``, shape ``(B, H)``.
        weight_ih: ``W_{ih}`` (the course's ``W_xh``), shape ``(H, I)``.
        weight_hh: ``W_{hh}``, shape ``(H, H)``.
        bias_ih, bias_hh: shape ``(H,)`` or ``None``.
        nonlinearity: ``"tanh"`` or ``"relu"``.

    Returns:
        ``h_t``, shape ``(B, H)``.
    """
    pre = F.linear(x, weight_ih, bias_ih) + F.linear(h, weight_hh, bias_hh)  # (B, H)
    return _ACTIVATIONS[nonlinearity](pre)


class RNNCell(RecurrentCell):
    r"""Elman RNN cell, a drop-in for :class:`torch.nn.RNNCell`.

    .. math::
        h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}), \qquad y_t = h_t

    The same weights are shared by every time step; ``relu`` replaces ``tanh`` when
    ``nonlinearity="relu"``. Parameter names, shapes and initialisation
    (U(−1/√H, 1/√H)) are those of ``torch.nn.RNNCell``, so a ``state_dict`` moves
    between the two unchanged.

    Arguments:
        input_size: features of ``x_t`` (``I``).
        hidden_size: features of ``h_t`` (``H``).
        bias: learn ``b_ih`` and ``b_hh``.
        nonlinearity: ``"tanh"`` or ``"relu"``.

    Shape:
        ``x``: ``(B, I)`` or ``(I,)``; state: ``(B, H)``; output ``y = h``: ``(B, H)``.

    Example::

        >>> cell = RNNCell(10, 20)
        >>> y, h = cell(torch.randn(3, 10))
        >>> y.shape, h.shape
        (torch.Size([3, 20]), torch.Size([3, 20]))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if nonlinearity not in _ACTIVATIONS:
            raise ValueError(
                f"RNNCell: expected nonlinearity 'tanh' or 'relu', got {nonlinearity!r}"
            )
        factory = {"device": device, "dtype": dtype}
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, hidden_size
        self.bias, self.nonlinearity = bias, nonlinearity
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size, **factory))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size, **factory)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(hidden_size, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        uniform_init_(self, self.hidden_size)

    def init_state(
        self,
        batch_size: int,
        *,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        return self.weight_hh.new_zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def step(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        h = rnn_step(
            x,
            state,
            self.weight_ih,
            self.weight_hh,
            self.bias_ih,
            self.bias_hh,
            nonlinearity=self.nonlinearity,
        )
        return h, h

    def extra_repr(self) -> str:
        extra = "" if self.bias else ", bias=False"
        extra += "" if self.nonlinearity == "tanh" else f", nonlinearity={self.nonlinearity!r}"
        return f"{self.input_size}, {self.hidden_size}{extra}"
