"""``gradient_flow``: how much of the loss's gradient reaches every time step.

Fused kernels never expose per-step states, so :func:`gradient_flow` re-runs the
loss with every rnnkit layer switched to the reference loop engine
(:func:`rnnkit.layers.use_engine`) inside :func:`rnnkit.engines.record_steps`. The
recorded per-step states are graph nodes; one ``torch.autograd.grad`` call then gives
the total ``∂L/∂s_t`` for every step of every layer and direction (and ``∂L/∂θ``),
without touching any ``.grad``. Forward hooks on the recurrent modules tell which
recorded scans belong to which module.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit.cells.base import State
from rnnkit.diagnostics.gates import cell_source, gate_stats
from rnnkit.diagnostics.report import GradientFlowReport, LayerFlow
from rnnkit.engines.loop import StepRecord, StepRecorder, record_steps
from rnnkit.layers.stacked import StackedLayer, use_engine


def gradient_flow(
    model: nn.Module, loss_fn: Callable[[], Tensor], *, per_sequence: bool = True
) -> GradientFlowReport:
    """Measure ``‖∂L/∂s_t‖`` for every step, layer and direction of a model's rnnkit layers.

    ``loss_fn`` runs the model on a batch and returns the scalar loss; it is called
    once, with every rnnkit layer in ``model`` temporarily on the loop engine (the
    layers' own engines are restored afterwards, and parameters are shared, so the
    loss is the one the usual engine computes). Works for the drop-in ``RNN``,
    ``LSTM`` and ``GRU``, for ``MinGRU`` and ``MinLSTM``, and for :class:`rnnkit.Recurrent`
    with any cell, anywhere inside ``model``, each called any number of times.

    Gradients come from ``torch.autograd.grad``: the parameters' ``.grad`` are left
    exactly as they were. The model's mode is left alone too, so dropout is active in
    training mode (call ``model.eval()`` first for a deterministic measurement).

    Arguments:
        model: the model (or a single layer) whose parameters the loss depends on.
        loss_fn: ``() -> loss``, a scalar tensor that requires grad.
        per_sequence: also keep the ``T × B`` per-sequence norms (turn off for
            a compact report, e.g. to log during training).

    Returns:
        A :class:`GradientFlowReport`. Per state field (``h``, and ``c`` for an
        LSTM-family state) the batch aggregate is the mean, over the sequences for
        which step ``t`` is real, of the per-sequence L2 norm; padded steps are
        excluded. Gate statistics (LSTM, GRU, minGRU, minLSTM) are recomputed from the
        recorded inputs and states with the layer's weights.

    Raises:
        ValueError: if ``loss_fn`` does not return a scalar that requires grad, or
            runs no rnnkit recurrent layer.

    Note:
        Vanishing gradients are tiny: over 100 steps a vanilla RNN's ``‖∂L/∂h_1‖``
        reaches 1e-20 or less and underflows float32 (to 0) on long sequences.
        Measure a float64 copy (``copy.deepcopy(model).double()``) to see the
        actual values.

    Example::

        >>> model = nn.Sequential(...)  # anything containing rnnkit layers
        >>> report = gradient_flow(model, lambda: F.mse_loss(model(x), y))
        >>> report.layers[0].grad_norms["h"]  # T values, ‖∂L/∂h_t‖
        >>> report.layers[0].ratio()  # ‖∂L/∂h_1‖ / ‖∂L/∂h_T‖
    """
    with (
        use_engine(model, "loop"),
        record_steps() as recorder,
        _track_calls(model, recorder) as calls,
    ):
        loss = loss_fn()
    _check_loss(loss)
    scans = _attribute(recorder, calls)
    if not scans:
        raise ValueError(_nothing_recorded(model))
    _warn_unrecorded(calls)
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    state_leaves = [leaf for scan in scans for r in scan.records for _, leaf in _fields(r)]
    grads = _grad(loss, state_leaves + [p for _, p in params])
    flows = _layer_flows(scans, grads[: len(state_leaves)], per_sequence=per_sequence)
    return GradientFlowReport(
        loss=float(loss.detach()),
        layers=flows,
        parameters={
            name: None if g is None else float(g.detach().double().norm())
            for (name, _), g in zip(params, grads[len(state_leaves) :], strict=True)
        },
    )


# -- which scan belongs to which module -------------------------------------------------


@dataclass
class _Call:
    """One call of a recurrent module: the recorder's scans ``[start, end)``."""

    name: str
    module: nn.Module | None
    call: int
    start: int
    end: int = -1


