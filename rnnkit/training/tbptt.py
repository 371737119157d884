r"""Truncated backpropagation through time, and state carried across batches.

Full BPTT over a long sequence keeps the graph of every step until the backward pass:
memory grows with the length, and the gradient of the first steps is computed from
the last. *Truncated* BPTT cuts the sequence into windows of ``k`` steps; each window
starts from the previous window's final state *detached*, so its backward stops at the
window's start (Williams & Peng 1990; the course's "propagate back a fixed number of
steps"). The gradient of window :math:`[s, s+k)` is

.. math::
    \frac{\partial L_{[s, s+k)}}{\partial \theta}\Big|_{h_{s-1} \text{ constant}},

and memory stays flat however long the sequence is.

Three pieces, depending only on torch (and Lightning by duck typing):

* :class:`TruncatedBPTT` — windows of a long batch, a loop that carries detached state
  (:meth:`~TruncatedBPTT.run`), and the Lightning manual-optimisation step
  (:meth:`~TruncatedBPTT.manual_step`).
* :class:`WindowedLoader` — the Lightning *automatic*-optimisation pattern: each window is
  its own batch, so Lightning takes one optimiser step per window.
* :class:`StatefulCarry` — state carried across consecutive batches of a stream (Keras's
  ``stateful=True``), with an explicit reset and a clear policy when the batch size
  changes.

Lightning 1.x had ``Trainer(truncated_bptt_steps=k)``: it split each batch along time,
called ``training_step(split, batch_idx, hiddens)`` per split and stepped the optimiser
after each. Lightning 2 removed it (Lightning#16172). The two replacements here do the
same: manual optimisation steps per window inside ``training_step``; automatic
optimisation moves the windows into the data. (A loop of ``backward`` calls inside an
automatic ``training_step`` does not work: Lightning zeroes the gradients *after*
``training_step`` returns and before its own backward.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from rnnkit.cells.base import State, map_state, state_leaves

__all__ = [
    "StatefulCarry",
    "TruncatedBPTT",
    "Window",
    "WindowedLoader",
    "detach_state",
    "time_windows",
]

BATCH_CHANGE_POLICIES = ("error", "reset", "resize")


def detach_state(state: State | None) -> State | None:
    """The state cut from its graph (``None`` stays ``None``): the next window's start.

    Detaching, not ``retain_graph=True``, is what keeps memory flat: the previous
    window's graph is freed after its backward, and nothing refers to it any more.
    """
    return None if state is None else map_state(lambda s: s.detach(), state)


class Window(NamedTuple):
    """One window of ``k`` steps of a batch (a NamedTuple, so Lightning moves it to a device).

    Attributes:
        tensors: the batch's tensors, each sliced to steps ``[start, stop)`` of its time
            dimension.
        lengths: valid steps of each sequence *within* this window ``(B,)`` (``0`` for a
            sequence that already ended), or ``None``.
        index: the window's number within its batch.
        start, stop: the window's steps in the batch.
        first: the window starts its batch: reset the carried state before it.
        last: the window ends its batch.
    """

    tensors: tuple[Tensor, ...]
    lengths: Tensor | None
    index: int
    start: int
    stop: int
    first: bool
    last: bool


def time_windows(
    *tensors: Tensor,
    k: int,
    batch_first: bool = False,
    lengths: Tensor | Sequence[int] | None = None,
) -> Iterator[Window]:
    """Cut tensors that share a time dimension into consecutive windows of ``k`` steps.

    Arguments:
        tensors: inputs and targets, ``(T, B, ...)`` (``(B, T, ...)`` with ``batch_first``).
        k: window length (the last window may be shorter).
        batch_first: the time dimension is 1 instead of 0.
        lengths: ``(B,)`` valid lengths of a padded batch; each window gets its own.

    Yields:
        :class:`Window` s in time order. Slices are views, no copies.
    """
    _check_k(k)
    if not tensors:
        raise ValueError("time_windows: expected at least one tensor to cut into windows")
    dim = 1 if batch_first else 0
    steps = _common_steps(tensors, dim)
    lengths = None if lengths is None else torch.as_tensor(lengths)
    count = math.ceil(steps / k)
    for index in range(count):
        start, stop = index * k, min(steps, (index + 1) * k)
        window_lengths = None
        if lengths is not None:
            window_lengths = (lengths - start).clamp(0, stop - start)
        yield Window(
            tuple(t.narrow(dim, start, stop - start) for t in tensors),
            window_lengths,
            index,
            start,
            stop,
            index == 0,
            index == count - 1,
        )


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"truncated BPTT: expected a window length k >= 1, got {k!r}")


def _common_steps(tensors: Sequence[Tensor], dim: int) -> int:
    shapes = [tuple(t.shape) for t in tensors]
    if any(t.dim() <= dim for t in tensors):
        raise ValueError(
            f"truncated BPTT: every tensor needs a time dimension {dim}, got shapes {shapes}"
        )
    steps = {t.shape[dim] for t in tensors}
    if len(steps) != 1:
        raise ValueError(
            f"truncated BPTT: tensors must have the same number of steps in dimension {dim}, "
            f"got shapes {shapes}"
        )
    return steps.pop()


WindowStep = Callable[[Window, Any], tuple[Tensor, Any]]
"""``(window, state or None) -> (loss, new_state)``: one window's forward pass."""


