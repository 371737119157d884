"""Drop-in ``RNN``, ``LSTM`` and ``GRU`` layers: torch.nn's API and kernels, plus extras.

Each class *is* its ``torch.nn`` counterpart (a subclass): the same constructor,
parameter names (``weight_ih_l{k}{_reverse}`` …), ``state_dict``, call and return
values, and for standard calls the same fused kernels (oneDNN/ATen on CPU, cuDNN on
GPU), so they cost what ``torch.nn`` costs. On top of that they take:

* ``lengths=`` — valid lengths of a padded batch, without packing by hand
  (zero-length sequences allowed: they output zeros and keep their initial state);
* ``return_states=True`` — every step's ``h_t`` (and ``c_t``), which fused kernels
  cannot give (pytorch/pytorch#31423);
* ``engine=`` — ``"auto"`` (default), or force ``"fused"`` / ``"bptt"`` / ``"loop"``;
* the cell variants of :mod:`rnnkit.cells.options` as keywords (``layer_norm``,
  ``peephole``, ``zoneout_h``, ``zoneout_c``, ``input_dropout``, ``recurrent_dropout``,
  ``weight_drop``, ``forget_bias``, ``recurrent_init``), which run on the BPTT engine.

Which engine a call runs on is the one rule of :mod:`rnnkit.engines.select`. The loop
engine runs the readable steps of :mod:`rnnkit.cells` with the layer's own parameters;
tests hold it equal to the fused kernels and to the BPTT engine.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence
from typing_extensions import Unpack

from rnnkit.cells.base import Device, DType, LSTMState, State, check_sizes, map_state
from rnnkit.cells.gru import gru_step
from rnnkit.cells.lstm import lstm_step
from rnnkit.cells.masks import VariantMasks, sample_masks
from rnnkit.cells.options import (
    LSTMVariantKwargs,
    VariantKwargs,
    VariantOptions,
    VariantWeights,
    init_variant_,
    variant_options,
    variant_parameter_shapes,
)
from rnnkit.cells.rnn import check_nonlinearity, rnn_step
from rnnkit.cells.variant_steps import variant_step
from rnnkit.engines.bptt import family_runner
from rnnkit.engines.loop import StepFn, output_is_state
from rnnkit.engines.runner import SequenceRunner
from rnnkit.engines.select import ENGINES
from rnnkit.layers.masked import MaskedStep
from rnnkit.layers.sequence import (
    InputInfo,
    SequenceBatch,
    check_state,
    prepare_input,
    prepare_state,
    restore_output,
)
from rnnkit.layers.stacked import StackedLayer

__all__ = ["ENGINES", "GRU", "LSTM", "RNN"]


def _check_config(
    name: str, input_size: int, hidden_size: int, num_layers: int, proj_size: int
) -> None:
    check_sizes(name, input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
    if not isinstance(proj_size, int) or proj_size < 0 or proj_size >= hidden_size:
        raise ValueError(
            f"{name}: expected 0 <= proj_size < hidden_size={hidden_size}, "
            f"got proj_size={proj_size!r}"
        )


def _all_full(info: InputInfo) -> bool:
    """Every sequence spans all steps: nothing to pack (lengths are on the CPU)."""
    return info.lengths is not None and int(info.lengths.min()) == info.num_steps


class _StandardLayer(StackedLayer, nn.RNNBase):
    """Shared forward for the drop-in layers (mixed into nn.RNN/LSTM/GRU subclasses)."""

    family: ClassVar[str]
    engines = ("auto", "fused", "bptt", "loop")
    fused_kernel = True
    variant: VariantOptions = VariantOptions()
    _variant_text = ""  # the forward-changing options, described (see _set_up)

    def _set_up(self, variant: Mapping[str, Any], engine: str) -> None:
        """After torch's constructor: the variant options and their parameters, the engine.

        Extra parameters follow torch's naming: ``{name}_l{k}{_reverse}``, for example
        ``ln_weight_hh_l0`` or ``weight_ci_l1_reverse``.
        """
        name = type(self).__name__
        options = variant_options(name, self.family, variant, bias=self.bias)
        if options.changes_forward and self.proj_size:
            raise ValueError(
                f"{name}: proj_size={self.proj_size} cannot be combined with the variant "
                f"options ({options.describe()}); the variants run without projection"
            )
        self.variant = options
        # Fixed from here on; the engine rule and the mask draw read it on every call.
        self._variant_text = options.describe() if options.changes_forward else ""
        factory = {"device": self.weight_hh_l0.device, "dtype": self.weight_hh_l0.dtype}
        shapes = variant_parameter_shapes(self.family, options, self.hidden_size)
        for k in range(self.num_layers):
            for d in range(self.num_directions):
                for base, shape in shapes.items():
                    param = nn.Parameter(torch.empty(shape, **factory))
                    self.register_parameter(base + _suffix(k, d), param)
        self._init_variant()
        self._set_engine(engine)
        self.engine_for()  # a forced engine that cannot run this configuration fails now

    def reset_parameters(self) -> None:
        super().reset_parameters()  # torch's U(−1/√H, 1/√H) for every parameter
        self._init_variant()

    def _init_variant(self) -> None:
        # nn.RNNBase.__init__ calls reset_parameters before the options exist.
        if "variant" not in self.__dict__:
            return
        for k in range(self.num_layers):
            for d in range(self.num_directions):
                init_variant_(self.variant_weights(k, d), self.variant, self.hidden_size)

    def variant_weights(self, layer: int, direction: int) -> VariantWeights:
        """One layer and direction's parameters (torch's and the variants') by base name."""
        suffix = _suffix(layer, direction)
        return VariantWeights(
            *(getattr(self, name + suffix, None) for name in VariantWeights._fields)
        )

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """Features of each step's output: ``D * (proj_size or hidden_size)``."""
        return self.num_directions * (self.proj_size or self.hidden_size)

    def _forward_variants(self) -> str:
        return self._variant_text

    def _bptt_refusal(self) -> str | None:
        if not self.proj_size:
            return None
        return (
            f"{type(self).__name__}: the BPTT engine does not implement projections "
            f"(proj_size={self.proj_size}); use engine='fused' or 'loop'"
        )

    def forward(  # type: ignore[override]
        self,
        input: Tensor | PackedSequence,
        hx: Any = None,
        *,
        lengths: Tensor | Sequence[int] | None = None,
        return_states: bool = False,
    ) -> tuple[Any, ...]:
        """Run the layer; see the class docstring for shapes.

        Arguments:
            input: ``(T, B, I)`` (``(B, T, I)`` with ``batch_first``), ``(T, I)``,
                or a ``PackedSequence``.
            hx: initial state as in ``torch.nn`` (``h_0``, or ``(h_0, c_0)`` for LSTM),
                ``(L*D, B, H_out)``; zeros when ``None``.
            lengths: ``(B,)`` valid lengths of a padded batch.
            return_states: also return every step's state, ``(L*D, T, B, H_out)``
                (``(L*D, B, T, H_out)`` with ``batch_first``), zeros at padded steps.

        Returns:
            ``(output, h_n)`` (LSTM: ``(output, LSTMState(h_n, c_n))``), plus the
            per-step states with ``return_states``.
        """
        info = self._inspect(input, lengths, dtype=self.weight_ih_l0.dtype)
        data = input.data if isinstance(input, PackedSequence) else input
        ragged = info.lengths is not None and not _all_full(info)
        engine = self.engine_for(return_states=return_states, ragged=ragged, device=data.device)
        state = None
        if hx is not None:
            state = self._as_state(hx)
            check_state(state, self._state_shapes(info), type(self).__name__, "hx")
        if engine == "fused" and (info.lengths is None or _all_full(info)):
            output, hidden = super().forward(input, hx)
            return output, self._from_torch(hidden)
        batch = prepare_input(input, info, batch_first=self.batch_first)
        if state is None:
            initial = self._zero_state(batch.batch_size, batch.x)
        else:
            initial = prepare_state(state, info.unbatched)
        if engine == "fused":
            assert info.lengths is not None
            return self._forward_fused_lengths(batch, info.lengths, initial)
        return self._run_stack(batch, initial, engine, return_states=return_states)

    # -- state layout -----------------------------------------------------------------

    def _state_sizes(self) -> tuple[int, ...]:
        """Features of each tensor of the state: ``H_out`` (LSTM: ``H_out`` and ``H``)."""
        return (self.proj_size or self.hidden_size,)

    def _state_shapes(self, info: InputInfo) -> list[tuple[int, ...]]:
        """Shapes of ``hx``'s tensors for this input (torch.nn's layout)."""
        lead = (self.num_layers * self.num_directions,) + (
            () if info.unbatched else (info.batch_size,)
        )
        return [(*lead, size) for size in self._state_sizes()]

    def _zero_state(self, batch_size: int, like: Tensor) -> State:
        size = (self.num_layers * self.num_directions, batch_size)
        zeros = tuple(like.new_zeros(*size, features) for features in self._state_sizes())
        return self._from_torch(zeros[0] if len(zeros) == 1 else zeros)

    def _as_state(self, hx: Any) -> State:
        """A user's ``hx`` as an rnnkit state (overridden by LSTM)."""
        if not isinstance(hx, Tensor):
            raise TypeError(
                f"{type(self).__name__}: expected hx to be a Tensor, got {type(hx).__name__}"
            )
        return hx

    def _to_torch(self, state: State) -> Any:
        return state

    # -- engines ----------------------------------------------------------------------

    def _forward_fused_lengths(
        self, batch: SequenceBatch, lengths: Tensor, initial: State
    ) -> tuple[Any, ...]:
        """The fused kernel on a padded batch with (CPU) lengths, packed for it.

        Packing cannot hold an empty sequence, so those run one step whose result is
        then discarded: zeros out, initial state kept (no gradient reaches the
        discarded step).
        """
        packed = pack_padded_sequence(batch.x, lengths.clamp(min=1), enforce_sorted=False)
        packed_out, hidden = super().forward(packed, self._to_torch(initial))
        output, _ = pad_packed_sequence(packed_out, total_length=batch.x.shape[0])  # (T, B, F)
        final = self._from_torch(hidden)
        if not bool((lengths > 0).all()):
            nonempty = (lengths > 0).to(output.device).view(1, -1, 1)
            output = torch.where(nonempty, output, 0.0)
            final = map_state(lambda f, s: torch.where(nonempty, f, s), final, initial)
        return restore_output(output, batch), final

    def _from_torch(self, hidden: Any) -> State:
        return hidden

    def sample_masks(
        self, batch_size: int, num_steps: int, *, like: Tensor
    ) -> list[VariantMasks] | None:
        """Draw every (layer, direction)'s masks for one call, layer-major (index ``k*D + d``).

        What ``forward`` does first, for any engine; ``None`` without variants that
        change the forward pass. In eval mode nothing random is drawn.
        """
        if not self._variant_text:
            return None
        size, masks = self.input_size, []
        for _ in range(self.num_layers):
            for _ in range(self.num_directions):
                masks.append(
                    sample_masks(
                        self.variant,
                        family=self.family,
                        batch_size=batch_size,
                        num_steps=num_steps,
                        input_size=size,
                        hidden_size=self.hidden_size,
                        training=self.training,
                        like=like,
                    )
                )
            size = self.num_directions * self.hidden_size
        return masks

    def _sample_masks(self, batch: SequenceBatch) -> list[VariantMasks] | None:
        return self.sample_masks(batch.batch_size, batch.x.shape[0], like=batch.x)

    def _bptt_runner(
        self, layer: int, direction: int, masks: VariantMasks | None
    ) -> SequenceRunner:
        weights, nonlinearity = self.variant_weights(layer, direction), self._nonlinearity()
        return family_runner(self.family, weights, self.variant, masks, nonlinearity=nonlinearity)

    def _masked_step(self, layer: int, direction: int) -> MaskedStep:
        return functools.partial(
            variant_step,
            self.family,
            weights=self.variant_weights(layer, direction),
            options=self.variant,
            nonlinearity=self._nonlinearity(),
        )

    def _nonlinearity(self) -> str:
        return getattr(self, "nonlinearity", "tanh")

    def _torch_weights(self, layer: int, direction: int) -> tuple[Tensor | None, ...]:
        """This (layer, direction)'s ``weight_ih, weight_hh, bias_ih, bias_hh``."""
        return tuple(self.variant_weights(layer, direction)[:4])

    def extra_repr(self) -> str:
        base = super().extra_repr()
        options = self.variant.describe()
        base = f"{base}, {options}" if options else base
        return base if self.engine == "auto" else f"{base}, engine={self.engine!r}"


