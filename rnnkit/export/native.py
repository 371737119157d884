"""The plain recurrences as three custom ops, which the ONNX exporter maps to ONNX's own.

``rnnkit_export::rnn``, ``::gru`` and ``::lstm`` each run one layer and direction over a
padded, time-major batch with per-sequence lengths, in rnnkit's masked semantics (zeros
past a sequence's end, the final state at its last valid step, the reverse direction over
the reversed valid part). In PyTorch they run rnnkit's reference steps on the loop engine;
their real use is their ONNX translation (:mod:`rnnkit.export.onnx`): ONNX's
``RNN``/``GRU``/``LSTM`` operators with ``sequence_lens`` define exactly these semantics,
so ONNX Runtime runs each as one fused kernel. The ops take their weights in ONNX's
layout (:class:`OnnxWeights`, gates reordered once when the export form is built), so
the ONNX file holds them as initializers that feed the operators directly (which ONNX
Runtime's int8 quantiser needs).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch
from torch import Tensor

from rnnkit.cells.base import LSTMState, State
from rnnkit.cells.masks import VariantMasks
from rnnkit.cells.options import VariantOptions, VariantWeights
from rnnkit.cells.variant_steps import variant_step
from rnnkit.engines.loop import scan
from rnnkit.engines.runner import ScanResult, SequenceRunner
from rnnkit.export.recurrence import NativeCell
from rnnkit.layers.stacked import step_mask

ORDERS = {"rnn": (0,), "gru": (1, 0, 2), "lstm": (0, 3, 1, 2)}
"""ONNX's gate blocks as positions of torch's: ``z, r, h`` from ``r, z, n``; ``i, o, f, c``
from ``i, f, g, o``."""


class OnnxWeights(NamedTuple):
    """One (layer, direction)'s weights in the layout of ONNX's ``RNN``/``GRU``/``LSTM``.

    Attributes:
        w: ``W (1, G·H, I)``; r: ``R (1, G·H, H)``, gate blocks in ONNX's order.
        b: ``B (1, 2·G·H)``: ``[b_ih; b_hh]`` reordered, or ``None`` without biases.
        p: ``P (1, 3·H)``: the peepholes ``[p_i; p_o; p_f]``, or ``None``.
    """

    w: Tensor
    r: Tensor
    b: Tensor | None = None
    p: Tensor | None = None


def _reorder(t: Tensor, order: tuple[int, ...], inverse: bool = False) -> Tensor:
    blocks = t.chunk(len(order), dim=0)
    if inverse:
        order = tuple(order.index(i) for i in range(len(order)))
    return torch.cat([blocks[i] for i in order], dim=0)


@torch.no_grad()
def onnx_weights(cell: NativeCell) -> OnnxWeights:
    """A :class:`NativeCell`'s weights in ONNX's layout (copies)."""
    w, order = cell.weights, ORDERS[cell.family]
    b = None
    if w.bias_ih is not None:
        b = torch.cat([_reorder(w.bias_ih, order), _reorder(w.bias_hh, order)]).unsqueeze(0)
    p = None
    if w.weight_ci is not None:
        p = torch.cat([w.weight_ci, w.weight_co, w.weight_cf]).unsqueeze(0)
    return OnnxWeights(
        _reorder(w.weight_ih, order).unsqueeze(0), _reorder(w.weight_hh, order).unsqueeze(0), b, p
    )


def torch_weights(family: str, onnx: OnnxWeights) -> VariantWeights:
    """The inverse of :func:`onnx_weights`: torch's layout."""
    order = ORDERS[family]
    bias_ih = bias_hh = ci = cf = co = None
    if onnx.b is not None:
        bias_ih, bias_hh = (_reorder(b, order, inverse=True) for b in onnx.b[0].chunk(2))
    if onnx.p is not None:
        ci, co, cf = onnx.p[0].chunk(3)
    return VariantWeights(
        _reorder(onnx.w[0], order, inverse=True),
        _reorder(onnx.r[0], order, inverse=True),
        bias_ih,
        bias_hh,
        weight_ci=ci,
        weight_cf=cf,
        weight_co=co,
    )


