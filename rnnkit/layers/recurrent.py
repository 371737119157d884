"""``Recurrent``: run any cell over time, stacked and in both directions."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from rnnkit.cells.base import (
    Cell,
    CellFactory,
    Device,
    DType,
    LinearCell,
    RecurrentCell,
    State,
    state_leaves,
)
from rnnkit.engines.bptt import cell_runner, refusal
from rnnkit.engines.linear import CoefficientsFn, cell_coefficients
from rnnkit.engines.loop import StepFn
from rnnkit.engines.runner import SequenceRunner
from rnnkit.layers.masked import MaskedCell, MaskedStep
from rnnkit.layers.sequence import (
    SequenceBatch,
    check_state,
    prepare_input,
    prepare_state,
)
from rnnkit.layers.stacked import MERGE_MODES, StackedLayer, stack_states

RECURRENT_ENGINES = ("auto", "bptt", "scan", "loop")


def is_cell(obj: Any) -> bool:
    """Whether ``obj`` looks like a cell instance (rather than a factory)."""
    return all(hasattr(obj, a) for a in ("input_size", "output_size", "init_state"))


def step_function(cell: Cell) -> StepFn:
    """The per-step callable of a cell (skipping the per-call checks of built-ins)."""
    return cell.step if isinstance(cell, RecurrentCell) else cell


class Recurrent(StackedLayer, nn.Module):
    r"""Run any cell over time: stacked layers, both directions, ragged lengths.

    For each layer ``k`` and direction, ``y_t, s_t = cell(x_t, s_{t-1})`` over
    ``t = 1..T`` (backward: ``t = T..1``); the two directions' outputs are merged
    (concatenated by default) and feed layer ``k + 1``.

    Arguments:
        cell: a cell instance (see :mod:`rnnkit.cells.base`), or a factory
            ``input_size -> cell`` such as ``lambda n: LSTMCell(n, 64)``. Every
            (layer, direction) gets its own cell. From an instance, the extra cells
            are deep copies with fresh parameters (``reset_parameters()``), which
            works when their input size equals the instance's; a stack whose upper
            layers see a different input size needs a factory.
        input_size: features of the input; required with a factory.
        num_layers: stacked recurrent layers.
        bidirectional: add a backward direction per layer.
        merge_mode: ``"concat"`` (features ``2·O``), ``"sum"``, ``"mul"`` or ``"ave"``.
        batch_first: input and output are ``(B, T, ·)`` instead of ``(T, B, ·)``.
        dropout: dropout on the outputs of every layer but the last (training only).
        return_sequences: return every step's output; ``False`` returns each
            direction's *final* output (forward at the last valid step, backward
            at step 0), merged: ``(B, F)``.
        engine: ``"auto"`` (default: the rule of :mod:`rnnkit.engines.select`), or force
            ``"bptt"``, ``"scan"`` or ``"loop"``. The BPTT engine runs the built-in cells,
            their variants and cells registered with
            :func:`rnnkit.engines.bptt.register_backward`; the scan engine runs cells linear
            in their state (``MinGRUCell``, ``MinLSTMCell``,
            :class:`~rnnkit.cells.base.LinearCell`).

    Call:
        ``layer(x, state=None, *, lengths=None, return_states=False)``

        * ``x``: ``(T, B, I)`` (``(B, T, I)`` with ``batch_first``), ``(T, I)``, or a
          ``PackedSequence``.
        * ``state``: initial state, stacked over (layer, direction): every leaf
          ``(L*D, B, ...)`` (``torch.nn``'s ``h_0`` layout); zeros when ``None``.
        * ``lengths``: ``(B,)`` valid lengths of a padded batch. Padded steps output
          zeros and leave the state untouched; the final state is each sequence's
          last valid step; a zero-length sequence keeps its initial state.
        * ``return_states``: also return every step's state.

    Returns:
        ``(output, final_state)``, or ``(output, final_state, states)`` with
        ``return_states``. ``output`` is ``(T, B, F)`` (layout as the input, packed
        if the input was), or ``(B, F)`` without ``return_sequences``; ``final_state``
        leaves are ``(L*D, B, ...)``; ``states`` leaves are ``(L*D, T, B, ...)``
        (``(L*D, B, T, ...)`` with ``batch_first``), zeros at padded steps.

    Example::

        >>> layer = Recurrent(lambda n: LSTMCell(n, 32), input_size=8,
        ...                   num_layers=2, bidirectional=True, batch_first=True)
        >>> x = torch.randn(4, 10, 8)
        >>> out, (h_n, c_n) = layer(x, lengths=torch.tensor([10, 7, 3, 1]))
        >>> out.shape, h_n.shape
        (torch.Size([4, 10, 64]), torch.Size([4, 4, 32]))
    """

    engines = RECURRENT_ENGINES

    def __init__(
        self,
        cell: Cell | CellFactory,
        *,
        input_size: int | None = None,
        num_layers: int = 1,
        bidirectional: bool = False,
        merge_mode: str = "concat",
        batch_first: bool = False,
        dropout: float = 0.0,
        return_sequences: bool = True,
        engine: str = "auto",
    ) -> None:
        super().__init__()
        if merge_mode not in MERGE_MODES:
            raise ValueError(
                f"Recurrent: merge_mode must be one of {MERGE_MODES}, got {merge_mode!r}"
            )
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"Recurrent: num_layers must be an integer >= 1, got {num_layers!r}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"Recurrent: dropout must be in [0, 1], got {dropout!r}")
        self.num_layers, self.bidirectional = num_layers, bidirectional
        self.num_directions = 2 if bidirectional else 1
        self.merge_mode, self.batch_first = merge_mode, batch_first
        self.dropout, self.return_sequences = float(dropout), return_sequences
        self.cells = nn.ModuleList(
            _build_cells(cell, input_size, num_layers, self.num_directions, merge_mode)
        )
        self.input_size: int = self.cells[0].input_size
        self.output_size: int = _merged_size(self.cells[-self.num_directions :], merge_mode)
        self._set_engine(engine)
        self.engine_for()  # a forced engine that cannot run these cells fails now

    def _bptt_refusal(self) -> str | None:
        reasons = (refusal(c) for c in self.cells)
        return next((r for r in reasons if r is not None), None)

    def _linear(self) -> bool:
        return all(isinstance(c, LinearCell) and not isinstance(c, MaskedCell) for c in self.cells)

    def cell(self, layer: int = 0, direction: int = 0) -> Cell:
        """The cell of one layer and direction (0 forward, 1 backward)."""
        return self.cells[layer * self.num_directions + direction]

    def init_state(self, batch_size: int, *, device: Device = None, dtype: DType = None) -> State:
        """Zeros (or each cell's initial state), stacked: leaves ``(L*D, B, ...)``."""
        return stack_states(
            [c.init_state(batch_size, device=device, dtype=dtype) for c in self.cells]
        )

    def forward(
        self,
        x: Tensor | PackedSequence,
        state: State | None = None,
        *,
        lengths: Tensor | Sequence[int] | None = None,
        return_states: bool = False,
    ) -> tuple[Any, ...]:
        info = self._inspect(x, lengths)
        batch = prepare_input(x, info, batch_first=self.batch_first)
        initial = self._initial_state(state, batch)
        return self._run_stack(
            batch,
            initial,
            self.engine_for(return_states=return_states),
            return_states=return_states,
            merge_mode=self.merge_mode,
            return_sequences=self.return_sequences,
        )

    def _initial_state(self, state: State | None, batch: SequenceBatch) -> State:
        """The initial state, stacked: leaves ``(L*D, B, ...)``, checked if given."""
        x = batch.x
        if state is None:
            return self.init_state(batch.batch_size, device=x.device, dtype=x.dtype)
        expected = [
            tuple(t.shape)
            for t in state_leaves(self.init_state(batch.batch_size, device=torch.device("meta")))
        ]
        if batch.unbatched:
            expected = [shape[:1] + shape[2:] for shape in expected]
        check_state(state, expected, "Recurrent")
        return prepare_state(state, batch.unbatched)

    # -- runners ----------------------------------------------------------------------

    def _sample_masks(self, batch: SequenceBatch) -> list[Any]:
        """Each cell's masks for this call (``None`` for cells without), drawn once, in order."""
        steps, size = batch.x.shape[0], batch.batch_size
        return [
            c.sample_masks(size, steps, like=batch.x) if isinstance(c, MaskedCell) else None
            for c in self.cells
        ]

    def _bptt_runner(self, layer: int, direction: int, masks: Any) -> SequenceRunner:
        return cell_runner(self.cell(layer, direction), masks)

    def _coefficients(self, layer: int, direction: int) -> CoefficientsFn:
        return cell_coefficients(self.cell(layer, direction))

    def _step(self, layer: int, direction: int) -> StepFn:
        return step_function(self.cell(layer, direction))

    def _masked_step(self, layer: int, direction: int) -> MaskedStep:
        return self.cell(layer, direction).masked_step  # type: ignore[attr-defined]

    def extra_repr(self) -> str:
        options = [f"num_layers={self.num_layers}"]
        if self.bidirectional:
            options.append(f"bidirectional=True, merge_mode={self.merge_mode!r}")
        if self.batch_first:
            options.append("batch_first=True")
        if self.dropout:
            options.append(f"dropout={self.dropout}")
        if not self.return_sequences:
            options.append("return_sequences=False")
        if self.engine != "auto":
            options.append(f"engine={self.engine!r}")
        return ", ".join(options)


def _merged_size(cells: Sequence[Cell], merge_mode: str) -> int:
    sizes = [c.output_size for c in cells]
    if merge_mode == "concat":
        return sum(sizes)
    if len(set(sizes)) != 1:
        raise ValueError(
            f"Recurrent: merge_mode={merge_mode!r} needs both directions to have the same "
            f"output_size, got {sizes}"
        )
    return sizes[0]


def _build_cells(
    cell: Cell | CellFactory,
    input_size: int | None,
    num_layers: int,
    num_directions: int,
    merge_mode: str,
) -> list[Cell]:
    """One cell per (layer, direction), layer-major, checking that sizes chain up."""
    if is_cell(cell):
        if input_size is not None and input_size != cell.input_size:
            raise ValueError(
                f"Recurrent: input_size={input_size} disagrees with the cell's "
                f"input_size={cell.input_size}"
            )
        template: Cell = cell  # type: ignore[assignment]
        make = _copier(template)
        first_size = template.input_size
    elif callable(cell):
        if input_size is None:
            raise ValueError(
                "Recurrent: a cell factory needs input_size=... to build the first layer"
            )
        make, template, first_size = cell, None, input_size  # type: ignore[assignment]
    else:
        raise TypeError(
            "Recurrent: expected a cell (with input_size, output_size, init_state and a "
            f"step call) or a factory input_size -> cell, got {type(cell).__name__}"
        )
    cells: list[Cell] = []
    size = first_size
    for k in range(num_layers):
        layer = []
        for d in range(num_directions):
            built = template if (k, d) == (0, 0) and template is not None else make(size)
            _check_built(built, size, k, d)
            layer.append(built)
        cells.extend(layer)
        size = _merged_size(layer, merge_mode)
    for c in cells:
        if not isinstance(c, nn.Module):
            raise TypeError(
                f"Recurrent: cells must be torch.nn.Module instances, got {type(c).__name__}"
            )
    return cells


def _copier(template: Cell) -> CellFactory:
    """Make extra cells from an instance: a deep copy with fresh parameters."""

    def make(input_size: int) -> Cell:
        if input_size != template.input_size:
            raise ValueError(
                f"Recurrent: an upper layer needs a cell with input_size={input_size}, but "
                f"the given {type(template).__name__} has input_size={template.input_size}; "
                f"pass a factory instead, e.g. Recurrent(lambda n: "
                f"{type(template).__name__}(n, ...), input_size={template.input_size}, ...)"
            )
        clone = copy.deepcopy(template)
        if hasattr(clone, "reset_parameters"):
            clone.reset_parameters()
        return clone

    return make


def _check_built(cell: Any, size: int, layer: int, direction: int) -> None:
    if not is_cell(cell):
        raise TypeError(
            f"Recurrent: the factory returned {type(cell).__name__}, which is not a cell "
            "(needs input_size, output_size and init_state)"
        )
    if cell.input_size != size:
        raise ValueError(
            f"Recurrent: layer {layer} direction {direction} expects input_size={size}, "
            f"but its cell has input_size={cell.input_size}"
        )
