"""The cell protocol: what one recurrent step looks like in rnnkit.

A *cell* computes one time step. It takes the input at step ``t`` and the state
after step ``t-1`` and returns the step's output and the new state::

    y_t, state_t = cell(x_t, state_{t-1})

Anything that follows this protocol runs through :class:`rnnkit.Recurrent`, which
adds time, stacking, direction, variable lengths and per-step states. To bring your
own cell, implement:

``input_size: int``
    Features of ``x_t``.
``output_size: int``
    Features of ``y_t``.
``init_state(batch_size, *, device=None, dtype=None) -> State``
    The state before the first step (usually zeros).
``forward(x, state) -> (y, new_state)``
    One step. ``x`` has shape ``(B, input_size)``, ``y`` has shape ``(B, output_size)``.

A *state* is either one tensor of shape ``(B, ...)`` or a ``NamedTuple`` of such
tensors (for example :class:`LSTMState` ``(h, c)``), never a plain tuple whose order
must be guessed. Every tensor in a state has the batch on its first dimension, so a
layer can mask, select and stack states without knowing what they mean.

Example::

    class MinimalRNNCell(nn.Module):  # h_t = tanh(W x_t + U h_{t-1})
        def __init__(self, input_size, hidden_size):
            super().__init__()
            self.input_size, self.output_size = input_size, hidden_size
            self.w = nn.Linear(input_size, hidden_size)
            self.u = nn.Linear(hidden_size, hidden_size, bias=False)

        def init_state(self, batch_size, *, device=None, dtype=None):
            return torch.zeros(batch_size, self.output_size, device=device, dtype=dtype)

        def forward(self, x, state):
            h = torch.tanh(self.w(x) + self.u(state))
            return h, h

    layer = rnnkit.Recurrent(MinimalRNNCell(8, 16), bidirectional=True)

A cell whose state update is *linear in the state*, ``h_t = a_t ⊙ h_{t-1} + b_t`` with
``a_t`` and ``b_t`` functions of ``x_t`` alone (:class:`rnnkit.cells.MinGRUCell`,
:class:`~rnnkit.cells.MinLSTMCell`), may also implement :class:`LinearCell`'s
``coefficients(x)`` for a whole sequence; :class:`rnnkit.Recurrent` then runs it on the
scan engine (:mod:`rnnkit.engines.linear`), which needs no step-by-step loop in Python.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple, Protocol, TypeAlias, runtime_checkable

import torch
from torch import Tensor, nn

State: TypeAlias = Any
"""A tensor ``(B, ...)`` or a ``NamedTuple`` of such tensors."""

Device: TypeAlias = "torch.device | str | None"
"""Where new tensors go (``None``: the parameters' or the input's device)."""

DType: TypeAlias = "torch.dtype | None"
"""The dtype of new tensors (``None``: the parameters' or the input's dtype)."""


class LSTMState(NamedTuple):
    """State of an LSTM-family cell.

    Attributes:
        h: hidden state ``h_t``, shape ``(B, H)`` (``(B, P)`` with a projection).
        c: cell state ``c_t`` (the "conveyor belt"), shape ``(B, H)``.
    """

    h: Tensor
    c: Tensor


@runtime_checkable
class Cell(Protocol):
    """Structural type of a recurrent cell (see the module docstring)."""

    input_size: int
    output_size: int

    def init_state(
        self, batch_size: int, *, device: Device = None, dtype: DType = None
    ) -> State: ...

    def __call__(self, x: Tensor, state: State) -> tuple[Tensor, State]: ...


class LinearCoefficients(NamedTuple):
    r"""The coefficients of a state update that is linear in the state.

    :math:`h_t = a_t \odot h_{t-1} + b_t`, element by element.

    Attributes:
        a: the weight of the previous state, ``(..., H)``; in ``[0, 1]`` for the
            built-in cells, so that the state never grows.
        b: what the step adds, ``(..., H)``.
    """

    a: Tensor
    b: Tensor


@runtime_checkable
class LinearCell(Protocol):
    """A cell linear in its one-tensor state: the scan engine's protocol.

    ``coefficients(x)`` takes a whole sequence ``x`` ``(T, B, I)`` (any leading
    dimensions) and returns :class:`LinearCoefficients` ``(T, B, H)``; its step must be
    ``h_t = a_t ⊙ h_{t-1} + b_t`` with those coefficients, and its output ``h_t``.
    """

    input_size: int
    output_size: int

    def coefficients(self, x: Tensor) -> LinearCoefficients: ...


CellFactory: TypeAlias = Callable[[int], Cell]
"""A callable that builds a cell for a given input size, e.g. ``lambda n: LSTMCell(n, 64)``."""


def map_state(fn: Callable[..., Tensor], *states: State) -> State:
    """Apply ``fn`` leaf by leaf to one or more states of the same structure.

    Arguments:
        fn: called with the corresponding tensor of each state.
        states: tensors, or ``NamedTuple``/tuples of tensors (nested is fine).

    Returns:
        A state of the same structure (the same ``NamedTuple`` type).
    """
    first = states[0]
    if isinstance(first, Tensor):
        return fn(*states)
    if isinstance(first, tuple):
        fields = [map_state(fn, *parts) for parts in zip(*states, strict=True)]
        return type(first)(*fields) if hasattr(first, "_fields") else tuple(fields)
    raise TypeError(
        f"a state must be a Tensor or a NamedTuple of Tensors, got {type(first).__name__}"
    )


def state_leaves(state: State) -> list[Tensor]:
    """The tensors of a state, in field order."""
    if isinstance(state, Tensor):
        return [state]
    if isinstance(state, tuple):
        return [leaf for part in state for leaf in state_leaves(part)]
    raise TypeError(
        f"a state must be a Tensor or a NamedTuple of Tensors, got {type(state).__name__}"
    )


class RecurrentCell(nn.Module):
    """Optional base class for cells: a call takes what a ``torch.nn`` cell takes.

    Subclasses set ``input_size`` and ``output_size`` and implement :meth:`init_state`
    and :meth:`step` (one batched step, state given): that is the protocol, and what
    :class:`rnnkit.Recurrent` runs. Calling the cell (``forward``) runs the same step on
    what ``torch.nn.RNNCell/LSTMCell/GRUCell`` accept:

    - ``state=None``: zeros (:meth:`init_state`);
    - a plain tuple or list for a ``NamedTuple`` state, its fields in order, so torch's
      ``(h, c)`` is ``LSTMState(h, c)``;
    - a 1-D input ``(I,)`` with a state without the batch dimension (``(H,)``, or
      ``None``): an unbatched step, whose output and state come back 1-D too.

    It returns rnnkit's ``(y, new_state)``. With ``torch_compat=True`` it returns what a
    ``torch.nn`` cell returns instead, the new state alone: ``h`` for one-tensor states,
    ``(h, c)`` for an LSTM (an :class:`LSTMState`, which unpacks and indexes as torch's
    tuple does). Only the call changes: ``step`` and :class:`rnnkit.Recurrent` keep the
    protocol, so the same cell still runs in a layer.

    What stays rnnkit's: the call's keywords are ``x`` and ``state`` (torch's ``input``
    and ``hx``: pass them by position, as torch's own code does), the errors are
    rnnkit's, and a cell is no instance of the ``torch.nn`` class it matches.

    Arguments:
        torch_compat: calls return the new state alone, as ``torch.nn``'s cells do.
    """

    input_size: int
    output_size: int
    torch_compat: bool = False

    def __init__(self, *, torch_compat: bool = False) -> None:
        super().__init__()
        self.torch_compat = torch_compat

    def init_state(self, batch_size: int, *, device: Device = None, dtype: DType = None) -> State:
        raise NotImplementedError

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One step on a batch: ``x`` ``(B, input_size)`` → ``(y, new_state)``."""
        raise NotImplementedError

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State] | State:
        """One step on ``x`` ``(B, I)`` or ``(I,)``: ``(y, new_state)``, or with
        ``torch_compat`` the new state alone."""
        return self.returned(*self.checked_step(x, state))

    def checked_step(self, x: Tensor, state: State | None) -> tuple[Tensor, State]:
        """:meth:`step` on what a call accepts: ``x`` checked, the state zeros for ``None``
        or checked and read as this cell's type, a 1-D ``x`` a batch of one."""
        check_cell_input(self, x)
        if x.dim() == 2:
            return self.step(x, self.batch_state(x, state))
        x = x.unsqueeze(0)  # (1, I): an unbatched step is a batch of one
        if state is None:
            state = self.init_state(1, device=x.device, dtype=x.dtype)
        else:
            state = map_state(lambda s: s.unsqueeze(0), check_cell_state(self, state, None))
        y, new_state = self.step(x, state)
        return y.squeeze(0), map_state(lambda s: s.squeeze(0), new_state)

    def batch_state(self, x: Tensor, state: State | None) -> State:
        """The state for a batched step on ``x`` ``(B, I)``: zeros if ``None``, else
        checked and read as this cell's state type (:func:`check_cell_state`)."""
        if state is None:
            return self.init_state(x.shape[0], device=x.device, dtype=x.dtype)
        return check_cell_state(self, state, x.shape[0])

    def returned(self, y: Tensor, state: State) -> tuple[Tensor, State] | State:
        """What a call returns: ``(y, state)``, or with ``torch_compat`` ``state``."""
        return state if self.torch_compat else (y, state)

    def extra_repr(self) -> str:
        return "torch_compat=True" if self.torch_compat else ""