def _reference(
    family: str,
    x: Tensor,
    state: State,
    lengths: Tensor | None,
    onnx: OnnxWeights,
    reverse: bool,
    nonlinearity: str = "tanh",
) -> ScanResult:
    """The op's meaning: rnnkit's reference step of ``family`` on the loop engine."""
    weights = torch_weights(family, onnx)
    options = VariantOptions(peephole=weights.weight_ci is not None)
    step = functools.partial(
        variant_step,
        family,
        masks=VariantMasks(),
        weights=weights,
        options=options,
        nonlinearity=nonlinearity,
    )
    valid = step_mask(lengths, x.shape[0])
    return scan(lambda x_t, s: step(x_t, s), x, state, valid=valid, reverse=reverse)


@torch.library.custom_op("rnnkit_export::rnn", mutates_args=())
def rnn_op(
    x: Tensor,
    h0: Tensor,
    lengths: Tensor | None,
    w: Tensor,
    r: Tensor,
    b: Tensor | None,
    reverse: bool,
    nonlinearity: str,
) -> tuple[Tensor, Tensor]:
    """One RNN layer and direction: ``x (T, B, I)``, ``h0 (B, H)`` → ``(y (T, B, H), h_n)``;
    weights as :class:`OnnxWeights`, ``lengths (B,)`` or ``None`` (all ``T``)."""
    result = _reference("rnn", x, h0, lengths, OnnxWeights(w, r, b), reverse, nonlinearity)
    return result.outputs, result.final.clone()


@torch.library.custom_op("rnnkit_export::gru", mutates_args=())
def gru_op(
    x: Tensor,
    h0: Tensor,
    lengths: Tensor | None,
    w: Tensor,
    r: Tensor,
    b: Tensor | None,
    reverse: bool,
) -> tuple[Tensor, Tensor]:
    """One GRU layer and direction, as :func:`rnn_op`."""
    result = _reference("gru", x, h0, lengths, OnnxWeights(w, r, b), reverse)
    return result.outputs, result.final.clone()


@torch.library.custom_op("rnnkit_export::lstm", mutates_args=())
def lstm_op(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    lengths: Tensor | None,
    w: Tensor,
    r: Tensor,
    b: Tensor | None,
    p: Tensor | None,
    reverse: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """One LSTM layer and direction (peepholes ``p`` if given) → ``(y, h_n, c_n)``."""
    result = _reference("lstm", x, LSTMState(h0, c0), lengths, OnnxWeights(w, r, b, p), reverse)
    return result.outputs, result.final.h.clone(), result.final.c.clone()


@rnn_op.register_fake
def _(x, h0, lengths, w, r, b, reverse, nonlinearity):  # type: ignore[no-untyped-def]
    return x.new_empty(x.shape[0], x.shape[1], h0.shape[-1]), torch.empty_like(h0)


@gru_op.register_fake
def _(x, h0, lengths, w, r, b, reverse):  # type: ignore[no-untyped-def]
    return x.new_empty(x.shape[0], x.shape[1], h0.shape[-1]), torch.empty_like(h0)


@lstm_op.register_fake
def _(x, h0, c0, lengths, w, r, b, p, reverse):  # type: ignore[no-untyped-def]
    y = x.new_empty(x.shape[0], x.shape[1], h0.shape[-1])
    return y, torch.empty_like(h0), torch.empty_like(c0)


def native_runner(family: str, weights: OnnxWeights, nonlinearity: str = "tanh") -> SequenceRunner:
    """A runner (see :mod:`rnnkit.engines.runner`) that calls the family's custom op."""
    w, r, b, p = weights

    def run(
        x: Tensor, state: State, *, valid: Tensor | None, reverse: bool, return_states: bool
    ) -> ScanResult:
        lengths = None if valid is None else valid.sum(0)  # (B,)
        if family == "lstm":
            y, h, c = lstm_op(x, state.h, state.c, lengths, w, r, b, p, reverse)
            return ScanResult(y, LSTMState(h, c), None)
        if family == "gru":
            y, h = gru_op(x, state, lengths, w, r, b, reverse)
        else:
            y, h = rnn_op(x, state, lengths, w, r, b, reverse, nonlinearity)
        return ScanResult(y, h, None)

    return run


NATIVE_OPS = {
    "rnn": torch.ops.rnnkit_export.rnn.default,
    "gru": torch.ops.rnnkit_export.gru.default,
    "lstm": torch.ops.rnnkit_export.lstm.default,
}
"""The custom ops by family (the keys of the ONNX exporter's translation table)."""