class TruncatedBPTT:
    """Run a model over a long batch in windows of ``k`` steps, carrying detached state.

    Arguments:
        k: window length in steps (the course's "usually 5"; tens to hundreds in practice).
        batch_first: the batch's tensors are ``(B, T, ...)``.

    Example (a plain PyTorch loop)::

        tbptt = TruncatedBPTT(k=20, batch_first=True)

        def window_loss(window, state):
            x, y = window.tensors
            out, state = lstm(x, state, lengths=window.lengths)
            return criterion(head(out).flatten(0, 1), y.flatten()), state

        for window, loss in tbptt.run(window_loss, x, y):
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        final_state = tbptt.state  # detached
    """

    def __init__(self, k: int, *, batch_first: bool = False) -> None:
        _check_k(k)
        self.k, self.batch_first = k, batch_first
        self.state: Any = None

    def windows(
        self, *tensors: Tensor, lengths: Tensor | Sequence[int] | None = None
    ) -> Iterator[Window]:
        """The windows of one batch (see :func:`time_windows`)."""
        return time_windows(*tensors, k=self.k, batch_first=self.batch_first, lengths=lengths)

    def run(
        self,
        step: WindowStep,
        *tensors: Tensor,
        state: Any = None,
        lengths: Tensor | Sequence[int] | None = None,
    ) -> Iterator[tuple[Window, Tensor]]:
        """For each window: ``loss, state = step(window, state)``; yield ``(window, loss)``.

        The caller runs ``loss.backward()`` (and the optimiser) in the loop body; the
        state is detached before the next window, so each backward stops at its
        window's start. After the loop, :attr:`state` holds the final state, detached.

        Arguments:
            step: one window's forward pass, ``(window, state) -> (loss, new_state)``.
            tensors: the batch's tensors, cut along time.
            state: the state before the first window (``None``: the model's zeros).
            lengths: valid lengths of a padded batch.
        """
        for window in self.windows(*tensors, lengths=lengths):
            loss, state = step(window, state)
            yield window, loss
            state = detach_state(state)
        self.state = state

    def manual_step(
        self,
        module: Any,
        step: WindowStep,
        *tensors: Tensor,
        state: Any = None,
        lengths: Tensor | Sequence[int] | None = None,
        optimizer: Any = None,
    ) -> Tensor:
        """A Lightning ``training_step`` body with manual optimisation: one step per window.

        For each window: ``zero_grad``, the window's forward, ``manual_backward``,
        ``step`` (Lightning 1.x's ``truncated_bptt_steps`` behaviour).

        Arguments:
            module: the ``LightningModule`` (``automatic_optimization = False``).
            step: ``(window, state) -> (loss, new_state)``.
            tensors: the batch's tensors.
            state: the state before the first window.
            lengths: valid lengths of a padded batch.
            optimizer: defaults to ``module.optimizers()``.

        Returns:
            The mean window loss, detached (for logging).

        Example::

            def training_step(self, batch, batch_idx):
                loss = self.tbptt.manual_step(self, self.window_loss, *batch)
                self.log("train_loss", loss)
        """
        if getattr(module, "automatic_optimization", False):
            raise RuntimeError(
                "TruncatedBPTT.manual_step needs manual optimisation: set "
                "self.automatic_optimization = False in the LightningModule, or use "
                "WindowedLoader for automatic optimisation"
            )
        optimizer = module.optimizers() if optimizer is None else optimizer
        losses = []
        for _, loss in self.run(step, *tensors, state=state, lengths=lengths):
            optimizer.zero_grad()
            module.manual_backward(loss)
            optimizer.step()
            losses.append(loss.detach())
        return torch.stack(losses).mean()


