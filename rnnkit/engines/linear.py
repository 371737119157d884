r"""The scan engine: cells linear in their state, over a whole sequence at once.

For a cell whose update is :math:`h_t = a_t \odot h_{t-1} + b_t` with :math:`a_t, b_t`
functions of :math:`x_t` alone (a :class:`~rnnkit.cells.base.LinearCell`: minGRU, minLSTM),
one layer and direction runs in three parts:

1. *The coefficients of every step at once*, with autograd: one GEMM over all ``T·B``
   rows and a few element-wise ops (the cell's ``coefficients``). For the built-in
   cells (:class:`MinimalGates`) on the CPU, only the GEMM: the native kernel computes
   the gates inside the scan (step 3) and their gradient inside its backward, one memory
   pass each way instead of a dozen element-wise ones.
2. *Padding folded in*: :math:`a_t = 1, b_t = 0` at a padded step, which keeps the state.
   The final state is then the last valid step's, and the reverse direction, visiting
   ``T-1`` down to ``0``, starts each sequence at its last valid step from the initial
   state, exactly as the loop engine does; no padded value ever reaches a real step.
3. *The linear recurrence* (:func:`linear_scan`, a ``torch.autograd.Function``), whose
   backward is the same recurrence run the other way (:math:`h_{-1}` is the initial state):

   .. math::
       g_t = \delta h_t + a_{t+1} \odot g_{t+1}, \quad
       \delta a_t = g_t \odot h_{t-1}, \quad \delta b_t = g_t, \quad
       \delta h_{-1} = a_0 \odot g_0

Why it is parallel: a step is the affine map :math:`h \mapsto a h + b`, and composing two,
:math:`(a_2, b_2) \circ (a_1, b_1) = (a_2 a_1,\ a_2 b_1 + b_2)`, is again one, and
associative; so any grouping of the steps gives the same states (a prefix scan), and
nothing but the ``B·H`` independent multiply-adds is left per step.

The recurrence's forms (``method=``); ``"auto"``, the default, takes ``"native"`` where it
applies and ``"chunked"`` elsewhere, by measurement (``docs/mingru.md``; the recurrence
alone at ``(T, B, H) = (1024, 32, 256)``, fp32, 2 threads of this project's shared CPU,
forward / forward + backward):

* ``"native"`` — a C++ loop (``native/scan.cpp``), on the CPU in fp32/fp64 once built:
  sequential over time but vectorised and threaded over the ``B·H`` columns, one memory
  pass forward and one backward: 25 / 150 ms (a single element-wise ``a * b`` over the
  same tensors takes 30 ms). The built-in cells' fused kernel (:class:`MinimalScan`)
  also computes their gates in that pass.
* ``"chunked"`` — pure torch, for other devices and where no compiler is: the steps in
  :math:`C = \lceil\sqrt T\,\rceil` chunks, every chunk's local scan at once (``C`` steps
  on ``T/C``-fold wider tensors), the ``T/C`` chunk boundaries in order, then one
  correction :math:`h_t = h^{loc}_t + (\prod_{s \le t} a_s) \odot h_{entry}`, ``2√T`` ops
  in all instead of ``T``: 230 / 1070 ms.
* ``"log"`` — the paper's log-space scan (Heinsen 2023): :math:`h_t = A_t (h_{-1} +
  \sum_{s \le t} b_s / A_s)` with :math:`A_t = \prod_{s \le t} a_s`, as ``cumsum`` and
  ``logcumsumexp`` of logarithms (a sign split for negative values): 1470 / 3070 ms,
  ``logcumsumexp`` being slow on the CPU; kept for comparison, and for devices where it
  is one fast kernel (no GPU was at hand to measure: ``"auto"`` takes the exact chunked
  form there).

Numerical care. The native loop and the chunk-local steps never form a long product:
each step is one multiply-add, and for the built-in cells :math:`a_t \in [0, 1]` and
:math:`b_t = (1 - a_t)\, \tilde h_t`, so every state is a convex combination of the
previous one and the candidate, :math:`|h_t| \le \max(|h_{-1}|, \max_s |\tilde h_s|)`: no
overflow or NaN at any ``T``, and saturated gates (:math:`a_t` exactly 0 or 1) simply
reset or keep the state. The chunked form's products :math:`\prod a_s` only shrink
(they may underflow to 0, which is their value to within 1e-38) and are never divided
by. The log form's cumulative :math:`\log A_t` falls without bound (:math:`a_t = 0` is
clamped to the smallest normal number), and in fp32 its two large logarithms cancel:
its relative error grows like :math:`\varepsilon \sum |\log a_s|`, which is why it is
not the default.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.cells.base import LinearCoefficients
from rnnkit.cells.mingru import (
    MinGRUCell,
    MinLSTMCell,
    mingru_coefficients,
    minlstm_coefficients,
)
from rnnkit.engines.bptt import native
from rnnkit.engines.bptt.common import state_result
from rnnkit.engines.runner import ScanResult, SequenceRunner

METHODS = ("auto", "native", "chunked", "log")
"""The forms of :func:`linear_scan` (see the module docstring)."""

CoefficientsFn = Callable[[Tensor], LinearCoefficients]
"""``x (T, B, I) -> (a, b)``, each ``(T, B, H)``: a linear cell's ``coefficients``."""