def _suffix(layer: int, direction: int) -> str:
    """torch's parameter-name suffix: ``_l{k}`` and ``_reverse`` for the backward direction."""
    return f"_l{layer}" + ("_reverse" if direction else "")


class RNN(_StandardLayer, nn.RNN):
    r"""RNN (Elman) layer, a drop-in for :class:`torch.nn.RNN`.

    For each layer: :math:`h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})`
    (``relu`` with ``nonlinearity="relu"``); the output is ``h_t`` of the top layer.

    Arguments:
        As ``torch.nn.RNN``: ``input_size, hidden_size, num_layers=1,
        nonlinearity='tanh', bias=True, batch_first=False, dropout=0.0,
        bidirectional=False, device=None, dtype=None``; plus, keyword-only, ``engine``
        and the variants ``layer_norm``, ``zoneout_h``, ``input_dropout``,
        ``recurrent_dropout``, ``weight_drop``, ``recurrent_init``
        (:class:`~rnnkit.cells.VariantKwargs`, see :mod:`rnnkit.cells.options`; they
        run on the BPTT engine).

    Shape:
        input ``(T, B, I)``; output ``(T, B, D*H)``; ``h_n`` ``(L*D, B, H)``.

    Example::

        >>> rnn = RNN(10, 20, num_layers=2, batch_first=True)
        >>> out, h_n = rnn(torch.randn(3, 5, 10), lengths=torch.tensor([5, 2, 4]))
        >>> out.shape, h_n.shape
        (torch.Size([3, 5, 20]), torch.Size([2, 3, 20]))
    """

    family = "rnn"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: Device = None,
        dtype: DType = None,
        *,
        engine: str = "auto",
        **variant: Unpack[VariantKwargs],
    ) -> None:
        _check_config("RNN", input_size, hidden_size, num_layers, 0)
        check_nonlinearity("RNN", nonlinearity)
        nn.RNN.__init__(
            self,
            input_size,
            hidden_size,
            num_layers=num_layers,
            nonlinearity=nonlinearity,
            bias=bias,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
            device=device,
            dtype=dtype,
        )
        self._set_up(variant, engine)

    def _step(self, layer: int, direction: int) -> StepFn:
        w, nonlinearity = self._torch_weights(layer, direction), self.nonlinearity
        return output_is_state(lambda x, h: rnn_step(x, h, *w, nonlinearity=nonlinearity))


