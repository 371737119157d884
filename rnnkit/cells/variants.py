r"""Recurrent cell variants: layer norm, peepholes, zoneout, variational dropout, DropConnect.

PyTorch's fused kernels run only the textbook cells. The variants people ask for
(pytorch/pytorch#6760, #561, #37731) are options here, one keyword each, on three cells
that extend the plain ones: :class:`LSTMVariantCell`, :class:`GRUVariantCell` and
:class:`RNNVariantCell`. With every option off a variant cell *is* the plain cell:
same parameters, ``state_dict`` keys, initialisation and outputs.

The options (:class:`VariantOptions`), for ``G`` gate blocks of ``H`` units (LSTM 4, GRU 3,
Elman 1):

``layer_norm`` (Ba et al. 2016, in the LayerNormLSTM/GRU formulation of *haste*)
    LN with a learned gain and no shift on the input and on the recurrent
    pre-activations, each over all ``G·H`` units, before the biases; for an LSTM also LN
    (gain and shift) on the cell state before its ``tanh``:

    .. math::
        a_t = \mathrm{LN}(W_{ih}\tilde x_t)\,\gamma_{ih} + b_{ih}
            + \mathrm{LN}(\tilde W_{hh}\tilde h_{t-1})\,\gamma_{hh} + b_{hh}, \qquad
        h_t = o_t \odot \tanh(\mathrm{LN}(c_t)\,\gamma_c + \beta_c)

    The carried cell state ``c_t`` stays un-normalised. Parameters: ``ln_weight_ih``,
    ``ln_weight_hh`` ``(G·H,)``, and for an LSTM ``ln_weight_c``, ``ln_bias_c`` ``(H,)``.
``peephole`` (Gers & Schmidhuber 2000; LSTM only)
    The gates also read the cell state: :math:`i_t = \sigma(a_i + p_i \odot c_{t-1})`,
    :math:`f_t = \sigma(a_f + p_f \odot c_{t-1})`, :math:`o_t = \sigma(a_o + p_o \odot c_t)`.
    Parameters ``weight_ci``, ``weight_cf``, ``weight_co`` ``(H,)``.
``zoneout_h``, ``zoneout_c`` (Krueger et al. 2016; ``zoneout_c`` LSTM only)
    Each unit keeps its previous value with probability ``z``, drawn afresh at every
    step: :math:`h_t = d_t \odot h_{t-1} + (1 - d_t) \odot \hat h_t`, ``d_t ~ Bernoulli(z)``.
    The output is the zoned-out ``h_t``. In eval mode the expectation is used instead:
    :math:`h_t = z\,h_{t-1} + (1 - z)\,\hat h_t`.
``input_dropout``, ``recurrent_dropout`` (variational dropout, Gal & Ghahramani 2016)
    One mask per sequence, reused at every step, on the input :math:`\tilde x_t = m_x
    \odot x_t` and on the state entering the recurrent product :math:`\tilde h_{t-1} =
    m_h \odot h_{t-1}` (the carried state itself is not dropped). Masks are scaled by
    ``1/(1-p)``. Off in eval mode.
``weight_drop`` (DropConnect on ``W_hh``, Wan et al. 2013, as in AWD-LSTM)
    :math:`\tilde W_{hh} = M \odot W_{hh}`, one mask per forward pass shared by the batch
    and every step, scaled by ``1/(1-p)``. Off in eval mode.
``forget_bias`` (LSTM only), ``recurrent_init``
    Initialisation only, so they never change which engine runs: the forget-gate bias
    starts at ``forget_bias`` (``b_ih``'s forget slice; ``b_hh``'s is zeroed), 1.0
    being the usual choice to let the cell remember from the start (Gers et al. 2000,
    Jozefowicz et al. 2015); ``recurrent_init="orthogonal"`` makes every gate block of
    ``W_hh`` an orthogonal matrix (Saxe et al. 2014), which keeps the repeated recurrent
    product from shrinking or blowing up the signal early in training.

Masks are drawn from the torch RNG once per sequence by :func:`sample_masks` (a cell's
:meth:`~LSTMVariantCell.sample_masks`), then handed to whichever engine runs, so the
loop engine and the BPTT engine see the same masks for the same seed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells.base import (
    LSTMState,
    RecurrentCell,
    State,
    check_cell_input,
    check_cell_state,
)

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
"""Gate blocks per cell family: the rows of ``W_ih`` and ``W_hh`` are ``GATES[family] * H``."""

RECURRENT_INITS = ("uniform", "orthogonal")
LAYER_NORM_EPS = 1e-5  # torch.nn.LayerNorm's default
_LSTM_ONLY = ("peephole", "zoneout_c", "forget_bias")
_RATES = ("zoneout_h", "zoneout_c", "input_dropout", "recurrent_dropout", "weight_drop")


@dataclass(frozen=True)
class VariantOptions:
    """The variant options of a cell or layer (config as data: ``dataclasses.asdict`` it).

    Attributes:
        layer_norm: LN on the input and recurrent pre-activations (and on ``c_t``).
        peephole: LSTM only: the gates read the cell state.
        zoneout_h: probability that a unit of ``h`` keeps its previous value, in [0, 1).
        zoneout_c: LSTM only: the same for the cell state ``c``.
        input_dropout: variational dropout rate on the input, in [0, 1).
        recurrent_dropout: variational dropout rate on ``h_{t-1}`` entering ``W_hh``.
        weight_drop: DropConnect rate on ``W_hh``, one mask per forward pass.
        forget_bias: LSTM only: initial forget-gate bias (``None`` leaves torch's init).
        recurrent_init: ``"uniform"`` (torch's U(−1/√H, 1/√H)) or ``"orthogonal"``.
    """

    layer_norm: bool = False
    peephole: bool = False
    zoneout_h: float = 0.0
    zoneout_c: float = 0.0
    input_dropout: float = 0.0
    recurrent_dropout: float = 0.0
    weight_drop: float = 0.0
    forget_bias: float | None = None
    recurrent_init: str = "uniform"

    @property
    def changes_forward(self) -> bool:
        """Whether the forward pass differs from the plain cell (init options do not)."""
        return self.layer_norm or self.peephole or self.stochastic

    @property
    def stochastic(self) -> bool:
        """Whether training draws masks (dropout, DropConnect or zoneout)."""
        return any(getattr(self, name) > 0 for name in _RATES)

    def check(self, family: str, name: str, *, bias: bool = True) -> VariantOptions:
        """Raise a clear error for options that are invalid for ``family``; returns self.

        Arguments:
            family: ``"lstm"``, ``"gru"`` or ``"rnn"``.
            name: the cell or layer, for error messages.
            bias: whether the cell has biases (``forget_bias`` needs them).
        """
        for flag in ("layer_norm", "peephole"):
            value = getattr(self, flag)
            if not isinstance(value, bool):
                raise TypeError(f"{name}: expected {flag} to be True or False, got {value!r}")
        for rate in _RATES:
            value = getattr(self, rate)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name}: expected {rate} to be a float in [0, 1), got {value!r}")
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name}: expected {rate} in [0, 1), got {value!r}")
        if self.recurrent_init not in RECURRENT_INITS:
            raise ValueError(
                f"{name}: expected recurrent_init to be one of {RECURRENT_INITS}, "
                f"got {self.recurrent_init!r}"
            )
        if family != "lstm":
            self._check_lstm_only(name)
        if self.forget_bias is not None and not bias:
            raise ValueError(f"{name}: forget_bias={self.forget_bias} needs bias=True")
        return self

    def _check_lstm_only(self, name: str) -> None:
        reasons = {
            "peephole": "peepholes read the cell state c, which only an LSTM has",
            "zoneout_c": "only an LSTM has a cell state c; use zoneout_h",
            "forget_bias": "only an LSTM has a forget gate",
        }
        for option in _LSTM_ONLY:
            value = getattr(self, option)
            if value not in (False, 0.0, None):
                raise ValueError(
                    f"{name}: {option}={value!r} is an LSTM option ({reasons[option]})"
                )

    def describe(self) -> str:
        """The options that differ from the defaults, as ``key=value`` pairs."""
        default = VariantOptions()
        changed = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        ]
        return ", ".join(changed)


class VariantWeights(NamedTuple):
    """The parameters of one variant cell (or one layer and direction), ``None`` if absent.

    Shapes for ``G`` gate blocks of ``H`` units and input size ``I``: ``weight_ih``
    ``(G·H, I)``, ``weight_hh`` ``(G·H, H)``, biases and ``ln_weight_ih/hh`` ``(G·H,)``,
    ``ln_weight_c``, ``ln_bias_c`` and the peepholes ``weight_ci/cf/co`` ``(H,)``.
    """

    weight_ih: Tensor
    weight_hh: Tensor
    bias_ih: Tensor | None = None
    bias_hh: Tensor | None = None
    ln_weight_ih: Tensor | None = None
    ln_weight_hh: Tensor | None = None
    ln_weight_c: Tensor | None = None
    ln_bias_c: Tensor | None = None
    weight_ci: Tensor | None = None
    weight_cf: Tensor | None = None
    weight_co: Tensor | None = None


def variant_parameter_shapes(
    family: str, options: VariantOptions, hidden_size: int
) -> dict[str, tuple[int, ...]]:
    """The extra parameters an option set adds, by base name (no ``_l{k}`` suffix)."""
    rows = GATES[family] * hidden_size
    shapes: dict[str, tuple[int, ...]] = {}
    if options.layer_norm:
        shapes.update(ln_weight_ih=(rows,), ln_weight_hh=(rows,))
        if family == "lstm":
            shapes.update(ln_weight_c=(hidden_size,), ln_bias_c=(hidden_size,))
    if options.peephole:
        shapes.update(weight_ci=(hidden_size,), weight_cf=(hidden_size,), weight_co=(hidden_size,))
    return shapes


@torch.no_grad()
def init_variant_(weights: VariantWeights, options: VariantOptions, hidden_size: int) -> None:
    """Apply the option-specific initialisation on top of torch's uniform one (in place).

    LN gains start at 1 and the cell-state LN shift at 0, so a fresh LN is a plain
    normalisation (Ba et al. 2016). Peepholes get torch's U(−1/√H, 1/√H), like every
    other recurrent weight. See the module docstring for ``forget_bias`` and
    ``recurrent_init``.
    """
    bound = 1.0 / hidden_size**0.5
    for peep in (weights.weight_ci, weights.weight_cf, weights.weight_co):
        if peep is not None:
            peep.uniform_(-bound, bound)
    for gain in (weights.ln_weight_ih, weights.ln_weight_hh, weights.ln_weight_c):
        if gain is not None:
            gain.fill_(1.0)
    if weights.ln_bias_c is not None:
        weights.ln_bias_c.zero_()
    if options.recurrent_init == "orthogonal":
        for block in weights.weight_hh.split(hidden_size, dim=0):  # one (H, H) map per gate
            nn.init.orthogonal_(block)
    if options.forget_bias is not None and weights.bias_ih is not None:
        forget = slice(hidden_size, 2 * hidden_size)  # gate order i, f, g, o
        weights.bias_ih[forget] = options.forget_bias
        weights.bias_hh[forget] = 0.0


class VariantMasks(NamedTuple):
    """The random masks of one sequence (or one step) of a variant cell.

    Attributes:
        input: variational dropout mask on ``x``, ``(B, I)``, values 0 or ``1/(1-p)``.
        recurrent: variational dropout mask on ``h_{t-1}`` entering ``W_hh``, ``(B, H)``.
        weight: DropConnect mask on ``W_hh``, ``(G·H, H)``.
        zoneout_h: keep-previous mask for ``h``: ``(T, B, H)`` of 0/1 in training
            (``(B, H)`` for one step), or the rate ``z`` as a float in eval mode.
        zoneout_c: the same for the LSTM cell state ``c``.

    A ``None`` field means "no such noise".
    """

    input: Tensor | None = None
    recurrent: Tensor | None = None
    weight: Tensor | None = None
    zoneout_h: Tensor | float | None = None
    zoneout_c: Tensor | float | None = None

    @property
    def num_steps(self) -> int | None:
        """``T`` of the per-step zoneout masks, or ``None`` if no mask varies with time."""
        for z in (self.zoneout_h, self.zoneout_c):
            if isinstance(z, Tensor):
                return z.shape[0]
        return None

    def at(self, t: int) -> VariantMasks:
        """The masks of step ``t`` (per-step zoneout masks indexed, the rest shared)."""
        return self._replace(
            zoneout_h=_index(self.zoneout_h, t), zoneout_c=_index(self.zoneout_c, t)
        )


def _index(z: Tensor | float | None, t: int) -> Tensor | float | None:
    return z[t] if isinstance(z, Tensor) else z


def _dropout_mask(
    shape: tuple[int, ...], p: float, like: Tensor, generator: torch.Generator | None
) -> Tensor:
    return like.new_empty(shape).bernoulli_(1.0 - p, generator=generator).div_(1.0 - p)


def sample_masks(
    options: VariantOptions,
    *,
    family: str,
    batch_size: int,
    num_steps: int,
    input_size: int,
    hidden_size: int,
    training: bool,
    like: Tensor,
    generator: torch.Generator | None = None,
) -> VariantMasks:
    """Draw the masks of one sequence: the one helper every engine takes them from.

    Draw order (fixed, so a seed fixes every mask): input, recurrent, weight, zoneout
    ``h``, zoneout ``c``. In eval mode nothing is drawn: dropout is off and zoneout
    masks are the rates themselves (the expectation form).

    Arguments:
        options: the cell's options.
        family: ``"lstm"``, ``"gru"`` or ``"rnn"``.
        batch_size, num_steps, input_size, hidden_size: ``B``, ``T``, ``I``, ``H``.
        training: the module's mode.
        like: a tensor whose dtype and device the masks take.
        generator: an optional ``torch.Generator`` instead of the global RNG.

    Returns:
        A :class:`VariantMasks`.
    """
    o = options
    if not training:
        return VariantMasks(zoneout_h=o.zoneout_h or None, zoneout_c=o.zoneout_c or None)
    b, h = batch_size, hidden_size
    rows = GATES[family] * h
    return VariantMasks(
        input=_dropout_mask((b, input_size), o.input_dropout, like, generator)
        if o.input_dropout
        else None,
        recurrent=_dropout_mask((b, h), o.recurrent_dropout, like, generator)
        if o.recurrent_dropout
        else None,
        weight=_dropout_mask((rows, h), o.weight_drop, like, generator) if o.weight_drop else None,
        zoneout_h=like.new_empty(num_steps, b, h).bernoulli_(o.zoneout_h, generator=generator)
        if o.zoneout_h
        else None,
        zoneout_c=like.new_empty(num_steps, b, h).bernoulli_(o.zoneout_c, generator=generator)
        if o.zoneout_c
        else None,
    )


# -- the reference steps: plain autograd, one time step -------------------------------------


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


_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"tanh": torch.tanh, "relu": torch.relu}


def rnn_variant_step(
    x: Tensor,
    h: Tensor,
    w: VariantWeights,
    masks: VariantMasks,
    options: VariantOptions,
    *,
    nonlinearity: str = "tanh",
) -> Tensor:
    r"""One Elman step, :math:`\hat h_t = \tanh(a^x_t + a^h_t)`, then zoneout; written plainly."""
    a_x, a_h = variant_preactivations(x, h, w, masks, layer_norm=options.layer_norm)
    return zoneout(_ACTIVATIONS[nonlinearity](a_x + a_h), h, masks.zoneout_h)


# -- the cells --------------------------------------------------------------------------------


@runtime_checkable
class MaskedCell(Protocol):
    """A cell whose noise is drawn once per sequence (what the variant cells implement).

    A layer draws the masks of every cell once per forward with ``sample_masks`` and runs
    the loop engine with ``sequence_step(masks, reverse=...)`` as the step function.
    """

    def sample_masks(
        self,
        batch_size: int,
        num_steps: int = 1,
        *,
        like: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> VariantMasks: ...

    def sequence_step(self, masks: VariantMasks, *, reverse: bool = False) -> Any: ...


MaskedStep = Callable[[Tensor, State, VariantMasks], tuple[Tensor, State]]
"""One step under the masks of that step: ``(x_t, state, masks_t) -> (y_t, new_state)``."""


def masked_step_fn(
    family: str, weights: VariantWeights, options: VariantOptions, *, nonlinearity: str = "tanh"
) -> MaskedStep:
    """The reference step of a family with fixed weights (what a layer's loop engine runs)."""
    if family == "lstm":

        def lstm(x: Tensor, state: State, masks: VariantMasks) -> tuple[Tensor, State]:
            new = lstm_variant_step(x, state, weights, masks, options)
            return new.h, new

        return lstm
    if family == "gru":

        def gru(x: Tensor, state: State, masks: VariantMasks) -> tuple[Tensor, State]:
            h = gru_variant_step(x, state, weights, masks, options)
            return h, h

        return gru

    def rnn(x: Tensor, state: State, masks: VariantMasks) -> tuple[Tensor, State]:
        h = rnn_variant_step(x, state, weights, masks, options, nonlinearity=nonlinearity)
        return h, h

    return rnn


class SequenceSteps:
    """The loop engine's step function for one sequence under fixed masks.

    The loop engine calls a step function once per time step, in order (``T-1`` down to
    ``0`` for the backward direction), so counting calls recovers ``t`` for the per-step
    zoneout masks without changing the engine's step signature.

    Arguments:
        step: one step under given masks (a cell's ``masked_step``, :func:`masked_step_fn`).
        masks: the sequence's masks.
        reverse: the direction the engine runs.
    """

    def __init__(self, step: MaskedStep, masks: VariantMasks, *, reverse: bool = False) -> None:
        self.step, self.masks = step, masks
        steps = masks.num_steps
        self._times = None
        if steps is not None:
            self._times = iter(range(steps - 1, -1, -1) if reverse else range(steps))

    def __call__(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        masks = self.masks
        if self._times is not None:
            t = next(self._times, None)
            if t is None:
                raise RuntimeError(
                    f"the masks were drawn for {self.masks.num_steps} steps, "
                    "but more steps were run with them"
                )
            masks = masks.at(t)
        return self.step(x, state, masks)


class VariantCell(RecurrentCell):
    """Shared machinery of the variant cells (parameters, masks, checks).

    Subclasses set ``family`` and implement :meth:`masked_step` with the plain reference
    step of their family.
    """

    family: ClassVar[str]

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool,
        options: VariantOptions,
        *,
        device: torch.device | str | None,
        dtype: torch.dtype | None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        for what, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}: expected {what} to be an integer >= 1, got {value!r}")
        self.options = options.check(self.family, name, bias=bias)
        factory = {"device": device, "dtype": dtype}
        rows = GATES[self.family] * hidden_size
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, hidden_size
        self.bias = bias
        # The torch.nn parameters first, in torch's order, so that with every option off
        # initialisation draws the same numbers as the plain cell.
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size, **factory))
        self.bias_ih = nn.Parameter(torch.empty(rows, **factory)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(rows, **factory)) if bias else None
        for pname, shape in variant_parameter_shapes(self.family, options, hidden_size).items():
            self.register_parameter(pname, nn.Parameter(torch.empty(shape, **factory)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # torch's init for the torch.nn parameters (the same draws as the plain cell),
        # then the variant's own (LN gains, peepholes, forget bias, orthogonal W_hh).
        bound = 1.0 / self.hidden_size**0.5
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            weight = getattr(self, name)
            if weight is not None:
                nn.init.uniform_(weight, -bound, bound)
        init_variant_(self.weights(), self.options, self.hidden_size)

    def weights(self) -> VariantWeights:
        """This cell's parameters as a :class:`VariantWeights`."""
        return VariantWeights(*(getattr(self, n, None) for n in VariantWeights._fields))

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

    def sequence_step(self, masks: VariantMasks, *, reverse: bool = False) -> SequenceSteps:
        """The loop engine's step function for one sequence under ``masks``."""
        return SequenceSteps(self.masked_step, masks, reverse=reverse)

    def masked_step(self, x: Tensor, state: State, masks: VariantMasks) -> tuple[Tensor, State]:
        """One step under the given masks of this step: ``(y_t, new_state)``."""
        raise NotImplementedError

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
    ) -> tuple[Tensor, State]:
        """One step; ``masks`` (from :meth:`sample_masks`, at ``t``) for the noisy options.

        Without ``masks`` this is the plain cell call (``(I,)`` input allowed); in training
        mode with dropout or zoneout on, ``masks`` is required.
        """
        if masks is None:
            return super().forward(x, state)
        check_cell_input(self, x)
        if x.dim() != 2:
            raise ValueError(
                f"{type(self).__name__}: masks= needs a batched (B, {self.input_size}) input, "
                f"got shape {tuple(x.shape)}"
            )
        if state is None:
            state = self.init_state(x.shape[0], device=x.device, dtype=x.dtype)
        else:
            check_cell_state(self, state, x.shape[0])
        return self.masked_step(x, state, masks)

    def init_state(
        self,
        batch_size: int,
        *,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        return self.weight_hh.new_zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def extra_repr(self) -> str:
        extra = "" if self.bias else ", bias=False"
        options = self.options.describe()
        return f"{self.input_size}, {self.hidden_size}{extra}" + (f", {options}" if options else "")


def _options(**kwargs: Any) -> VariantOptions:
    return VariantOptions(**kwargs)


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

    Each term appears only with its option (see :mod:`rnnkit.cells.variants` for the
    options, references and eval-mode semantics). With every option off this is
    :class:`rnnkit.LSTMCell`: same parameters, ``state_dict`` and outputs. Projections
    (``proj_size``) are not offered with variants.

    Arguments:
        input_size: ``I``; hidden_size: ``H``; bias: learn ``b_ih`` and ``b_hh``.
        layer_norm, peephole, zoneout_h, zoneout_c, input_dropout, recurrent_dropout,
        weight_drop, forget_bias, recurrent_init: see :class:`VariantOptions`.

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

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        layer_norm: bool = False,
        peephole: bool = False,
        zoneout_h: float = 0.0,
        zoneout_c: float = 0.0,
        input_dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        weight_drop: float = 0.0,
        forget_bias: float | None = None,
        recurrent_init: str = "uniform",
    ) -> None:
        options = _options(
            layer_norm=layer_norm,
            peephole=peephole,
            zoneout_h=zoneout_h,
            zoneout_c=zoneout_c,
            input_dropout=input_dropout,
            recurrent_dropout=recurrent_dropout,
            weight_drop=weight_drop,
            forget_bias=forget_bias,
            recurrent_init=recurrent_init,
        )
        super().__init__(input_size, hidden_size, bias, options, device=device, dtype=dtype)

    def init_state(
        self,
        batch_size: int,
        *,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> LSTMState:
        zeros = super().init_state
        return LSTMState(
            zeros(batch_size, device=device, dtype=dtype),
            zeros(batch_size, device=device, dtype=dtype),
        )

    def masked_step(
        self, x: Tensor, state: LSTMState, masks: VariantMasks
    ) -> tuple[Tensor, LSTMState]:
        """One step under the given masks of this step: ``(h_t, LSTMState(h_t, c_t))``."""
        new = lstm_variant_step(x, state, self.weights(), masks, self.options)
        return new.h, new


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
        input_size, hidden_size, bias: as :class:`rnnkit.GRUCell`.
        layer_norm, zoneout_h, input_dropout, recurrent_dropout, weight_drop,
        recurrent_init: see :class:`VariantOptions`.

    Shape:
        ``x``: ``(B, I)`` or ``(I,)``; state and ``y = h``: ``(B, H)``.

    Example::

        >>> cell = GRUVariantCell(28, 128, layer_norm=True, recurrent_dropout=0.25)
        >>> out, h = rnnkit.Recurrent(cell)(torch.randn(28, 64, 28))
        >>> h.shape
        torch.Size([1, 64, 128])
    """

    family = "gru"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        layer_norm: bool = False,
        zoneout_h: float = 0.0,
        input_dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        weight_drop: float = 0.0,
        recurrent_init: str = "uniform",
        **lstm_only: Any,
    ) -> None:
        options = _options(
            layer_norm=layer_norm,
            zoneout_h=zoneout_h,
            input_dropout=input_dropout,
            recurrent_dropout=recurrent_dropout,
            weight_drop=weight_drop,
            recurrent_init=recurrent_init,
            **_lstm_only_options(type(self).__name__, lstm_only),
        )
        super().__init__(input_size, hidden_size, bias, options, device=device, dtype=dtype)

    def masked_step(self, x: Tensor, state: Tensor, masks: VariantMasks) -> tuple[Tensor, Tensor]:
        h = gru_variant_step(x, state, self.weights(), masks, self.options)
        return h, h


class RNNVariantCell(VariantCell):
    r"""Elman RNN cell with layer norm, zoneout, variational dropout and DropConnect.

    .. math::
        \hat h_t = \tanh(\mathrm{LN}(W_{ih}\tilde x_t)\gamma_{ih} + b_{ih}
                   + \mathrm{LN}(\tilde W_{hh}\tilde h_{t-1})\gamma_{hh} + b_{hh}), \quad
        h_t = d_t \odot h_{t-1} + (1 - d_t) \odot \hat h_t

    (``relu`` instead of ``tanh`` with ``nonlinearity="relu"``). With every option off
    this is :class:`rnnkit.RNNCell`.

    Arguments:
        input_size, hidden_size, bias, nonlinearity: as :class:`rnnkit.RNNCell`.
        layer_norm, zoneout_h, input_dropout, recurrent_dropout, weight_drop,
        recurrent_init: see :class:`VariantOptions`.

    Shape:
        ``x``: ``(B, I)`` or ``(I,)``; state and ``y = h``: ``(B, H)``.

    Example::

        >>> cell = RNNVariantCell(4, 8, zoneout_h=0.2)
        >>> y, h = cell.eval()(torch.randn(2, 4))  # eval: the expectation of zoneout
        >>> y.shape
        torch.Size([2, 8])
    """

    family = "rnn"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        layer_norm: bool = False,
        zoneout_h: float = 0.0,
        input_dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        weight_drop: float = 0.0,
        recurrent_init: str = "uniform",
        **lstm_only: Any,
    ) -> None:
        if nonlinearity not in _ACTIVATIONS:
            raise ValueError(
                f"RNNVariantCell: expected nonlinearity 'tanh' or 'relu', got {nonlinearity!r}"
            )
        options = _options(
            layer_norm=layer_norm,
            zoneout_h=zoneout_h,
            input_dropout=input_dropout,
            recurrent_dropout=recurrent_dropout,
            weight_drop=weight_drop,
            recurrent_init=recurrent_init,
            **_lstm_only_options(type(self).__name__, lstm_only),
        )
        super().__init__(input_size, hidden_size, bias, options, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def masked_step(self, x: Tensor, state: Tensor, masks: VariantMasks) -> tuple[Tensor, Tensor]:
        h = rnn_variant_step(
            x, state, self.weights(), masks, self.options, nonlinearity=self.nonlinearity
        )
        return h, h

    def extra_repr(self) -> str:
        base = super().extra_repr()
        return (
            base if self.nonlinearity == "tanh" else f"{base}, nonlinearity={self.nonlinearity!r}"
        )


def _lstm_only_options(name: str, given: dict[str, Any]) -> dict[str, Any]:
    """Pass LSTM-only options through so :meth:`VariantOptions.check` explains the error."""
    unknown = sorted(set(given) - set(_LSTM_ONLY))
    if unknown:
        raise TypeError(f"{name}: unexpected keyword argument(s) {unknown}")
    return given
