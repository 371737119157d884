"""Recurrent cell variants: layer norm, peepholes, zoneout, variational dropout, DropConnect.

Three cells extend the plain ones with the options of :mod:`rnnkit.cells.options`:
:class:`LSTMVariantCell`, :class:`GRUVariantCell` and :class:`RNNVariantCell`. With every
option off a variant cell *is* the plain cell: same parameters, ``state_dict`` keys,
initialisation and outputs. A cell's step is the reference step of its family
(:mod:`rnnkit.cells.variant_steps`); its noise is drawn once per sequence
(:meth:`VariantCell.sample_masks`, :mod:`rnnkit.cells.masks`) and handed to whichever
engine runs, so the loop engine and the BPTT engine see the same masks for the same seed.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn
from typing_extensions import Unpack

from rnnkit.cells.base import (
    Device,
    DType,
    LSTMState,
    RNNCellBase,
    State,
    check_cell_input,
    check_sizes,
)
from rnnkit.cells.masks import VariantMasks, sample_masks
from rnnkit.cells.options import (
    GATES,
    LSTMVariantKwargs,
    VariantKwargs,
    VariantWeights,
    init_variant_,
    variant_options,
    variant_parameter_shapes,
)
from rnnkit.cells.rnn import check_nonlinearity
from rnnkit.cells.variant_steps import variant_step


class VariantCell(RNNCellBase):
    """Shared machinery of the variant cells (parameters, masks, checks, the step).

    Subclasses set ``family`` and ``gates``; one with keywords other than
    :class:`VariantKwargs` declares them in its own constructor's signature
    (``**variant: Unpack[LSTMVariantKwargs]``).

    Arguments:
        input_size, hidden_size, bias, device, dtype, torch_compat: as the plain cell's.
        variant: the variant keywords (checked by :func:`variant_options`).
    """

    family: ClassVar[str]
    nonlinearity: str = "tanh"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Device = None,
        dtype: DType = None,
        *,
        torch_compat: bool = False,
        **variant: Unpack[VariantKwargs],
    ) -> None:
        name = type(self).__name__
        check_sizes(name, input_size=input_size, hidden_size=hidden_size)
        options = variant_options(name, self.family, variant, bias=bias)
        super().__init__(input_size, hidden_size, bias, device, dtype, torch_compat=torch_compat)
        self.options = options
        # Registered after torch's own parameters, so that with every option off
        # initialisation draws the same numbers as the plain cell.
        for pname, shape in variant_parameter_shapes(self.family, options, hidden_size).items():
            param = nn.Parameter(torch.empty(shape, device=device, dtype=dtype))
            self.register_parameter(pname, param)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # torch's init for the torch.nn parameters (the same draws as the plain cell),
        # then the variant's own (LN gains, peepholes, forget bias, orthogonal W_hh).
        super().reset_parameters()
        init_variant_(self.weights(), self.options, self.hidden_size)

    def weights(self) -> VariantWeights:
        """This cell's parameters as a :class:`VariantWeights`."""
        return VariantWeights.of(self)

    def sample_masks(
        self,
        batch_size: int,
        num_steps: int = 1,
        *,
        like: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> VariantMasks:
        """Draw this cell's masks for a sequence of ``num_steps`` (see :func:`sample_masks`).

        Example::

            masks = cell.sample_masks(batch, num_steps)  # once per sequence
            for t in range(num_steps):
                y, state = cell(x[t], state, masks=masks.at(t))
        """
        return sample_masks(
            self.options,
            family=self.family,
            batch_size=batch_size,
            num_steps=num_steps,
            input_size=self.input_size,
            hidden_size=self.hidden_size,
            training=self.training,
            like=self.weight_hh if like is None else like,
            generator=generator,
        )

    def masked_step(self, x: Tensor, state: State, masks: VariantMasks) -> tuple[Tensor, State]:
        """One step under the given masks of this step: ``(y_t, new_state)``."""
        return variant_step(
            self.family,
            x,
            state,
            masks,
            weights=self.weights(),
            options=self.options,
            nonlinearity=self.nonlinearity,
        )

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if self.training and self.options.stochastic:
            raise RuntimeError(
                f"{type(self).__name__}: in training mode, dropout and zoneout masks belong to "
                "a whole sequence; run the cell in rnnkit.Recurrent, or draw them with "
                "masks = cell.sample_masks(batch_size, num_steps) and call "
                "cell(x_t, state, masks=masks.at(t))"
            )
        return self.masked_step(x, state, self.sample_masks(x.shape[0], like=x))

    def forward(
        self, x: Tensor, state: State | None = None, *, masks: VariantMasks | None = None
    ) -> tuple[Tensor, State] | State:
        """One step; ``masks`` (from :meth:`sample_masks`, at ``t``) for the noisy options.

        Without ``masks`` this is the plain cell call (``(I,)`` input, ``None`` or a plain
        tuple state allowed, see :class:`~rnnkit.cells.base.RecurrentCell`); in training mode
        with dropout or zoneout on, ``masks`` is required, and the input batched.
        """
        if masks is None:
            return super().forward(x, state)
        check_cell_input(self, x)
        if x.dim() != 2:
            raise ValueError(
                f"{type(self).__name__}: masks= needs a batched (B, {self.input_size}) input, "
                f"got shape {tuple(x.shape)}"
            )
        return self.returned(*self.masked_step(x, self.batch_state(x, state), masks))

    def extra_repr(self) -> str:
        options = self.options.describe()
        return super().extra_repr() + (f", {options}" if options else "")


class LSTMVariantCell(VariantCell):
    r"""LSTM cell with layer norm, peepholes, zoneout, variational dropout and DropConnect.

    .. math::
        a_t &= \mathrm{LN}(W_{ih}\tilde x_t)\gamma_{ih} + b_{ih}
              + \mathrm{LN}(\tilde W_{hh}\tilde h_{t-1})\gamma_{hh} + b_{hh} \\
        i, f &= \sigma(a_{i,f} + p_{i,f} \odot c_{t-1}), \quad g = \tanh(a_g), \quad
        \hat c_t = f \odot c_{t-1} + i \odot g \\
        o &= \sigma(a_o + p_o \odot \hat c_t), \quad
        \hat h_t = o \odot \tanh(\mathrm{LN}(\hat c_t)\gamma_c + \beta_c) \\
        h_t &= d^h_t \odot h_{t-1} + (1 - d^h_t) \odot \hat h_t, \quad
        c_t = d^c_t \odot c_{t-1} + (1 - d^c_t) \odot \hat c_t, \quad y_t = h_t

    Each term appears only with its option (see :mod:`rnnkit.cells.options` for the
    options, references and eval-mode semantics). With every option off this is
    :class:`rnnkit.LSTMCell`: same parameters, ``state_dict`` and outputs. Projections
    (``proj_size``) are not offered with variants.

    Arguments:
        input_size: ``I``; hidden_size: ``H``; bias: learn ``b_ih`` and ``b_hh``.
        torch_compat: a call returns ``(h, c)`` alone, as :class:`rnnkit.LSTMCell`'s.
        layer_norm, peephole, zoneout_h, zoneout_c, input_dropout, recurrent_dropout,
        weight_drop, forget_bias, recurrent_init (:class:`LSTMVariantKwargs`): see
        :class:`VariantOptions`.

    Shape:
        ``x``: ``(B, I)`` or ``(I,)``; state ``LSTMState(h (B, H), c (B, H))``; ``y = h``.

    Example::

        >>> cell = LSTMVariantCell(10, 20, layer_norm=True, zoneout_h=0.1, forget_bias=1.0)
        >>> layer = rnnkit.Recurrent(cell, batch_first=True)  # runs on the BPTT engine
        >>> out, (h, c) = layer(torch.randn(3, 7, 10))
        >>> out.shape
        torch.Size([3, 7, 20])
    """

    family = "lstm"
    gates = GATES[family]

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Device = None,
        dtype: DType = None,
        *,
        torch_compat: bool = False,
        **variant: Unpack[LSTMVariantKwargs],
    ) -> None:
        super().__init__(
            input_size, hidden_size, bias, device, dtype, torch_compat=torch_compat, **variant
        )

    def init_state(
        self, batch_size: int, *, device: Device = None, dtype: DType = None
    ) -> LSTMState:
        c = super().init_state(batch_size, device=device, dtype=dtype)
        return LSTMState(torch.zeros_like(c), c)