TORCH_WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
"""torch.nn's cell and layer parameter names, in its order (``weight_hr``: LSTM projection)."""


class RNNCellBase(RecurrentCell):
    """The parameters of torch.nn's cells, under its names, shapes, order and initialisation.

    For ``G`` gate blocks of ``H`` units: ``weight_ih`` ``(G·H, I)``, ``weight_hh``
    ``(G·H, R)`` and, with ``bias``, ``bias_ih`` and ``bias_hh`` ``(G·H,)``, where ``R`` is
    the size of the state fed back (``H``, or an LSTM's projection ``P``). They are
    registered in torch's order, so :meth:`reset_parameters` draws the same numbers as
    torch.nn for the same seed. Subclasses set ``gates`` (torch's ``num_chunks``) and call
    :meth:`reset_parameters` once their own parameters exist. A cell whose gates do not
    read the state (``reads_state = False``: minGRU, minLSTM) has neither ``weight_hh``
    nor ``bias_hh``.

    Arguments (in the order of ``torch.nn.RNNCellBase``'s, but for ``num_chunks``):
        input_size: ``I``; hidden_size: ``H``; bias: learn ``b_ih`` and ``b_hh``.
        recurrent_size: ``R`` (default ``H``), also the ``output_size``.
        torch_compat: see :class:`RecurrentCell`.
    """

    gates: ClassVar[int]
    """``G``, the gate blocks stacked in ``weight_ih``."""
    reads_state: ClassVar[bool] = True
    """Whether the gates read ``h_{t-1}`` (then the cell has ``weight_hh``, ``bias_hh``)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool,
        device: Device = None,
        dtype: DType = None,
        *,
        recurrent_size: int | None = None,
        torch_compat: bool = False,
    ) -> None:
        super().__init__(torch_compat=torch_compat)
        factory = {"device": device, "dtype": dtype}
        rows, fed_back = self.gates * hidden_size, recurrent_size or hidden_size
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, fed_back
        self.bias = bias
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size, **factory))
        if self.reads_state:
            self.weight_hh = nn.Parameter(torch.empty(rows, fed_back, **factory))
        self.bias_ih = nn.Parameter(torch.empty(rows, **factory)) if bias else None
        if self.reads_state:
            self.bias_hh = nn.Parameter(torch.empty(rows, **factory)) if bias else None

    def reset_parameters(self) -> None:
        """PyTorch's RNN initialisation: every torch.nn parameter ~ U(−1/√H, 1/√H).

        Keeps the pre-activations of a fresh cell O(1) whatever ``H`` is, and is what
        ``torch.nn.RNN/LSTM/GRU`` use, so an rnnkit model starts where a torch one would.
        """
        bound = 1.0 / self.hidden_size**0.5
        for name in TORCH_WEIGHTS:
            weight = getattr(self, name, None)
            if weight is not None:
                nn.init.uniform_(weight, -bound, bound)

    def init_state(self, batch_size: int, *, device: Device = None, dtype: DType = None) -> Tensor:
        return self.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def zeros(self, *shape: int, device: Device = None, dtype: DType = None) -> Tensor:
        """Zeros of ``shape`` on the parameters' device and dtype unless given."""
        return self.weight_ih.new_zeros(shape, device=device, dtype=dtype)

    def extra_repr(self) -> str:
        parts = ("" if self.bias else "bias=False", super().extra_repr())
        return ", ".join([f"{self.input_size}, {self.hidden_size}", *filter(None, parts)])