class GRU(_StandardLayer, nn.GRU):
    r"""GRU layer, a drop-in for :class:`torch.nn.GRU` (gate order ``r, z, n``).

    For each layer, :func:`rnnkit.cells.gru_step`:
    :math:`h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}`.

    Arguments:
        As ``torch.nn.GRU``: ``input_size, hidden_size, num_layers=1, bias=True,
        batch_first=False, dropout=0.0, bidirectional=False, device=None,
        dtype=None``; plus, keyword-only, ``engine`` and the variants ``layer_norm``,
        ``zoneout_h``, ``input_dropout``, ``recurrent_dropout``, ``weight_drop``,
        ``recurrent_init`` (:class:`~rnnkit.cells.VariantKwargs`, see
        :mod:`rnnkit.cells.options`).

    Shape:
        input ``(T, B, I)``; output ``(T, B, D*H)``; ``h_n`` ``(L*D, B, H)``.

    Example::

        >>> gru = GRU(28, 128, batch_first=True)
        >>> out, h_n = gru(torch.randn(64, 28, 28))
        >>> out.shape, h_n.shape
        (torch.Size([64, 28, 128]), torch.Size([1, 64, 128]))
    """

    family = "gru"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: Device = None,
        dtype: DType = None,
        *,
        engine: str = "auto",
        **variant: Unpack[VariantKwargs],
    ) -> None:
        _check_config("GRU", input_size, hidden_size, num_layers, 0)
        nn.GRU.__init__(
            self,
            input_size,
            hidden_size,
            num_layers=num_layers,
            bias=bias,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
            device=device,
            dtype=dtype,
        )
        self._set_up(variant, engine)

    def _step(self, layer: int, direction: int) -> StepFn:
        w = self._torch_weights(layer, direction)
        return output_is_state(lambda x, h: gru_step(x, h, *w))


