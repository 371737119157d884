r"""``MinGRU`` and ``MinLSTM`` layers: stacked, bidirectional, ragged, on the scan engine.

The cells of :mod:`rnnkit.cells.mingru` as layers with torch.nn's call and layouts
(``input``, ``hx``, ``batch_first``, ``PackedSequence``, unbatched input, ``(L*D, B, H)``
states) and rnnkit's extras (``lengths=``, ``return_states=True``, ``engine=``). A call
runs on the scan engine (:mod:`rnnkit.engines.linear`): per layer and direction, one GEMM
for every step's gates, then the linear recurrence :math:`h_t = a_t \odot h_{t-1} + b_t`
in one pass; ``engine="loop"`` runs the readable steps instead (the reference, and what
:func:`rnnkit.engines.record_steps` records).

Parameters follow torch's naming, per layer ``k`` and direction: ``weight_ih_l{k}``
``(G·H, I_k)`` and ``bias_ih_l{k}`` ``(G·H,)`` (``_reverse`` for the backward
direction), gates stacked as in the cells (minGRU ``z, h̃``; minLSTM ``i, f, h̃``),
``I_k = D·H`` above the first layer; initialised U(−1/√H, 1/√H) as torch's layers are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from rnnkit.cells.base import Device, DType, check_sizes
from rnnkit.cells.mingru import mingru_step, minlstm_step
from rnnkit.engines.linear import CoefficientsFn, MinimalGates
from rnnkit.engines.loop import StepFn, output_is_state
from rnnkit.layers.sequence import check_state, prepare_input, prepare_state
from rnnkit.layers.stacked import StackedLayer

MINIMAL_ENGINES = ("auto", "scan", "loop")
"""The engines of the minimal layers (no fused kernels; the scan engine is their fast path)."""


class _MinimalLayer(StackedLayer, nn.Module):
    """What ``MinGRU`` and ``MinLSTM`` share; a subclass names its gates and functions."""

    engines = MINIMAL_ENGINES
    gates: ClassVar[int]
    family: ClassVar[str]  # the scan engine's name for the cell (engines.linear.FAMILIES)
    step_fn: ClassVar[Callable[..., Tensor]]

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
    ) -> None:
        super().__init__()
        name = type(self).__name__
        check_sizes(name, input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1], got {dropout!r}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1
        factory = {"device": device, "dtype": dtype}
        rows = self.gates * hidden_size
        for k in range(num_layers):
            size = input_size if k == 0 else self.num_directions * hidden_size
            for d in range(self.num_directions):
                suffix = _suffix(k, d)
                weight = nn.Parameter(torch.empty(rows, size, **factory))
                self.register_parameter("weight_ih" + suffix, weight)
                if bias:
                    self.register_parameter(
                        "bias_ih" + suffix, nn.Parameter(torch.empty(rows, **factory))
                    )
        self.reset_parameters()
        self._set_engine(engine)

    def reset_parameters(self) -> None:
        """torch's RNN initialisation: every parameter ~ U(−1/√H, 1/√H)."""
        bound = 1.0 / self.hidden_size**0.5
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    @property
    def output_size(self) -> int:
        """Features of each step's output: ``D * hidden_size``."""
        return self.num_directions * self.hidden_size

    def weights(self, layer: int, direction: int) -> tuple[Tensor, Tensor | None]:
        """One layer and direction's ``weight_ih`` and ``bias_ih`` (``None`` without bias)."""
        suffix = _suffix(layer, direction)
        return getattr(self, "weight_ih" + suffix), getattr(self, "bias_ih" + suffix, None)

    def forward(
        self,
        input: Tensor | PackedSequence,
        hx: Tensor | None = None,
        *,
        lengths: Tensor | Sequence[int] | None = None,
        return_states: bool = False,
    ) -> tuple[Any, ...]:
        """Run the layer; see the class docstring for shapes.

        Arguments:
            input: ``(T, B, I)`` (``(B, T, I)`` with ``batch_first``), ``(T, I)``, or a
                ``PackedSequence``.
            hx: initial state ``(L*D, B, H)`` (``(L*D, H)`` unbatched); zeros when ``None``.
            lengths: ``(B,)`` valid lengths of a padded batch.
            return_states: also return every step's state, ``(L*D, T, B, H)``
                (``(L*D, B, T, H)`` with ``batch_first``), zeros at padded steps.

        Returns:
            ``(output, h_n)``, plus the per-step states with ``return_states``.
        """
        info = self._inspect(input, lengths, dtype=self.weight_ih_l0.dtype)
        engine = self.engine_for(return_states=return_states)
        batch = prepare_input(input, info, batch_first=self.batch_first)
        rows = self.num_layers * self.num_directions
        if hx is None:
            initial = batch.x.new_zeros(rows, batch.batch_size, self.hidden_size)
        else:
            name = type(self).__name__
            if not isinstance(hx, Tensor):
                raise TypeError(f"{name}: expected hx to be a Tensor, got {type(hx).__name__}")
            lead = (rows,) if info.unbatched else (rows, info.batch_size)
            check_state(hx, [(*lead, self.hidden_size)], name, "hx")
            initial = prepare_state(hx, info.unbatched)
        return self._run_stack(batch, initial, engine, return_states=return_states)

    # -- the engines ------------------------------------------------------------------

    def _linear(self) -> bool:
        return True

    def _bptt_refusal(self) -> str:
        return (
            f"{type(self).__name__}: the BPTT engine does not run minimal cells (their fast "
            "path is the scan engine); use engine='auto', 'scan' or 'loop'"
        )

    def _coefficients(self, layer: int, direction: int) -> CoefficientsFn:
        return MinimalGates(self.family, *self.weights(layer, direction))

    def _step(self, layer: int, direction: int) -> StepFn:
        weight_ih, bias_ih = self.weights(layer, direction)
        step = type(self).step_fn
        return output_is_state(lambda x, h: step(x, h, weight_ih, bias_ih))

    def extra_repr(self) -> str:
        options = [f"{self.input_size}, {self.hidden_size}"]
        if self.num_layers != 1:
            options.append(f"num_layers={self.num_layers}")
        if not self.bias:
            options.append("bias=False")
        if self.batch_first:
            options.append("batch_first=True")
        if self.dropout:
            options.append(f"dropout={self.dropout}")
        if self.bidirectional:
            options.append("bidirectional=True")
        if self.engine != "auto":
            options.append(f"engine={self.engine!r}")
        return ", ".join(options)