@dataclass
class _Scan:
    """One recorded scan, attributed to a (module call, layer, direction)."""

    call: _Call
    layer: int
    direction: int
    records: list[StepRecord] = field(default_factory=list)


def _is_recurrent(module: nn.Module) -> bool:
    return isinstance(module, nn.RNNBase | StackedLayer)


@contextmanager
def _track_calls(model: nn.Module, recorder: StepRecorder) -> Iterator[list[_Call]]:
    """Forward hooks that note which scans each recurrent module's call produced."""
    calls: list[_Call] = []  # in completion order: inner calls before outer ones
    running: list[_Call] = []
    counts: Counter[str] = Counter()

    def before(name: str, module: nn.Module, args: Any) -> None:
        running.append(_Call(name, module, counts[name], len(recorder.scans)))
        counts[name] += 1

    def after(module: nn.Module, args: Any, output: Any) -> None:
        call = running.pop()
        call.end = len(recorder.scans)
        calls.append(call)

    handles = []
    for name, module in model.named_modules():
        if _is_recurrent(module):
            handles.append(module.register_forward_pre_hook(partial(before, name)))
            handles.append(module.register_forward_hook(after))
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def _attribute(recorder: StepRecorder, calls: Sequence[_Call]) -> list[_Scan]:
    """Give every recorded scan to the innermost module call that ran it."""
    owner: dict[int, _Call] = {}
    for call in calls:  # inner calls complete first, so setdefault keeps the innermost
        for index in range(call.start, call.end):
            owner.setdefault(index, call)
    stray = _Call("(unattributed)", None, 0, 0)
    seen: Counter[int] = Counter()
    scans = []
    for index, records in enumerate(recorder.scans):
        call = owner.get(index, stray)
        position = seen[id(call)]
        seen[id(call)] += 1
        directions = 2 if getattr(call.module, "bidirectional", False) else 1
        direction = 1 if recorder.reverse[index] else 0
        scans.append(_Scan(call, position // directions, direction, list(records)))
    return [scan for scan in scans if scan.records]


def _warn_unrecorded(calls: Sequence[_Call]) -> None:
    """torch.nn layers run fused kernels that record nothing: say so rather than hide it."""
    for call in calls:
        if call.start == call.end and isinstance(call.module, nn.RNNBase):
            kind = type(call.module).__name__
            warnings.warn(
                f"gradient_flow: {call.name or 'the model'} ({type(call.module).__module__}."
                f"{kind}) recorded no steps and is left out; use rnnkit.{kind}, its drop-in",
                stacklevel=3,
            )


def _nothing_recorded(model: nn.Module) -> str:
    found = [
        f"{name or 'model'} ({type(module).__name__})"
        for name, module in model.named_modules()
        if _is_recurrent(module)
    ]
    return (
        "gradient_flow: expected loss_fn to run at least one rnnkit recurrent layer "
        "(rnnkit.RNN/LSTM/GRU, MinGRU/MinLSTM or Recurrent inside the model), but no step was "
        f"recorded; recurrent modules in the model: {', '.join(found) or 'none'}"
    )


# -- gradients ----------------------------------------------------------------------------


def _check_loss(loss: Any) -> None:
    if not isinstance(loss, Tensor):
        raise ValueError(
            f"gradient_flow: expected loss_fn to return a scalar Tensor, got {type(loss).__name__}"
        )
    if loss.numel() != 1:
        raise ValueError(
            "gradient_flow: expected loss_fn to return a scalar loss, "
            f"got a tensor of shape {tuple(loss.shape)}"
        )
    if not loss.requires_grad:
        raise ValueError(
            "gradient_flow: expected a loss that requires grad, got one that does not "
            "(was loss_fn run under torch.no_grad(), or are all parameters frozen?)"
        )


def _grad(loss: Tensor, inputs: Sequence[Tensor]) -> list[Tensor | None]:
    """``∂loss/∂input`` for each input; ``None`` where the loss does not depend on it."""
    wanted = [i for i, t in enumerate(inputs) if t.requires_grad]
    grads = torch.autograd.grad(loss, [inputs[i] for i in wanted], allow_unused=True)
    out: list[Tensor | None] = [None] * len(inputs)
    for i, g in zip(wanted, grads, strict=True):
        out[i] = g
    return out


def _fields(record: StepRecord) -> list[tuple[str, Tensor]]:
    """The named leaves of a step's output state: ``h``, or a NamedTuple's fields."""
    return _named_leaves(record.state_out)


def _named_leaves(state: State, prefix: str = "") -> list[tuple[str, Tensor]]:
    """``[("h", h)]`` for a tensor; ``[("h", h), ("c", c)]`` for ``LSTMState``; nested
    NamedTuples give dotted names, plain tuples ``s0, s1, …``."""
    if isinstance(state, Tensor):
        return [(prefix or "h", state)]
    names = getattr(state, "_fields", None) or [f"s{i}" for i in range(len(state))]
    return [
        leaf
        for name, part in zip(names, state, strict=True)
        for leaf in _named_leaves(part, f"{prefix}.{name}" if prefix else name)
    ]


def _layer_flows(
    scans: Sequence[_Scan], grads: Sequence[Tensor | None], *, per_sequence: bool
) -> list[LayerFlow]:
    flows, position = [], 0
    for scan in scans:
        names = [n for n, _ in _fields(scan.records[0])]
        count = len(names) * len(scan.records)
        flows.append(_layer_flow(scan, names, grads[position : position + count], per_sequence))
        position += count
    return flows


def _layer_flow(
    scan: _Scan, names: list[str], grads: Sequence[Tensor | None], per_sequence: bool
) -> LayerFlow:
    records = scan.records
    valid = _valid_mask(records)  # (T, B)
    aggregated: dict[str, list[float | None]] = {}
    sequences: dict[str, list[list[float | None]]] = {}
    for i, name in enumerate(names):
        leaves = [leaf for r in records for n, leaf in _fields(r) if n == name]
        norms = torch.stack(
            [_norms(g, leaf) for g, leaf in zip(grads[i :: len(names)], leaves, strict=True)]
        )  # (T, B)
        aggregated[name] = _masked_mean(norms, valid)
        if per_sequence:
            sequences[name] = [
                [n if v else None for n, v in zip(row, vrow, strict=True)]
                for row, vrow in zip(norms.tolist(), valid.tolist(), strict=True)
            ]
    source = cell_source(scan.call.module, scan.layer, scan.direction)
    gates = gate_stats(source.family, source.weights, records) if source.family else {}
    return LayerFlow(
        module=scan.call.name,
        call=scan.call.call,
        layer=scan.layer,
        direction="backward" if scan.direction else "forward",
        cell=source.cell,
        fields=tuple(names),
        grad_norms=aggregated,
        per_sequence=sequences,
        gates=gates,
    )


def _norms(grad: Tensor | None, leaf: Tensor) -> Tensor:
    """Per-sequence L2 norm ``(B,)``, in float64: float32 squares of 1e-25 underflow."""
    if grad is None:  # the loss does not depend on this step's state
        return leaf.new_zeros(leaf.shape[0], dtype=torch.float64)
    return grad.detach().double().flatten(1).norm(dim=1)


def _valid_mask(records: Sequence[StepRecord]) -> Tensor:
    """``(T, B)`` bool: real steps (all of them without lengths)."""
    if records[0].valid is None:
        first = records[0].x
        return torch.ones(len(records), first.shape[0], dtype=torch.bool, device=first.device)
    return torch.stack([r.valid for r in records])


def _masked_mean(norms: Tensor, valid: Tensor) -> list[float | None]:
    """Mean over the real sequences of each step ``(T,)``; ``None`` where there are none."""
    count = valid.sum(dim=1)  # (T,)
    total = torch.where(valid, norms, 0.0).sum(dim=1)  # (T,)
    mean = total / count.clamp(min=1)
    return [m if c > 0 else None for m, c in zip(mean.tolist(), count.tolist(), strict=True)]