class LSTM(_StandardLayer, nn.LSTM):
    r"""LSTM layer, a drop-in for :class:`torch.nn.LSTM` (gate order ``i, f, g, o``).

    For each layer, :func:`rnnkit.cells.lstm_step`:
    :math:`c_t = f_t \odot c_{t-1} + i_t \odot g_t`, :math:`h_t = o_t \odot \tanh(c_t)`,
    projected by ``weight_hr`` when ``proj_size > 0``. The state is returned as
    :class:`rnnkit.LSTMState` ``(h_n, c_n)``, a named tuple, so
    ``out, (h_n, c_n) = lstm(x)`` works as with torch.

    Arguments:
        As ``torch.nn.LSTM``: ``input_size, hidden_size, num_layers=1, bias=True,
        batch_first=False, dropout=0.0, bidirectional=False, proj_size=0,
        device=None, dtype=None``; plus, keyword-only, ``engine`` and the variants
        ``layer_norm``, ``peephole``, ``zoneout_h``, ``zoneout_c``, ``input_dropout``,
        ``recurrent_dropout``, ``weight_drop``, ``forget_bias``, ``recurrent_init``
        (:class:`~rnnkit.cells.LSTMVariantKwargs`, see :mod:`rnnkit.cells.options`).
        Variants that change the forward pass run on the BPTT engine and cannot be
        combined with ``proj_size``.

    Shape:
        input ``(T, B, I)``; output ``(T, B, D*H_out)``; ``h_n`` ``(L*D, B, H_out)``;
        ``c_n`` ``(L*D, B, H)``, where ``H_out = proj_size or hidden_size``.

    Example::

        >>> lstm = LSTM(10, 20, bidirectional=True)
        >>> out, (h_n, c_n), states = lstm(torch.randn(5, 3, 10), return_states=True)
        >>> out.shape, states.c.shape
        (torch.Size([5, 3, 40]), torch.Size([2, 5, 3, 20]))
    """

    family = "lstm"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: Device = None,
        dtype: DType = None,
        *,
        engine: str = "auto",
        **variant: Unpack[LSTMVariantKwargs],
    ) -> None:
        _check_config("LSTM", input_size, hidden_size, num_layers, proj_size)
        nn.LSTM.__init__(
            self,
            input_size,
            hidden_size,
            num_layers=num_layers,
            bias=bias,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
            proj_size=proj_size,
            device=device,
            dtype=dtype,
        )
        self._set_up(variant, engine)

    def _state_sizes(self) -> tuple[int, ...]:
        return (self.proj_size or self.hidden_size, self.hidden_size)

    def _as_state(self, hx: Any) -> LSTMState:
        if not (isinstance(hx, tuple) and len(hx) == 2 and all(isinstance(t, Tensor) for t in hx)):
            raise TypeError(
                f"LSTM: expected hx to be a pair of tensors (h_0, c_0), got {type(hx).__name__}"
                + (f" of length {len(hx)}" if isinstance(hx, tuple | list) else "")
            )
        return LSTMState(*hx)

    def _to_torch(self, state: LSTMState) -> tuple[Tensor, Tensor]:
        return tuple(state)  # type: ignore[return-value]

    def _from_torch(self, hidden: Any) -> LSTMState:
        return LSTMState(*hidden)

    def _step(self, layer: int, direction: int) -> StepFn:
        w = self._torch_weights(layer, direction)
        weight_hr = getattr(self, "weight_hr" + _suffix(layer, direction), None)

        def step(x: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
            new = lstm_step(x, state, *w, weight_hr)
            return new.h, new

        return step