def _suffix(layer: int, direction: int) -> str:
    """torch's parameter-name suffix: ``_l{k}`` and ``_reverse`` for the backward direction."""
    return f"_l{layer}" + ("_reverse" if direction else "")


class MinGRU(_MinimalLayer):
    r"""minGRU layer (Feng et al. 2024): a GRU without the state in its gates, in parallel.

    For each layer, :func:`rnnkit.cells.mingru_step`:
    :math:`z_t = \sigma(W_{iz} x_t + b_{iz})`, :math:`\tilde h_t = W_{ih} x_t + b_{ih}`,
    :math:`h_t = (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t`; the output is ``h_t``
    of the top layer. See ``docs/mingru.md`` for when to choose it.

    Arguments:
        As ``torch.nn.GRU``: ``input_size, hidden_size, num_layers=1, bias=True,
        batch_first=False, dropout=0.0, bidirectional=False, device=None,
        dtype=None``; plus, keyword-only, ``engine``: ``"auto"`` (the scan engine, or
        the loop engine inside :func:`~rnnkit.engines.record_steps`), ``"scan"`` or
        ``"loop"``.

    Shape:
        input ``(T, B, I)``; output ``(T, B, D*H)``; ``h_n`` ``(L*D, B, H)``;
        ``weight_ih_l{k}`` ``(2H, I_k)``, gate order ``z, h̃``.

    Example::

        >>> gru = MinGRU(8, 16, num_layers=2, bidirectional=True, batch_first=True)
        >>> out, h_n = gru(torch.randn(3, 50, 8), lengths=torch.tensor([50, 20, 0]))
        >>> out.shape, h_n.shape
        (torch.Size([3, 50, 32]), torch.Size([4, 3, 16]))
    """

    gates = 2
    family = "mingru"
    step_fn = staticmethod(mingru_step)


class MinLSTM(_MinimalLayer):
    r"""minLSTM layer (Feng et al. 2024): an LSTM without the state in its gates, in parallel.

    For each layer, :func:`rnnkit.cells.minlstm_step`: with
    :math:`i_t = \sigma(W_{ii} x_t + b_{ii})`, :math:`f_t = \sigma(W_{if} x_t + b_{if})`,
    :math:`\tilde h_t = W_{ih} x_t + b_{ih}`,
    :math:`h_t = \frac{f_t}{f_t + i_t} \odot h_{t-1} + \frac{i_t}{f_t + i_t} \odot \tilde h_t`.
    One state tensor per layer and direction (no cell state): ``h_n`` is a tensor, not
    an ``LSTMState``.

    Arguments:
        As :class:`MinGRU`.

    Shape:
        input ``(T, B, I)``; output ``(T, B, D*H)``; ``h_n`` ``(L*D, B, H)``;
        ``weight_ih_l{k}`` ``(3H, I_k)``, gate order ``i, f, h̃``.

    Example::

        >>> lstm = MinLSTM(8, 16, batch_first=True)
        >>> out, h_n, states = lstm(torch.randn(3, 50, 8), return_states=True)
        >>> out.shape, h_n.shape, states.shape
        (torch.Size([3, 50, 16]), torch.Size([1, 3, 16]), torch.Size([1, 3, 50, 16]))
    """

    gates = 3
    family = "minlstm"
    step_fn = staticmethod(minlstm_step)
