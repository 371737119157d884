r"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?").

A GRU's update gate and candidate both read :math:`h_{t-1}`, so step ``t`` cannot start
before step ``t-1`` has finished. Drop the state from the gates and keep only the
interpolation, and the recurrence becomes *linear* in the state:

.. math::
    h_t = a_t \odot h_{t-1} + b_t, \qquad a_t, b_t \text{ functions of } x_t \text{ alone}

Every :math:`a_t, b_t` of a sequence can then be computed at once (one matrix product
over all ``T·B`` rows), and the recurrence itself is a *scan*: composing two steps,
:math:`(a_2, b_2) \circ (a_1, b_1) = (a_2 a_1,\ a_2 b_1 + b_2)`, is associative, so a
parallel prefix scan, or a tight loop with nothing but a multiply-add per element,
computes all states (:mod:`rnnkit.engines.linear`). The cells here are the readable one-step
form, the reference the scan engine is tested against; :meth:`MinGRUCell.coefficients`
gives the same step's :math:`a_t, b_t` for a whole sequence.

Parameters follow torch's names and layouts with the dropped gates left out:
``weight_ih`` ``(G·H, I)`` and ``bias_ih`` ``(G·H,)`` hold the gates stacked in
torch's order (minGRU: ``z, h̃`` from the GRU's ``r, z, n``; minLSTM: ``i, f, h̃`` from
the LSTM's ``i, f, g, o``). There is no ``weight_hh``: nothing reads the state but the
interpolation. Initialisation is torch's U(−1/√H, 1/√H).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.cells.base import BasicCell, LinearCoefficients


class MinGRUGates(NamedTuple):
    """The minGRU update gate and candidate, each ``(..., H)``."""

    z: Tensor  # update gate σ: how much of the candidate to take
    h_tilde: Tensor  # candidate state, linear in x_t (no tanh: the paper's choice)


class MinLSTMGates(NamedTuple):
    """The minLSTM gates after normalisation (``f + i = 1``) and candidate, each ``(..., H)``."""

    i: Tensor  # normalised input gate i' = i / (f + i)
    f: Tensor  # normalised forget gate f' = f / (f + i)
    h_tilde: Tensor  # candidate state, linear in x_t


def mingru_gates(x: Tensor, weight_ih: Tensor, bias_ih: Tensor | None = None) -> MinGRUGates:
    r"""The minGRU gates: the GRU's, with no :math:`h_{t-1}` inside.

    .. math::
        z_t = \sigma(W_{iz} x_t + b_{iz}), \qquad \tilde h_t = W_{ih} x_t + b_{ih}

    Arguments:
        x: input ``(..., I)``: one step ``(B, I)``, or a whole sequence ``(T, B, I)``.
        weight_ih: ``(2H, I)``, gate order ``z, h̃``; bias_ih: ``(2H,)`` or ``None``.
    """
    z, h_tilde = F.linear(x, weight_ih, bias_ih).chunk(2, dim=-1)  # each (..., H)
    return MinGRUGates(torch.sigmoid(z), h_tilde)


def mingru_step(x: Tensor, h: Tensor, weight_ih: Tensor, bias_ih: Tensor | None = None) -> Tensor:
    r"""One minGRU step: :math:`h_t = (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t`.

    Arguments:
        x: input ``x_t``, ``(B, I)``; h: ``h_{t-1}``, ``(B, H)``.
        weight_ih, bias_ih: as in :func:`mingru_gates`.

    Returns:
        ``h_t``, ``(B, H)``.
    """
    z, h_tilde = mingru_gates(x, weight_ih, bias_ih)
    return (1 - z) * h + z * h_tilde


def mingru_coefficients(
    x: Tensor, weight_ih: Tensor, bias_ih: Tensor | None = None
) -> LinearCoefficients:
    r""":func:`mingru_step` as :math:`h_t = a_t \odot h_{t-1} + b_t`, for a whole sequence.

    :math:`a_t = 1 - z_t`, :math:`b_t = z_t \odot \tilde h_t` (the same operations as the
    step, so both round alike).

    Arguments:
        x: ``(T, B, I)`` (any leading dimensions); weight_ih, bias_ih: as in
            :func:`mingru_gates`.
    """
    z, h_tilde = mingru_gates(x, weight_ih, bias_ih)
    return LinearCoefficients(1 - z, z * h_tilde)


def minlstm_gates(x: Tensor, weight_ih: Tensor, bias_ih: Tensor | None = None) -> MinLSTMGates:
    r"""The minLSTM gates, normalised so that forgetting and writing add up to one.

    .. math::
        i_t &= \sigma(W_{ii} x_t + b_{ii}), \quad f_t = \sigma(W_{if} x_t + b_{if}), \quad
        \tilde h_t = W_{ih} x_t + b_{ih} \\
        i'_t &= \frac{i_t}{f_t + i_t}, \qquad f'_t = \frac{f_t}{f_t + i_t}

    The normalised gates are computed as :math:`f'_t = \sigma(\log f_t - \log i_t)`
    (the same number: divide numerator and denominator by :math:`f_t`) with
    :math:`\log \sigma` from the pre-activations, which never underflows; the quotient
    as written would be 0/0 when both gates saturate at 0.

    Arguments:
        x: input ``(..., I)``.
        weight_ih: ``(3H, I)``, gate order ``i, f, h̃``; bias_ih: ``(3H,)`` or ``None``.
    """
    i, f, h_tilde = F.linear(x, weight_ih, bias_ih).chunk(3, dim=-1)  # each (..., H)
    log_ratio = F.logsigmoid(f) - F.logsigmoid(i)  # log f_t - log i_t
    return MinLSTMGates(torch.sigmoid(-log_ratio), torch.sigmoid(log_ratio), h_tilde)