class GRUVariantCell(VariantCell):
    r"""GRU cell with layer norm, zoneout, variational dropout and DropConnect.

    .. math::
        a^x_t &= \mathrm{LN}(W_{ih}\tilde x_t)\gamma_{ih} + b_{ih}, \quad
        a^h_t = \mathrm{LN}(\tilde W_{hh}\tilde h_{t-1})\gamma_{hh} + b_{hh} \\
        r &= \sigma(a^x_r + a^h_r), \quad z = \sigma(a^x_z + a^h_z), \quad
        n = \tanh(a^x_n + r \odot a^h_n) \\
        \hat h_t &= (1 - z) \odot n + z \odot h_{t-1}, \quad
        h_t = d_t \odot h_{t-1} + (1 - d_t) \odot \hat h_t

    The LN formulation is haste's LayerNormGRU. Peepholes, ``zoneout_c`` and
    ``forget_bias`` are LSTM options and raise here. With every option off this is
    :class:`rnnkit.GRUCell`.

    Arguments:
        input_size, hidden_size, bias, torch_compat: as :class:`rnnkit.GRUCell`.
        layer_norm, zoneout_h, input_dropout, recurrent_dropout, weight_drop,
        recurrent_init (:class:`VariantKwargs`): see :class:`VariantOptions`.

    Shape:
        ``x``: ``(B, I)`` or ``(I,)``; state and ``y = h``: ``(B, H)``.

    Example::

        >>> cell = GRUVariantCell(28, 128, layer_norm=True, recurrent_dropout=0.25)
        >>> out, h = rnnkit.Recurrent(cell)(torch.randn(28, 64, 28))
        >>> h.shape
        torch.Size([1, 64, 128])
    """

    family = "gru"
    gates = GATES[family]  # the constructor is VariantCell's: the common variant keywords


