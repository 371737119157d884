r"""The variant options of the recurrent cells and layers: one keyword each.

PyTorch's fused kernels run only the textbook cells. The variants people ask for
(pytorch/pytorch#6760, #561, #37731) are options here, taken by the variant cells
(:mod:`rnnkit.cells.variants`) and the drop-in layers (:mod:`rnnkit.layers.standard`).
With every option off a variant cell *is* the plain cell: same parameters, ``state_dict``
keys, initialisation and outputs.

The options (:class:`VariantOptions`), for ``G`` gate blocks of ``H`` units (LSTM 4, GRU 3,
RNN 1):

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

The keywords are declared once, as :class:`VariantKwargs` and :class:`LSTMVariantKwargs`,
which every constructor takes as ``**variant: Unpack[...]``; :func:`variant_options` turns
them into a checked :class:`VariantOptions`. The random masks are drawn by
:mod:`rnnkit.cells.masks`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from typing_extensions import TypedDict

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
"""Gate blocks per cell family: the rows of ``W_ih`` and ``W_hh`` are ``GATES[family] * H``."""

RECURRENT_INITS = ("uniform", "orthogonal")
LAYER_NORM_EPS = 1e-5  # torch.nn.LayerNorm's default
_RATES = ("zoneout_h", "zoneout_c", "input_dropout", "recurrent_dropout", "weight_drop")


class VariantKwargs(TypedDict, total=False):
    """The variant keywords of every family (meanings in :class:`VariantOptions`)."""

    layer_norm: bool
    zoneout_h: float
    input_dropout: float
    recurrent_dropout: float
    weight_drop: float
    recurrent_init: str


class LSTMVariantKwargs(VariantKwargs, total=False):
    """The LSTM's variant keywords: :class:`VariantKwargs` and three that need a cell state."""

    peephole: bool
    zoneout_c: float
    forget_bias: float | None


LSTM_ONLY = tuple(
    k for k in LSTMVariantKwargs.__annotations__ if k not in VariantKwargs.__annotations__
)
"""The options only an LSTM has: ``peephole``, ``zoneout_c``, ``forget_bias``."""

_WHY_LSTM_ONLY = {
    "peephole": "peepholes read the cell state c, which only an LSTM has",
    "zoneout_c": "only an LSTM has a cell state c; use zoneout_h",
    "forget_bias": "only an LSTM has a forget gate",
}


@dataclass(frozen=True)
class VariantOptions:
    """The variant options of a cell or layer (config as data: ``dataclasses.asdict`` it).

    Its fields are the keys of :class:`LSTMVariantKwargs` (a test holds the two equal).

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
        for option in LSTM_ONLY:
            value = getattr(self, option)
            if value not in (False, 0.0, None):
                raise ValueError(
                    f"{name}: {option}={value!r} is an LSTM option ({_WHY_LSTM_ONLY[option]})"
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


def variant_options(
    name: str, family: str, given: Mapping[str, Any], *, bias: bool = True
) -> VariantOptions:
    """The checked options of a constructor's ``**variant`` keywords.

    The keywords a family's signature shows are its :class:`VariantKwargs` (or
    :class:`LSTMVariantKwargs`); at run time an LSTM option given to a GRU or RNN is let
    through to :meth:`VariantOptions.check`, which says why it does not apply, and any
    other keyword is a ``TypeError`` naming it.

    Arguments:
        name: the cell or layer, for error messages.
        family: ``"lstm"``, ``"gru"`` or ``"rnn"``.
        given: the keywords.
        bias: whether the cell has biases (``forget_bias`` needs them).
    """
    unknown = sorted(set(given) - set(LSTMVariantKwargs.__annotations__))
    if unknown:
        raise TypeError(f"{name}: unexpected keyword argument(s) {unknown}")
    return VariantOptions(**given).check(family, name, bias=bias)


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

    @classmethod
    def of(cls, module: nn.Module, suffix: str = "") -> VariantWeights:
        """A module's parameters by base name plus ``suffix`` (a layer's ``_l{k}{_reverse}``)."""
        return cls(*(getattr(module, name + suffix, None) for name in cls._fields))


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
