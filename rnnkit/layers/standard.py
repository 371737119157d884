"""Drop-in ``RNN``, ``LSTM`` and ``GRU`` layers: torch.nn's API and kernels, plus extras.

Each class *is* its ``torch.nn`` counterpart (a subclass): the same constructor,
parameter names (``weight_ih_l{k}{_reverse}`` …), ``state_dict``, call and return
values, and for standard calls the same fused kernels (oneDNN/ATen on CPU, cuDNN on
GPU), so they cost what ``torch.nn`` costs. On top of that they take:

* ``lengths=`` — valid lengths of a padded batch, without packing by hand
  (zero-length sequences allowed: they output zeros and keep their initial state);
* ``return_states=True`` — every step's ``h_t`` (and ``c_t``), which fused kernels
  cannot give (pytorch/pytorch#31423); the layer switches to the loop engine;
* ``engine=`` — ``"auto"`` (default), or force ``"fused"`` / ``"bptt"`` / ``"loop"``;
* the cell variants of :mod:`rnnkit.cells.variants` as keywords (``layer_norm``,
  ``peephole``, ``zoneout_h``, ``zoneout_c``, ``input_dropout``, ``recurrent_dropout``,
  ``weight_drop``, ``forget_bias``, ``recurrent_init``), which run on the BPTT engine.

The loop engine runs the readable steps of :mod:`rnnkit.cells` with the layer's own
parameters; tests hold it equal to the fused kernels and to the BPTT engine.

Engine choice (``engine="auto"``, see :meth:`_StandardLayer.engine_for`): the fused
kernel for a standard configuration; the loop engine for ``return_states`` on a standard
configuration (unchanged from before the BPTT engine, and what ``record_steps`` users
rely on); the BPTT engine whenever a variant changes the forward pass (layer norm,
peepholes, zoneout, dropouts), unless a :func:`rnnkit.engines.record_steps` block is
active, which only the loop engine can serve. Init-only options (``forget_bias``,
``recurrent_init``) keep the fused kernel. One more case takes the BPTT engine: training
on the CPU with ragged lengths (``lengths=`` or a ``PackedSequence``), where the packed
fused kernel's backward costs 2.6–4× the BPTT engine's (``docs/benchmarks.md``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnkit.cells.base import LSTMState, State, map_state
from rnnkit.cells.gru import gru_step
from rnnkit.cells.lstm import lstm_step
from rnnkit.cells.rnn import rnn_step
from rnnkit.cells.variants import (
    SequenceSteps,
    VariantMasks,
    VariantOptions,
    VariantWeights,
    init_variant_,
    masked_step_fn,
    sample_masks,
    variant_parameter_shapes,
)
from rnnkit.engines.bptt import family_runner, run_sequence
from rnnkit.engines.loop import StepFn, is_recording, run_stack, scan
from rnnkit.layers._sequence import (
    InputInfo,
    SequenceBatch,
    check_state,
    inspect_input,
    prepare_input,
    prepare_state,
    restore_final,
    restore_output,
    restore_states,
)
from rnnkit.layers.recurrent import Recurrent

ENGINES = ("auto", "fused", "bptt", "loop")


def _check_config(
    name: str, input_size: int, hidden_size: int, num_layers: int, proj_size: int
) -> None:
    for what, value in (
        ("input_size", input_size),
        ("hidden_size", hidden_size),
        ("num_layers", num_layers),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}: expected {what} to be an integer >= 1, got {value!r}")
    if not isinstance(proj_size, int) or proj_size < 0 or proj_size >= hidden_size:
        raise ValueError(
            f"{name}: expected 0 <= proj_size < hidden_size={hidden_size}, "
            f"got proj_size={proj_size!r}"
        )


def _all_full(info: InputInfo) -> bool:
    """Every sequence spans all steps: nothing to pack (lengths are on the CPU)."""
    return info.lengths is not None and int(info.lengths.min()) == info.num_steps


class _StandardLayer(nn.RNNBase):
    """Shared forward for the drop-in layers (mixed into nn.RNN/LSTM/GRU subclasses)."""

    engine: str
    family: ClassVar[str]
    variant: VariantOptions = VariantOptions()

    def _set_variant(self, options: VariantOptions) -> None:
        """Validate the variant options and add their parameters to every layer/direction.

        Extra parameters follow torch's naming: ``{name}_l{k}{_reverse}``, for example
        ``ln_weight_hh_l0`` or ``weight_ci_l1_reverse``.
        """
        name = type(self).__name__
        options.check(self.family, name, bias=self.bias)
        if options.changes_forward and self.proj_size:
            raise ValueError(
                f"{name}: proj_size={self.proj_size} cannot be combined with the variant "
                f"options ({options.describe()}); the variants run without projection"
            )
        self.variant = options
        factory = {"device": self.weight_hh_l0.device, "dtype": self.weight_hh_l0.dtype}
        shapes = variant_parameter_shapes(self.family, options, self.hidden_size)
        for k in range(self.num_layers):
            for d in range(self.num_directions):
                for base, shape in shapes.items():
                    param = nn.Parameter(torch.empty(shape, **factory))
                    self.register_parameter(base + _suffix(k, d), param)
        self._init_variant()

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
        return VariantWeights(*(getattr(self, n + suffix, None) for n in VariantWeights._fields))

    def _set_engine(self, engine: str) -> None:
        if engine not in ENGINES:
            raise ValueError(
                f"{type(self).__name__}: engine must be one of {ENGINES}, got {engine!r}"
            )
        self.engine = engine

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """Features of each step's output: ``D * (proj_size or hidden_size)``."""
        return self.num_directions * (self.proj_size or self.hidden_size)

    def engine_for(
        self, *, return_states: bool = False, ragged: bool = False, device: Any = None
    ) -> str:
        """The engine a call with these options runs on: ``"fused"``, ``"bptt"`` or ``"loop"``.

        ``"auto"``: a variant that changes the forward pass → ``"bptt"`` (``"loop"`` inside
        :func:`rnnkit.engines.record_steps`); otherwise ``"loop"`` with ``return_states``,
        ``"bptt"`` for a training call on the CPU whose sequences have different lengths
        (``ragged``: the packed fused kernel's backward is 2.6–4× slower there, see
        ``docs/benchmarks.md``), and ``"fused"`` for everything else. A forced engine
        that cannot run the call raises.

        Arguments:
            return_states: the call asks for every step's state.
            ragged: the batch's lengths differ from the number of steps somewhere.
            device: the input's device (``None``: the parameters' device).
        """
        name = type(self).__name__
        variant = self.variant.changes_forward
        if self.engine == "auto":
            if variant:
                return "loop" if is_recording() else "bptt"
            if return_states:
                return "loop"
            if ragged and self._cpu_training(device) and not is_recording():
                return "bptt"
            return "fused"
        if self.engine == "fused" and variant:
            raise ValueError(
                f"{name}: fused kernels cannot run the variant options "
                f"({self.variant.describe()}); use engine='auto', 'bptt' or 'loop'"
            )
        if self.engine == "fused" and return_states:
            raise ValueError(
                f"{name}: return_states=True needs the 'loop' engine (fused "
                "kernels keep only the last state); use engine='auto' or engine='loop'"
            )
        if self.engine == "bptt" and self.proj_size:
            raise ValueError(
                f"{name}: the BPTT engine does not implement projections (proj_size="
                f"{self.proj_size}); use engine='fused' or 'loop'"
            )
        return self.engine

    @property
    def active_engine(self) -> str:
        """The engine a plain call runs on."""
        return self.engine_for()

    def _cpu_training(self, device: Any) -> bool:
        """Gradients will flow through a call on the CPU (projections excepted)."""
        if self.proj_size or not torch.is_grad_enabled():
            return False
        where = torch.device(device) if device is not None else self.weight_ih_l0.device
        return where.type == "cpu" and any(p.requires_grad for p in self.parameters())

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
        name = type(self).__name__
        info = inspect_input(
            input,
            lengths,
            batch_first=self.batch_first,
            input_size=self.input_size,
            name=name,
            dtype=self.weight_ih_l0.dtype,
        )
        data = input.data if isinstance(input, PackedSequence) else input
        ragged = info.lengths is not None and not _all_full(info)
        engine = self.engine_for(return_states=return_states, ragged=ragged, device=data.device)
        state = None
        if hx is not None:
            state = self._as_state(hx)
            check_state(state, self._state_shapes(info), name, "hx")
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
        return self._forward_stack(batch, initial, return_states, engine)

    # -- state layout -----------------------------------------------------------------

    def _state_shapes(self, info: InputInfo) -> list[tuple[int, ...]]:
        """Shapes of ``hx``'s tensors for this input (torch.nn's layout)."""
        lead = (self.num_layers * self.num_directions,) + (
            () if info.unbatched else (info.batch_size,)
        )
        return [(*lead, self.proj_size or self.hidden_size)]

    def _zero_state(self, batch_size: int, like: Tensor) -> State:
        size = (self.num_layers * self.num_directions, batch_size)
        return like.new_zeros(*size, self.proj_size or self.hidden_size)

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

    def _forward_stack(
        self, batch: SequenceBatch, initial: State, return_states: bool, engine: str
    ) -> tuple[Any, ...]:
        """Run the layers on the loop or the BPTT engine (same stacking, lengths, dropout)."""
        count = self.num_layers * self.num_directions
        masks = self._sample_masks(batch)
        if engine == "bptt":
            steps: list[list[Any]] = [
                [self._runner(k, d, masks) for d in range(self.num_directions)]
                for k in range(self.num_layers)
            ]
        else:
            steps = [
                [self._loop_step(k, d, masks) for d in range(self.num_directions)]
                for k in range(self.num_layers)
            ]
        result = run_stack(
            steps,
            batch.x,
            [map_state(lambda s, i=i: s[i], initial) for i in range(count)],
            lengths=batch.lengths,
            dropout=self.dropout,
            training=self.training,
            return_states=return_states,
            scan_fn=run_sequence if engine == "bptt" else scan,
        )
        output = restore_output(result.output, batch)
        final = restore_final(result.final, batch)
        if return_states:
            return output, final, restore_states(result.states, batch)
        return output, final

    def sample_masks(
        self, batch_size: int, num_steps: int, *, like: Tensor
    ) -> list[VariantMasks] | None:
        """Draw every (layer, direction)'s masks for one call, layer-major (index ``k*D + d``).

        What ``forward`` does first, for any engine; ``None`` without variants that
        change the forward pass. In eval mode nothing random is drawn.
        """
        if not self.variant.changes_forward:
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

    def _runner(self, layer: int, direction: int, masks: list[VariantMasks] | None) -> Any:
        return family_runner(
            self.family,
            self.variant_weights(layer, direction),
            self.variant,
            None if masks is None else masks[layer * self.num_directions + direction],
            nonlinearity=getattr(self, "nonlinearity", "tanh"),
        )

    def _loop_step(self, layer: int, direction: int, masks: list[VariantMasks] | None) -> StepFn:
        if masks is None:
            return self._step(layer, direction)
        step = masked_step_fn(
            self.family,
            self.variant_weights(layer, direction),
            self.variant,
            nonlinearity=getattr(self, "nonlinearity", "tanh"),
        )
        return SequenceSteps(
            step, masks[layer * self.num_directions + direction], reverse=direction == 1
        )

    def _weights(self, layer: int, direction: int) -> dict[str, Tensor | None]:
        """This (layer, direction)'s parameters under torch.nn's names."""
        suffix = _suffix(layer, direction)
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
        return {n: getattr(self, n + suffix, None) for n in names}

    def _step(self, layer: int, direction: int) -> StepFn:
        raise NotImplementedError

    def extra_repr(self) -> str:
        base = super().extra_repr()
        options = self.variant.describe()
        base = f"{base}, {options}" if options else base
        return base if self.engine == "auto" else f"{base}, engine={self.engine!r}"