def minlstm_step(x: Tensor, h: Tensor, weight_ih: Tensor, bias_ih: Tensor | None = None) -> Tensor:
    r"""One minLSTM step: :math:`h_t = f'_t \odot h_{t-1} + i'_t \odot \tilde h_t`.

    The paper's minLSTM has no separate cell state and no output gate: ``h`` plays the
    part of the LSTM's ``c``.

    Arguments:
        x: input ``x_t``, ``(B, I)``; h: ``h_{t-1}``, ``(B, H)``.
        weight_ih, bias_ih: as in :func:`minlstm_gates`.

    Returns:
        ``h_t``, ``(B, H)``.
    """
    i, f, h_tilde = minlstm_gates(x, weight_ih, bias_ih)
    return f * h + i * h_tilde


def minlstm_coefficients(
    x: Tensor, weight_ih: Tensor, bias_ih: Tensor | None = None
) -> LinearCoefficients:
    r""":func:`minlstm_step` as :math:`h_t = a_t \odot h_{t-1} + b_t`: :math:`a_t = f'_t`,
    :math:`b_t = i'_t \odot \tilde h_t`, for a whole sequence ``x`` ``(T, B, I)``."""
    i, f, h_tilde = minlstm_gates(x, weight_ih, bias_ih)
    return LinearCoefficients(f, i * h_tilde)


class _MinimalCell(BasicCell):
    """What both cells share: ``G`` gate blocks of ``H`` units read from ``x_t`` only
    (torch's ``weight_ih``, ``bias_ih`` and initialisation, no ``weight_hh``), a step
    function and the same step's coefficients for a whole sequence."""

    reads_state = False
    step_fn: ClassVar[Callable[..., Tensor]]
    coefficients_fn: ClassVar[Callable[..., LinearCoefficients]]

    def step(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        h = type(self).step_fn(x, state, self.weight_ih, self.bias_ih)
        return h, h

    def coefficients(self, x: Tensor) -> LinearCoefficients:
        """:math:`a_t, b_t` of every step of ``x`` ``(T, B, I)``, for the scan engine."""
        return type(self).coefficients_fn(x, self.weight_ih, self.bias_ih)


class MinGRUCell(_MinimalCell):
    r"""minGRU cell: a GRU whose gates do not read the state.

    .. math::
        z_t = \sigma(W_{iz} x_t + b_{iz}), \quad \tilde h_t = W_{ih} x_t + b_{ih}, \quad
        h_t = (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t

    The step is :func:`mingru_step`. Linear in :math:`h_{t-1}`, so :class:`rnnkit.Recurrent`
    runs it on the scan engine (``coefficients``: :func:`mingru_coefficients`);
    :class:`rnnkit.MinGRU` is the stacked layer.

    Arguments:
        input_size: features of ``x_t`` (``I``).
        hidden_size: features of ``h_t`` (``H``).
        bias: learn ``b_ih``.
        torch_compat: a call returns ``h`` alone, as ``torch.nn.GRUCell``'s
            (:class:`~rnnkit.cells.base.RecurrentCell`).

    Shape:
        ``x``: ``(B, I)`` or ``(I,)``; state and output ``y = h``: ``(B, H)`` or ``(H,)``.
        ``weight_ih``: ``(2H, I)``, gate order ``z, h̃``.

    Example::

        >>> cell = MinGRUCell(8, 16)
        >>> y, h = cell(torch.randn(4, 8))
        >>> h.shape
        torch.Size([4, 16])
    """

    gates = 2
    step_fn = staticmethod(mingru_step)
    coefficients_fn = staticmethod(mingru_coefficients)


class MinLSTMCell(_MinimalCell):
    r"""minLSTM cell: an LSTM whose gates do not read the state, normalised.

    .. math::
        i_t = \sigma(W_{ii} x_t + b_{ii}), \quad f_t = \sigma(W_{if} x_t + b_{if}), \quad
        \tilde h_t = W_{ih} x_t + b_{ih} \\
        h_t = \frac{f_t}{f_t + i_t} \odot h_{t-1} + \frac{i_t}{f_t + i_t} \odot \tilde h_t

    One state tensor ``h`` (no separate cell state, no output gate). The step is
    :func:`minlstm_step` (:func:`minlstm_gates` for how the normalisation is computed
    safely); ``coefficients`` is :func:`minlstm_coefficients`.

    Arguments and shapes as :class:`MinGRUCell`, but ``weight_ih`` is ``(3H, I)``, gate
    order ``i, f, h̃``.

    Example (any cell with ``coefficients`` runs on the scan engine in ``Recurrent``)::

        >>> layer = Recurrent(MinLSTMCell(8, 16), bidirectional=True)
        >>> out, h_n = layer(torch.randn(50, 4, 8))
        >>> out.shape, layer.active_engine
        (torch.Size([50, 4, 32]), 'scan')
    """

    gates = 3
    step_fn = staticmethod(minlstm_step)
    coefficients_fn = staticmethod(minlstm_coefficients)
