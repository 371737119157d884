"""The vanilla (Elman) RNN cell: the recurrence the course starts from."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.cells.base import Device, DType, RNNCellBase

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"tanh": torch.tanh, "relu": torch.relu}
"""The Elman RNN's nonlinearities by name (torch's ``nonlinearity=``)."""


def check_nonlinearity(name: str, nonlinearity: str) -> str:
    """Raise a clear error unless ``nonlinearity`` is ``"tanh"`` or ``"relu"``; returns it."""
    if nonlinearity not in ACTIVATIONS:
        raise ValueError(f"{name}: expected nonlinearity 'tanh' or 'relu', got {nonlinearity!r}")
    return nonlinearity


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
    return ACTIVATIONS[nonlinearity](pre)


class RNNCell(RNNCellBase):
    r"""Elman RNN cell, with the parameters and call of :class:`torch.nn.RNNCell`.

    .. math::
        h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}), \qquad y_t = h_t

    The same weights are shared by every time step; ``relu`` replaces ``tanh`` when
    ``nonlinearity="relu"``.

    As ``torch.nn.RNNCell``: the constructor's arguments and their order; parameter
    names, shapes and initialisation (U(−1/√H, 1/√H)), so a ``state_dict`` moves between
    the two unchanged; what a call takes, ``cell(x, h)`` with ``h`` a tensor or ``None``,
    batched or unbatched. It returns ``(y, h)`` (the cell protocol), or ``h`` alone, as
    torch does, with ``torch_compat=True``.

    Arguments:
        input_size: features of ``x_t`` (``I``).
        hidden_size: features of ``h_t`` (``H``).
        bias: learn ``b_ih`` and ``b_hh``.
        nonlinearity: ``"tanh"`` or ``"relu"``.
        torch_compat: a call returns ``h`` alone (:class:`~rnnkit.cells.base.RecurrentCell`).

    Shape:
        ``x``: ``(B, I)`` or ``(I,)``; state: ``(B, H)`` or ``(H,)``; output ``y = h``.

    Example::

        >>> cell = RNNCell(10, 20)
        >>> y, h = cell(torch.randn(3, 10))
        >>> y.shape, h.shape
        (torch.Size([3, 20]), torch.Size([3, 20]))
        >>> h = RNNCell(10, 20, torch_compat=True)(torch.randn(3, 10), h)  # torch's way
    """

    gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device: Device = None,
        dtype: DType = None,
        *,
        torch_compat: bool = False,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, device, dtype, torch_compat=torch_compat)
        self.nonlinearity = check_nonlinearity("RNNCell", nonlinearity)
        self.reset_parameters()

    def step(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        weights = (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        h = rnn_step(x, state, *weights, nonlinearity=self.nonlinearity)
        return h, h

    def extra_repr(self) -> str:
        extra = "" if self.nonlinearity == "tanh" else f", nonlinearity={self.nonlinearity!r}"
        return super().extra_repr() + extra