def _suffix(layer: int, direction: int) -> str:
    """torch's parameter-name suffix: ``_l{k}`` and ``_reverse`` for the backward direction."""
    return f"_l{layer}" + ("_reverse" if direction else "")


def _lstm_only(name: str, given: dict[str, Any]) -> dict[str, Any]:
    """Pass LSTM-only options through to :meth:`VariantOptions.check`, which explains."""
    unknown = sorted(set(given) - {"peephole", "zoneout_c", "forget_bias"})
    if unknown:
        raise TypeError(f"{name}: unexpected keyword argument(s) {unknown}")
    return given


class RNN(_StandardLayer, nn.RNN):
    r"""Elman RNN layer, a drop-in for :class:`torch.nn.RNN`.

    For each layer: :math:`h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})`
    (``relu`` with ``nonlinearity="relu"``); the output is ``h_t`` of the top layer.

    Arguments:
        As ``torch.nn.RNN``: ``input_size, hidden_size, num_layers=1,
        nonlinearity='tanh', bias=True, batch_first=False, dropout=0.0,
        bidirectional=False, device=None, dtype=None``; plus, keyword-only, ``engine``
        and the variants ``layer_norm``, ``zoneout_h``, ``input_dropout``,
        ``recurrent_dropout``, ``weight_drop``, ``recurrent_init`` (see
        :mod:`rnnkit.cells.variants`; they run on the BPTT engine).

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
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        engine: str = "auto",
        layer_norm: bool = False,
        zoneout_h: float = 0.0,
        input_dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        weight_drop: float = 0.0,
        recurrent_init: str = "uniform",
        **lstm_only: Any,
    ) -> None:
        _check_config("RNN", input_size, hidden_size, num_layers, 0)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: expected nonlinearity 'tanh' or 'relu', got {nonlinearity!r}")
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
        self._set_variant(
            VariantOptions(
                layer_norm=layer_norm,
                zoneout_h=zoneout_h,
                input_dropout=input_dropout,
                recurrent_dropout=recurrent_dropout,
                weight_drop=weight_drop,
                recurrent_init=recurrent_init,
                **_lstm_only("RNN", lstm_only),
            )
        )
        self._set_engine(engine)
        self.engine_for()  # a forced engine that cannot run this configuration fails now

    def _step(self, layer: int, direction: int) -> StepFn:
        w = self._weights(layer, direction)

        def step(x: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
            h = rnn_step(
                x,
                h,
                w["weight_ih"],
                w["weight_hh"],
                w["bias_ih"],
                w["bias_hh"],
                nonlinearity=self.nonlinearity,
            )
            return h, h

        return step


class GRU(_StandardLayer, nn.GRU):
    r"""GRU layer, a drop-in for :class:`torch.nn.GRU` (gate order ``r, z, n``).

    For each layer, :func:`rnnkit.cells.gru_step`:
    :math:`h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}`.

    Arguments:
        As ``torch.nn.GRU``: ``input_size, hidden_size, num_layers=1, bias=True,
        batch_first=False, dropout=0.0, bidirectional=False, device=None,
        dtype=None``; plus, keyword-only, ``engine`` and the variants ``layer_norm``,
        ``zoneout_h``, ``input_dropout``, ``recurrent_dropout``, ``weight_drop``,
        ``recurrent_init`` (see :mod:`rnnkit.cells.variants`).

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
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        engine: str = "auto",
        layer_norm: bool = False,
        zoneout_h: float = 0.0,
        input_dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        weight_drop: float = 0.0,
        recurrent_init: str = "uniform",
        **lstm_only: Any,
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
        self._set_variant(
            VariantOptions(
                layer_norm=layer_norm,
                zoneout_h=zoneout_h,
                input_dropout=input_dropout,
                recurrent_dropout=recurrent_dropout,
                weight_drop=weight_drop,
                recurrent_init=recurrent_init,
                **_lstm_only("GRU", lstm_only),
            )
        )
        self._set_engine(engine)
        self.engine_for()  # a forced engine that cannot run this configuration fails now

    def _step(self, layer: int, direction: int) -> StepFn:
        w = self._weights(layer, direction)

        def step(x: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
            h = gru_step(x, h, w["weight_ih"], w["weight_hh"], w["bias_ih"], w["bias_hh"])
            return h, h

        return step


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
        ``recurrent_dropout``, ``weight_drop``, ``forget_bias``, ``recurrent_init`` (see
        :mod:`rnnkit.cells.variants`). Variants that change the forward pass run on the
        BPTT engine and cannot be combined with ``proj_size``.

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
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        engine: str = "auto",
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
        self._set_variant(
            VariantOptions(
                layer_norm=layer_norm,
                zoneout_h=zoneout_h,
                input_dropout=input_dropout,
                recurrent_dropout=recurrent_dropout,
                weight_drop=weight_drop,
                recurrent_init=recurrent_init,
                peephole=peephole,
                zoneout_c=zoneout_c,
                forget_bias=forget_bias,
            )
        )
        self._set_engine(engine)
        self.engine_for()  # a forced engine that cannot run this configuration fails now

    def _zero_state(self, batch_size: int, like: Tensor) -> LSTMState:
        size = (self.num_layers * self.num_directions, batch_size)
        h = like.new_zeros(*size, self.proj_size or self.hidden_size)
        return LSTMState(h, like.new_zeros(*size, self.hidden_size))

    def _state_shapes(self, info: InputInfo) -> list[tuple[int, ...]]:
        lead = (self.num_layers * self.num_directions,) + (
            () if info.unbatched else (info.batch_size,)
        )
        return [(*lead, self.proj_size or self.hidden_size), (*lead, self.hidden_size)]

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
        w = self._weights(layer, direction)

        def step(x: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
            new = lstm_step(
                x, state, w["weight_ih"], w["weight_hh"], w["bias_ih"], w["bias_hh"], w["weight_hr"]
            )
            return new.h, new

        return step


@contextmanager
def use_engine(module: nn.Module, engine: str) -> Iterator[list[nn.Module]]:
    """Run every rnnkit layer inside ``module`` on ``engine`` for the duration of a block.

    Used to reach the reference path (``"loop"``) of a model whose layers normally
    run fused or on the BPTT engine, for example to record per-step gradients;
    parameters are shared, so results agree with the usual engine (that is what the
    parity tests check). :class:`rnnkit.Recurrent` layers are switched too, except to
    ``"fused"``, which they do not have (they keep their engine then).

    Arguments:
        module: a model, or a single layer.
        engine: one of :data:`ENGINES`.

    Yields:
        The layers whose engine was switched.

    Example::

        with use_engine(model, "loop"):
            loss = criterion(model(x), y)
    """
    if engine not in ENGINES:
        raise ValueError(f"use_engine: engine must be one of {ENGINES}, got {engine!r}")
    kinds = (_StandardLayer,) if engine == "fused" else (_StandardLayer, Recurrent)
    layers = [m for m in module.modules() if isinstance(m, kinds)]
    previous = [layer.engine for layer in layers]
    try:
        for layer in layers:
            layer._set_engine(engine)
        yield layers
    finally:
        for layer, old in zip(layers, previous, strict=True):
            layer.engine = old