class WindowedLoader:
    """Each batch of ``loader``, cut into windows of ``k`` steps: one batch per window.

    The Lightning automatic-optimisation pattern for truncated BPTT: Lightning takes one
    optimiser step per ``training_step`` call, so the windows become the batches and the
    module carries the state between calls (reset at ``window.first``). Pass it to
    ``trainer.fit(model, train_dataloaders=WindowedLoader(loader, k=20))``.

    Arguments:
        loader: an iterable of batches; a batch is a tensor or a tuple/list of tensors.
        k: window length.
        batch_first: the batch's tensors are ``(B, T, ...)``.
        lengths_index: position of a ``(B,)`` lengths tensor in each batch (it is turned
            into each window's ``lengths`` instead of being cut), or ``None``.

    Example::

        class LM(L.LightningModule):
            def __init__(self):
                super().__init__()
                self.lstm, self.head = rnnkit.LSTM(32, 64, batch_first=True), nn.Linear(64, 100)
                self.carry = StatefulCarry()

            def training_step(self, window, batch_idx):
                if window.first:
                    self.carry.reset()
                x, y = window.tensors
                out, state = self.lstm(x, self.carry.get(x.shape[0]))
                self.carry.update(state)
                return F.cross_entropy(self.head(out).flatten(0, 1), y.flatten())
    """

    def __init__(
        self,
        loader: Iterable[Any],
        k: int,
        *,
        batch_first: bool = False,
        lengths_index: int | None = None,
    ) -> None:
        _check_k(k)
        self.loader, self.k, self.batch_first = loader, k, batch_first
        self.lengths_index = lengths_index

    def __iter__(self) -> Iterator[Window]:
        for batch in self.loader:
            tensors = [batch] if isinstance(batch, Tensor) else list(batch)
            lengths = None
            if self.lengths_index is not None:
                lengths = tensors.pop(self.lengths_index)
            yield from time_windows(
                *tensors, k=self.k, batch_first=self.batch_first, lengths=lengths
            )


class StatefulCarry:
    """A layer's state carried across consecutive batches of a stream, detached.

    What Keras calls ``stateful=True``: row ``b`` of batch ``n + 1`` continues row ``b``
    of batch ``n``. Unlike Keras, the batch size need not be fixed when the layer is
    built, the state is reset explicitly (:meth:`reset`, whole or per row), and
    separate streams (train and validation, say) are kept apart by ``key``.

    Arguments:
        on_batch_change: what :meth:`get` does when the batch size differs from the
            carried state's: ``"error"`` (default; says both sizes), ``"reset"`` (start
            from the model's initial state), or ``"resize"`` (keep the first rows, which
            continue their streams, and start any new rows from zeros — the usual case of
            a shorter last batch).
        batch_dim: the batch dimension of the state's tensors: 1 for the drop-in layers'
            and :class:`rnnkit.Recurrent`'s ``(L*D, B, H)`` states, 0 for a cell's.

    Example::

        carry = StatefulCarry()
        for x in stream:  # consecutive chunks, (T, B, I)
            out, state = lstm(x, carry.get(x.shape[1]))
            carry.update(state)
        carry.reset()  # a new stream begins
    """

    def __init__(self, *, on_batch_change: str = "error", batch_dim: int = 1) -> None:
        if on_batch_change not in BATCH_CHANGE_POLICIES:
            raise ValueError(
                f"StatefulCarry: on_batch_change must be one of {BATCH_CHANGE_POLICIES}, "
                f"got {on_batch_change!r}"
            )
        self.on_batch_change, self.batch_dim = on_batch_change, batch_dim
        self._states: dict[Hashable, Any] = {}

    def get(self, batch_size: int, *, key: Hashable = None) -> Any:
        """The carried state for a batch of ``batch_size``, or ``None`` (start fresh)."""
        state = self._states.get(key)
        if state is None:
            return None
        carried = state_leaves(state)[0].shape[self.batch_dim]
        if carried == batch_size:
            return state
        if self.on_batch_change == "error":
            raise ValueError(
                f"StatefulCarry: the carried state is for a batch of {carried} sequences, "
                f"got a batch of {batch_size}; call reset() between streams, or choose "
                "on_batch_change='resize' or 'reset'"
            )
        if self.on_batch_change == "reset":
            del self._states[key]
            return None
        return map_state(lambda s: self._resize(s, batch_size), state)

    def _resize(self, s: Tensor, batch_size: int) -> Tensor:
        kept = s.narrow(self.batch_dim, 0, min(batch_size, s.shape[self.batch_dim]))
        missing = batch_size - kept.shape[self.batch_dim]
        if missing <= 0:
            return kept
        shape = list(s.shape)
        shape[self.batch_dim] = missing
        return torch.cat([kept, s.new_zeros(shape)], dim=self.batch_dim)

    def update(self, state: Any, *, key: Hashable = None) -> None:
        """Keep ``state`` (detached) for the next batch."""
        self._states[key] = detach_state(state)

    def reset(self, key: Hashable = None, *, rows: Tensor | Sequence[int] | None = None) -> None:
        """Forget the carried state.

        Arguments:
            key: which stream; ``None`` (the default key) — call :meth:`reset_all` for every
                key.
            rows: only these rows (sequences that ended; their rows start new ones from
                zeros), as indices or a ``(B,)`` bool mask.
        """
        if rows is None:
            self._states.pop(key, None)
            return
        state = self._states.get(key)
        if state is None:
            return
        index = torch.as_tensor(rows)
        if index.dtype == torch.bool:
            index = index.nonzero().flatten()
        self._states[key] = map_state(
            lambda s: s.index_fill(self.batch_dim, index.to(s.device), 0.0), state
        )

    def reset_all(self) -> None:
        """Forget every stream's state."""
        self._states.clear()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._states