Form = Callable[[Tensor, Tensor, Tensor, bool], Tensor]
"""``(a, b, h0, reverse) -> hs``: one form of the recurrence, without autograd."""


def scan_method(like: Tensor) -> str:
    """The form ``method="auto"`` runs for tensors like ``like``: ``"native"`` or ``"chunked"``."""
    return "native" if native.usable(like) is not None else "chunked"


def linear_scan(
    a: Tensor, b: Tensor, h0: Tensor, *, reverse: bool = False, method: str = "auto"
) -> Tensor:
    r""":math:`h_t = a_t \odot h_{t-1} + b_t` for every step, differentiable in ``a, b, h0``.

    Arguments:
        a: weights of the previous state, ``(T, ...)``.
        b: what each step adds, ``(T, ...)`` (the shape of ``a``).
        h0: the state before the first visited step, ``(...)``.
        reverse: visit the steps from ``T-1`` down to ``0`` (then ``h_{t+1}`` precedes ``h_t``).
        method: one of :data:`METHODS` (see the module docstring).

    Returns:
        ``hs``: the state after every step, ``(T, ...)``, time-indexed.

    Example::

        >>> a, b = torch.full((4, 1), 0.5), torch.ones(4, 1)
        >>> linear_scan(a, b, torch.zeros(1)).squeeze(-1)
        tensor([1.0000, 1.5000, 1.7500, 1.8750])
    """
    if method not in METHODS:
        raise ValueError(f"linear_scan: method must be one of {METHODS}, got {method!r}")
    if a.shape != b.shape or a.shape[1:] != h0.shape:
        raise ValueError(
            f"linear_scan: expected a and b of one shape (T, ...) and h0 of shape (...), "
            f"got a {tuple(a.shape)}, b {tuple(b.shape)}, h0 {tuple(h0.shape)}"
        )
    return LinearScan.apply(a, b, h0, reverse, method)


class LinearScan(torch.autograd.Function):
    """The linear recurrence with its hand-derived backward (see the module docstring).

    Inputs (positional, for ``apply``): ``a``, ``b`` ``(T, ...)``, ``h0`` ``(...)``,
    ``reverse``, ``method``. Returns ``hs`` ``(T, ...)``.
    """

    @staticmethod
    def forward(ctx: Any, *inputs: Any) -> Tensor:  # type: ignore[override]
        a, b, h0, reverse, method = inputs
        method = _resolve(method, a)
        a, b, h0 = a.contiguous(), b.contiguous(), h0.contiguous()
        hs = FORMS[method](a, b, h0, reverse)
        ctx.reverse, ctx.method = reverse, method
        ctx.save_for_backward(a, hs, h0)
        return hs

    @staticmethod
    def backward(ctx: Any, d_hs: Tensor) -> tuple[Tensor | None, ...]:
        a, hs, h0 = ctx.saved_tensors
        d_hs = d_hs.contiguous()
        if ctx.method == "native":
            d_a, d_b, d_h0 = native.ops().linear_scan_backward(d_hs, a, hs, h0, ctx.reverse)
        else:
            d_a, d_b, d_h0 = _backward(FORMS[ctx.method], d_hs, a, hs, h0, ctx.reverse)
        return d_a, d_b, d_h0, None, None


