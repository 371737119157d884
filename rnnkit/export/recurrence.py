r"""The export form of a recurrent layer: its recurrence as one graph, any length, any batch.

A layer's own forward chooses an engine, packs ragged batches for the fused kernels and
loops in Python; none of that traces into a graph with a dynamic time axis. Its export
form (:class:`ExportedRecurrence`) computes the same thing from the pieces every engine
shares: the masks of the padded batch (``valid[t, b] = t < lengths[b]``), the layer's
reference step for each (layer, direction), and :func:`rnnkit.engines.run_stack` for
stacking, directions and merging. Only the loop over time is new, in one of two forms:

* **scan** — :func:`torch._higher_order_ops.scan` over the step, masked exactly as the
  loop engine masks it (a padded step keeps the state and outputs zeros; the backward
  direction runs ``T-1 → 0`` under the same mask, which is a forward pass over each
  sequence's reversed valid part). torch.export keeps it as a ``scan`` node and the
  ONNX exporter turns it into ONNX's ``Scan``; it runs every cell: layer norm, zoneout's
  eval form (the expectation ``z h_{t-1} + (1-z) \hat h_t``), a user's own cell.
* **native** (ONNX only) — ONNX's own ``RNN``/``GRU``/``LSTM`` operators, which take
  ``sequence_lens`` and compute exactly these masked semantics, for the plain cells and
  the peephole LSTM (the operator's input ``P``); ONNX Runtime runs them as fused kernels.
  They enter the traced graph as the custom ops of :mod:`rnnkit.export.native`.

Dropout of every kind is off: the export form is the layer in eval mode.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import torch
import torch.utils._pytree as pytree
from torch import Tensor, nn

from rnnkit.cells.base import State
from rnnkit.cells.options import VariantOptions, VariantWeights
from rnnkit.engines.bptt.cells import cell_family
from rnnkit.engines.loop import StepFn
from rnnkit.engines.loop import scan as loop_scan
from rnnkit.engines.runner import ScanResult, SequenceRunner
from rnnkit.export.errors import ExportError
from rnnkit.layers.recurrent import Recurrent
from rnnkit.layers.sequence import SequenceBatch, restore_output
from rnnkit.layers.stacked import StackedLayer, run_stack

FORMS = ("scan", "native")
"""How the loop over time is exported: ``scan`` everywhere, or ONNX's own operators
(``native``) where a cell has one and ``scan`` elsewhere."""


NATIVE_FAMILIES = ("rnn", "gru", "lstm")
"""The cell families ONNX has an operator for (minGRU/minLSTM run as a ``scan``)."""


class NativeCell(NamedTuple):
    """One (layer, direction) that ONNX's own operator computes.

    Attributes:
        family: ``"rnn"``, ``"gru"`` or ``"lstm"``.
        weights: its parameters (torch's layout; peepholes for an LSTM, if any).
        nonlinearity: the RNN's ``"tanh"`` or ``"relu"``.
    """

    family: str
    weights: VariantWeights
    nonlinearity: str = "tanh"


def native_cell(layer: StackedLayer, k: int, d: int) -> NativeCell | None:
    """The (layer ``k``, direction ``d``) as a :class:`NativeCell`, or ``None`` when ONNX's
    operators cannot compute it (layer norm, zoneout, a projection, a user's cell)."""
    if isinstance(layer, Recurrent):
        cell = layer.cell(k, d)
        family = cell_family(cell)
        if family not in NATIVE_FAMILIES or getattr(cell, "proj_size", 0):
            return None
        options = getattr(cell, "options", VariantOptions())
        weights, nonlinearity = VariantWeights.of(cell), getattr(cell, "nonlinearity", "tanh")
    else:
        family = getattr(layer, "family", None)
        if family not in NATIVE_FAMILIES or getattr(layer, "proj_size", 0):
            return None
        options = layer.variant  # type: ignore[attr-defined]
        weights = layer.variant_weights(k, d)  # type: ignore[attr-defined]
        nonlinearity = layer._nonlinearity()  # type: ignore[attr-defined]
    if options.layer_norm or options.zoneout_h or options.zoneout_c:
        return None
    return NativeCell(family, weights, nonlinearity)


class ExportedRecurrence(nn.Module):
    """A recurrent layer in its export form; called exactly as the layer is.

    Arguments:
        layer: an rnnkit layer (:class:`rnnkit.RNN`/``LSTM``/``GRU``, :class:`rnnkit.Recurrent`)
            in eval mode; its parameters are shared, not copied.
        form: ``"scan"`` or ``"native"`` (see the module docstring).

    Call:
        ``(x, state=None, *, lengths=None) -> (output, final_state)``, as the layer:
        ``x`` in the layer's layout, ``lengths (B,)`` int64 (``0`` allowed, as in the layer),
        ``state`` leaves ``(L*D, B, ...)``.
    """

    def __init__(self, layer: StackedLayer, *, form: str = "scan") -> None:
        super().__init__()
        if form not in FORMS:
            raise ValueError(f"ExportedRecurrence: form must be one of {FORMS}, got {form!r}")
        if not isinstance(layer, nn.Module) or not isinstance(layer, StackedLayer):
            raise ExportError(
                f"cannot export a {type(layer).__name__}: the exporter knows the rnnkit layers "
                "(rnnkit.RNN/LSTM/GRU, rnnkit.Recurrent over any cell)"
            )
        self.layer, self.form = layer, form
        self.native: dict[tuple[int, int], str] = {}  # (layer, direction) -> buffer suffix
        if form == "native":
            self._add_native_weights()

    def _add_native_weights(self) -> None:
        """ONNX-layout copies of the weights of every (layer, direction) ONNX's ops run."""
        from rnnkit.export.native import onnx_weights

        layer = self.layer
        for k in range(layer.num_layers):
            for d in range(layer.num_directions):
                cell = native_cell(layer, k, d)
                if cell is None:
                    continue
                suffix = f"_l{k}" + ("_reverse" if d else "")
                for name, tensor in onnx_weights(cell)._asdict().items():
                    if tensor is not None:
                        self.register_buffer(f"onnx_{name}{suffix}", tensor, persistent=False)
                self.native[(k, d)] = suffix

    def forward(
        self,
        x: Tensor,
        state: State | None = None,
        *,
        lengths: Tensor | None = None,
        return_states: bool = False,
    ) -> tuple[Tensor, State]:
        if return_states:
            raise ExportError("an exported layer returns its final state, not every step's")
        layer = self.layer
        batch_first = bool(getattr(layer, "batch_first", False))
        time_major = x.transpose(0, 1) if batch_first else x  # (T, B, I)
        batch = SequenceBatch(time_major, lengths, None, False, batch_first)
        dirs = layer.num_directions
        masks = layer._sample_masks(batch) or [None] * (layer.num_layers * dirs)
        runners = [
            [self._runner(k, d, masks[k * dirs + d]) for d in range(dirs)]
            for k in range(layer.num_layers)
        ]
        result = run_stack(
            runners,
            time_major,
            self._initial_state(state, batch),
            lengths=lengths,
            merge_mode=getattr(layer, "merge_mode", "concat"),
        )
        if not getattr(layer, "return_sequences", True):
            return result.last, result.final  # (B, F)
        return restore_output(result.output, batch), result.final  # type: ignore[return-value]

    def _initial_state(self, state: State | None, batch: SequenceBatch) -> State:
        layer: Any = self.layer
        if state is not None:
            return layer._as_state(state) if hasattr(layer, "_as_state") else state
        if isinstance(layer, Recurrent):
            return layer.init_state(batch.batch_size, device=batch.x.device, dtype=batch.x.dtype)
        if hasattr(layer, "_zero_state"):
            return layer._zero_state(batch.batch_size, batch.x)
        rows = layer.num_layers * layer.num_directions  # MinGRU/MinLSTM: one (L*D, B, H)
        return batch.x.new_zeros(rows, batch.batch_size, layer.hidden_size)

    def _runner(self, k: int, d: int, masks: Any) -> SequenceRunner:
        layer: Any = self.layer
        if masks is not None and masks.num_steps is not None:
            raise ExportError(
                f"{type(layer).__name__}: its dropout/zoneout masks vary per step (training "
                "mode); export the model in eval mode"
            )
        if (k, d) in self.native:
            from rnnkit.export.native import OnnxWeights, native_runner

            suffix = self.native[(k, d)]
            weights = OnnxWeights(
                *(getattr(self, f"onnx_{n}{suffix}", None) for n in OnnxWeights._fields)
            )
            cell = native_cell(layer, k, d)
            assert cell is not None
            return native_runner(cell.family, weights, cell.nonlinearity)
        if masks is None:
            return scan_runner(layer._step(k, d))
        return scan_runner(functools.partial(_with_masks, layer._masked_step(k, d), masks))

    def extra_repr(self) -> str:
        return f"form={self.form!r}"


def _with_masks(step: Any, masks: Any, x: Tensor, state: State) -> tuple[Tensor, State]:
    return step(x, state, masks)


def _where(valid: Tensor, new: Tensor, old: Tensor | float) -> Tensor:
    """``torch.where`` with a ``(B,)`` mask broadcast over the trailing dims of ``new``."""
    return torch.where(valid.view((-1,) + (1,) * (new.dim() - 1)), new, old)


def scan_runner(step: StepFn) -> SequenceRunner:
    """A runner (see :mod:`rnnkit.engines.runner`) that loops with ``torch``'s ``scan``.

    The masking is the loop engine's: at a padded step the state is kept and the output
    is zero, so the final state is each sequence's last valid step's. Outside
    ``torch.export`` (where ``scan`` would need ``torch.compile``) the loop engine runs
    the same masked loop.
    """

    def run(
        x: Tensor, state: State, *, valid: Tensor | None, reverse: bool, return_states: bool
    ) -> ScanResult:
        if not torch.compiler.is_exporting():
            return loop_scan(step, x, state, valid=valid, reverse=reverse)
        return _traced_scan(step, x, state, valid, reverse)

    return run


def _traced_scan(
    step: StepFn, x: Tensor, state: State, valid: Tensor | None, reverse: bool
) -> ScanResult:
    from torch._higher_order_ops.scan import scan

    if valid is None:
        valid = x.new_ones(x.shape[:2], dtype=torch.bool)  # (T, B)

    # scan carries a flat list of tensors; the state's structure (a pytree spec, no
    # tensors: a captured tensor would pin the batch size) is rebuilt around the step.
    init, spec = pytree.tree_flatten(state)

    def body(carry: list[Tensor], inputs: tuple[Tensor, Tensor]) -> tuple[list[Tensor], Tensor]:
        x_t, v = inputs  # (B, I), (B,)
        y, new = step(x_t, pytree.tree_unflatten(list(carry), spec))
        kept = [_where(v, n, o) for n, o in zip(pytree.tree_leaves(new), carry, strict=True)]
        return kept, _where(v, y, 0.0)  # fresh tensors: scan's outputs may not alias

    # Views (a layer's slice of the stacked state, a transposed input) would make the
    # tracer guard on their bases' sizes: pass copies.
    init = [leaf.clone() for leaf in init]
    final, outputs = scan(body, init, (x.contiguous(), valid), reverse=reverse)
    return ScanResult(outputs, pytree.tree_unflatten(list(final), spec), None)


def export_form(model: nn.Module, *, form: str) -> nn.Module:
    """``model`` with every rnnkit layer replaced by its :class:`ExportedRecurrence`, in place.

    Returns:
        The model.
    """
    for name, module in list(model.named_modules()):
        if isinstance(module, StackedLayer) and name and not _inside_export_form(model, name):
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, attr, ExportedRecurrence(module, form=form))
    return model


def _inside_export_form(model: nn.Module, name: str) -> bool:
    parts = name.split(".")
    for i in range(1, len(parts)):
        if isinstance(model.get_submodule(".".join(parts[:i])), ExportedRecurrence):
            return True
    return False