class BasicCell(RNNCellBase):
    """An :class:`RNNCellBase` with ``torch.nn.GRUCell``'s constructor, initialised: for
    the cells with no argument and no parameter of their own (GRU, minGRU, minLSTM)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Device = None,
        dtype: DType = None,
        *,
        torch_compat: bool = False,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, device, dtype, torch_compat=torch_compat)
        self.reset_parameters()


def check_sizes(name: str, **sizes: int) -> None:
    """Raise a clear error unless every size is an integer >= 1 (``bool`` is not a size)."""
    for what, value in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}: expected {what} to be an integer >= 1, got {value!r}")


def check_cell_input(cell: RecurrentCell, x: Tensor) -> None:
    """Raise a clear error unless ``x`` is a float ``(B, I)`` or ``(I,)`` tensor."""
    name = type(cell).__name__
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a Tensor input, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name}: expected a floating-point input, got dtype {x.dtype} "
            "(token ids need an embedding layer first)"
        )
    if x.dim() not in (1, 2):
        raise ValueError(
            f"{name}: expected input of shape (batch, {cell.input_size}) or ({cell.input_size},), "
            f"got {x.dim()}-D shape {tuple(x.shape)}"
        )
    if x.shape[-1] != cell.input_size:
        raise ValueError(
            f"{name}: expected input_size={cell.input_size} features in the last dimension, "
            f"got {x.shape[-1]} (input shape {tuple(x.shape)})"
        )


def check_cell_state(cell: RecurrentCell, state: State, batch_size: int | None) -> State:
    """``state`` read as ``cell``'s state type; a clear error unless it matches
    ``cell.init_state(batch_size)`` (``batch_size=None``: unbatched, no batch dimension).

    A plain tuple or list stands for a ``NamedTuple`` state, its fields in order: torch's
    ``(h, c)`` is ``LSTMState(h, c)``.
    """
    name, expected = type(cell).__name__, cell.init_state(batch_size or 1, device="meta")
    state = like_state(state, expected)
    if isinstance(expected, Tensor) != isinstance(state, Tensor):
        kind = "one Tensor" if isinstance(expected, Tensor) else type(expected).__name__
        raise ValueError(f"{name}: expected the state as {kind}, got {type(state).__name__}")
    skip = 0 if batch_size else 1  # unbatched: the shapes without the batch dimension
    want = [tuple(w.shape)[skip:] for w in state_leaves(expected)]
    got = [tuple(g.shape) for g in state_leaves(state)]
    if want != got:
        unbatched = "" if batch_size else " (unbatched, as the 1-D input)"
        raise ValueError(f"{name}: expected state shapes {want}{unbatched}, got {got}")
    return state


def like_state(state: Any, like: State) -> State:
    """``state`` with the ``NamedTuple`` types of ``like`` where it has plain tuples or lists
    of the same length (nested too); anything else unchanged."""
    if isinstance(state, tuple | list) and isinstance(like, tuple) and len(state) == len(like):
        parts = [like_state(part, want) for part, want in zip(state, like, strict=True)]
        return type(like)(*parts) if hasattr(like, "_fields") else tuple(parts)
    return state