class RNNVariantCell(VariantCell):
    r"""RNN (Elman) cell with layer norm, zoneout, variational dropout and DropConnect.

    .. math::
        \hat h_t = \tanh(\mathrm{LN}(W_{ih}\tilde x_t)\gamma_{ih} + b_{ih}
                   + \mathrm{LN}(\tilde W_{hh}\tilde h_{t-1})\gamma_{hh} + b_{hh}), \quad
        h_t = d_t \odot h_{t-1} + (1 - d_t) \odot \hat h_t

    (``relu`` instead of ``tanh`` with ``nonlinearity="relu"``). With every option off
    this is :class:`rnnkit.RNNCell`.

    Arguments:
        input_size, hidden_size, bias, nonlinearity, torch_compat: as :class:`rnnkit.RNNCell`.
        layer_norm, zoneout_h, input_dropout, recurrent_dropout, weight_drop,
        recurrent_init (:class:`VariantKwargs`): see :class:`VariantOptions`.

    Shape:
        ``x``: ``(B, I)`` or ``(I,)``; state and ``y = h``: ``(B, H)``.

    Example::

        >>> cell = RNNVariantCell(4, 8, zoneout_h=0.2)
        >>> y, h = cell.eval()(torch.randn(2, 4))  # eval: the expectation of zoneout
        >>> y.shape
        torch.Size([2, 8])
    """

    family = "rnn"
    gates = GATES[family]

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
        **variant: Unpack[VariantKwargs],
    ) -> None:
        check_nonlinearity("RNNVariantCell", nonlinearity)
        super().__init__(
            input_size, hidden_size, bias, device, dtype, torch_compat=torch_compat, **variant
        )
        self.nonlinearity = nonlinearity

    def extra_repr(self) -> str:
        base = super().extra_repr()
        return (
            base if self.nonlinearity == "tanh" else f"{base}, nonlinearity={self.nonlinearity!r}"
        )