def _resolve(method: str, like: Tensor) -> str:
    if method == "auto":
        return scan_method(like)
    if method == "native" and native.usable(like) is None:
        raise ValueError(
            "linear_scan: method='native' needs CPU fp32/fp64 tensors and the native "
            f"kernels, got {like.device.type} {like.dtype}, kernels: {native.status()}"
        )
    return method


def _backward(
    form: Form, d_hs: Tensor, a: Tensor, hs: Tensor, h0: Tensor, reverse: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """``δa, δb, δh0`` by running ``form`` the other way (module docstring)."""
    zero = a.new_zeros(1, *a.shape[1:])
    if reverse:  # the step visited after t is t - 1, and h_{t+1} precedes h_t
        a_next, h_prev, first = torch.cat([zero, a[:-1]]), torch.cat([hs[1:], h0[None]]), -1
    else:
        a_next, h_prev, first = torch.cat([a[1:], zero]), torch.cat([h0[None], hs[:-1]]), 0
    g = form(a_next, d_hs, torch.zeros_like(h0), not reverse)  # (T, ...)
    return g * h_prev, g, a[first] * g[first]


def _native(a: Tensor, b: Tensor, h0: Tensor, reverse: bool) -> Tensor:
    return native.ops().linear_scan_forward(a, b, h0, reverse)


def _chunked(a: Tensor, b: Tensor, h0: Tensor, reverse: bool, chunk: int | None = None) -> Tensor:
    """The chunked form (module docstring); ``chunk``: steps per chunk (default ``⌈√T⌉``)."""
    if reverse:
        return _chunked(a.flip(0), b.flip(0), h0, False, chunk).flip(0)
    steps, rest = a.shape[0], a.shape[1:]
    size = chunk or math.isqrt(steps - 1) + 1  # ⌈√T⌉: C + T/C ops in all, the fewest
    count = -(-steps // size)
    pad = count * size - steps
    if pad:  # neutral steps at the end (a = 1, b = 0) make T a multiple of C
        a = torch.cat([a, a.new_ones(pad, *rest)])
        b = torch.cat([b, b.new_zeros(pad, *rest)])
    a, b = a.view(count, size, *rest), b.view(count, size, *rest)  # (n, C, ...)
    local = torch.empty_like(b)  # each chunk's states from a zero state, all chunks at once
    local[:, 0] = b[:, 0]
    for c in range(1, size):
        torch.addcmul(b[:, c], a[:, c], local[:, c - 1], out=local[:, c])
    decay = torch.cumprod(a, dim=1)  # Π a_s over the chunk up to each step, in [0, 1]
    entering = [h0]  # the state entering each chunk
    for j in range(count - 1):
        entering.append(torch.addcmul(local[j, -1], decay[j, -1], entering[-1]))
    hs = torch.addcmul(local, decay, torch.stack(entering).unsqueeze(1))  # (n, C, ...)
    return hs.view(count * size, *rest)[:steps]


def _log(a: Tensor, b: Tensor, h0: Tensor, reverse: bool) -> Tensor:
    """The log-space form (module docstring): two ``logcumsumexp``, one per sign."""
    if reverse:
        return _log(a.flip(0), b.flip(0), h0, False).flip(0)
    tiny = torch.finfo(a.dtype).tiny
    log_decay = torch.cumsum(torch.log(a.clamp(min=tiny)), dim=0)  # log A_t, (T, ...)
    log_decay = torch.cat([log_decay.new_zeros(1, *h0.shape), log_decay])  # A_{-1} = 1
    values = torch.cat([h0[None], b])  # h_{-1}, b_0, ..., b_{T-1}: (T + 1, ...)

    def part(v: Tensor) -> Tensor:  # log of A_t Σ_{s ≤ t} v_s / A_s, for v ≥ 0
        return torch.logcumsumexp(torch.log(v) - log_decay, dim=0) + log_decay

    hs = torch.exp(part(values.clamp(min=0))) - torch.exp(part((-values).clamp(min=0)))
    return hs[1:]


FORMS: dict[str, Form] = {"native": _native, "chunked": _chunked, "log": _log}
"""The forms of the recurrence by ``method`` name."""


@dataclass(frozen=True)
class MinimalGates:
    """A built-in minimal cell's coefficients: one projection, then its family's gates.

    Callable as a :data:`CoefficientsFn` (the readable path, any device); on the CPU the
    scan engine hands the projection to the fused native kernel instead
    (:class:`MinimalScan`).

    Attributes:
        family: ``"mingru"`` or ``"minlstm"`` (a key of :data:`FAMILIES`).
        weight_ih: ``(G·H, I)``; bias_ih: ``(G·H,)`` or ``None``.
    """

    family: str
    weight_ih: Tensor
    bias_ih: Tensor | None

    def __call__(self, x: Tensor) -> LinearCoefficients:
        return FAMILIES[self.family](x, self.weight_ih, self.bias_ih)


FAMILIES: dict[str, Callable[..., LinearCoefficients]] = {
    "mingru": mingru_coefficients,
    "minlstm": minlstm_coefficients,
}
"""The minimal cells' coefficient functions by family name (the fused kernel's names)."""

_CELL_FAMILIES = {MinGRUCell: "mingru", MinLSTMCell: "minlstm"}


def cell_coefficients(cell: Any) -> CoefficientsFn:
    """A linear cell's coefficients for the scan engine: :class:`MinimalGates` for the
    built-in cells (exact types: a subclass may change the step), else ``cell.coefficients``."""
    family = _CELL_FAMILIES.get(type(cell))
    if family is None:
        return cell.coefficients
    return MinimalGates(family, cell.weight_ih, cell.bias_ih)


class MinimalScan(torch.autograd.Function):
    """The fused native scan of a minimal cell: gates and recurrence in one pass.

    Inputs (positional, for ``apply``): ``k`` ``(T, B, G·H)`` the gate pre-activations,
    ``h0`` ``(B, H)``, ``valid`` ``(T, B)`` bool or ``None``, ``reverse``, ``family``.
    Returns ``hs`` ``(T, B, H)``; a padded step keeps the state. The backward returns
    ``δk`` (zero at padded steps) and ``δh0`` (``native/scan.cpp`` has the equations).
    """

    @staticmethod
    def forward(ctx: Any, *inputs: Any) -> Tensor:  # type: ignore[override]
        k, h0, valid, reverse, family = inputs
        k, h0 = k.contiguous(), h0.contiguous()
        valid = None if valid is None else valid.contiguous()
        hs = native.ops().minimal_scan_forward(k, h0, valid, reverse, family)
        ctx.reverse, ctx.family = reverse, family
        ctx.save_for_backward(k, hs, h0, valid)
        return hs

    @staticmethod
    def backward(ctx: Any, d_hs: Tensor) -> tuple[Tensor | None, ...]:
        k, hs, h0, valid = ctx.saved_tensors
        d_k, d_h0 = native.ops().minimal_scan_backward(
            d_hs.contiguous(), k, hs, h0, valid, ctx.reverse, ctx.family
        )
        return d_k, d_h0, None, None, None


def scan_sequence(
    coefficients: CoefficientsFn,
    x: Tensor,
    state: Tensor,
    *,
    valid: Tensor | None,
    reverse: bool,
    return_states: bool,
) -> ScanResult:
    """One layer and direction of a linear cell over time on the scan engine.

    Arguments:
        coefficients: ``x -> (a, b)`` (the cell's, with its weights bound).
        x: time-major input ``(T, B, I)``.
        state: ``h`` before the first visited step, ``(B, H)``.
        valid: ``(T, B)`` bool mask of real steps, or ``None`` for all.
        reverse: run from ``t = T-1`` down to ``0``.
        return_states: also return every step's state (the outputs: ``y_t = h_t``).

    Returns:
        A :class:`~rnnkit.engines.ScanResult`; outputs and states are zero at padded steps.
    """
    if isinstance(coefficients, MinimalGates) and native.usable(x) is not None:
        k = F.linear(x, coefficients.weight_ih, coefficients.bias_ih)  # (T, B, G·H)
        hs = MinimalScan.apply(k, state, valid, reverse, coefficients.family)  # (T, B, H)
    else:
        a, b = coefficients(x)  # each (T, B, H)
        if valid is not None:
            padded = ~valid.unsqueeze(-1)  # (T, B, 1)
            a, b = a.masked_fill(padded, 1.0), b.masked_fill(padded, 0.0)  # keep the state
        hs = linear_scan(a, b, state, reverse=reverse)  # (T, B, H)
    return state_result(hs, valid, reverse, return_states)  # padded steps kept the state


def scan_runner(coefficients: CoefficientsFn) -> SequenceRunner:
    """The scan engine's runner for one layer and direction (:func:`scan_sequence`)."""
    return functools.partial(scan_sequence, coefficients)
