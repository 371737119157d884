"""Streaming: feed a layer one step or one chunk at a time, carrying its state.

A unidirectional recurrent layer's output at step ``t`` depends only on steps ``≤ t``, so
a sequence can arrive in pieces: run each piece with the state the previous one left,
and the outputs are the full-sequence call's (tests hold them equal for every layer type,
engine and variant). :class:`Stream` keeps that state between calls::

    stream = Stream(layer)          # any layer called as layer(x, state) -> (out, state)
    y_t = stream.step(x_t)          # (B, I) -> (B, O)
    y = stream.chunk(x)             # (B, T', I) -> (B, T', O) (batch_first layers)

A bidirectional layer cannot stream: its backward direction starts at the *end* of the
sequence. Noise drawn per call (variational dropout, zoneout, dropout between layers in
training mode) would also differ from one full-sequence call, so a layer that draws it is
refused in training mode; in eval mode zoneout is its expectation and streams exactly.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from rnnkit.cells.base import State


def streaming_refusal(layer: nn.Module) -> str | None:
    """Why ``layer`` cannot stream (with the fix), or ``None`` when it can."""
    name = type(layer).__name__
    if getattr(layer, "bidirectional", False):
        return (
            f"{name}: a bidirectional layer cannot stream: its backward direction reads the "
            "sequence from its end; stream a unidirectional layer, or run the whole sequence"
        )
    if layer.training and _draws_noise(layer):
        return (
            f"{name}: in training mode this layer draws dropout/zoneout masks per call, so "
            "chunks would not match one full-sequence call; call layer.eval() to stream"
        )
    return None


def _draws_noise(layer: nn.Module) -> bool:
    variant = getattr(layer, "variant", None)
    cells = getattr(layer, "cells", ())
    stochastic = bool(variant is not None and variant.stochastic)
    stochastic |= any(
        getattr(c, "options", None) is not None and c.options.stochastic for c in cells
    )
    return stochastic or (getattr(layer, "num_layers", 1) > 1 and getattr(layer, "dropout", 0) > 0)


class Stream:
    """A layer fed piece by piece, carrying its state between calls.

    Arguments:
        layer: a unidirectional layer called as ``layer(x, state, lengths=...)`` returning
            ``(output, final_state)``: :class:`rnnkit.RNN`/``LSTM``/``GRU``,
            :class:`rnnkit.Recurrent`, or any layer that follows that call.
        state: the state to start from (leaves ``(L, B, H)``); ``None`` for the layer's
            initial state (zeros).

    Attributes:
        state: the state after the last step fed (``None`` before the first call).

    Shape:
        :meth:`step`: ``(B, I)`` → ``(B, O)``. :meth:`chunk`: the layer's own layout,
        ``(B, T', I)`` with ``batch_first`` (else ``(T', B, I)``) → the same with ``O``.

    Example::

        >>> layer = rnnkit.LSTM(8, 16, batch_first=True).eval()
        >>> stream = Stream(layer)
        >>> first = stream.chunk(x[:, :5])          # (B, 5, 16)
        >>> nxt = stream.step(x[:, 5])              # (B, 16), as layer(x)[0][:, 5]
    """

    def __init__(self, layer: nn.Module, state: State | None = None) -> None:
        refusal = streaming_refusal(layer)
        if refusal is not None:
            raise ValueError(refusal)
        self.layer = layer
        self.state: State | None = state
        self.time_dim = 1 if getattr(layer, "batch_first", False) else 0

    def step(self, x: Tensor, *, valid: Tensor | None = None) -> Tensor:
        """Feed one step ``x (B, I)``; returns its output ``(B, O)``.

        Arguments:
            x: the step's input.
            valid: ``(B,)`` bool, ``False`` for sequences that have ended: their state
                is kept and their output is zero (``None``: all valid).
        """
        if x.dim() != 2:
            raise ValueError(
                f"Stream.step: expected one step of shape (B, I), got shape {tuple(x.shape)}"
            )
        lengths = None if valid is None else valid.long()
        return self.chunk(x.unsqueeze(self.time_dim), lengths=lengths).select(self.time_dim, 0)

    def chunk(self, x: Tensor, *, lengths: Tensor | None = None) -> Tensor:
        """Feed the next ``T'`` steps at once; returns their outputs.

        Arguments:
            x: ``(B, T', I)`` with a ``batch_first`` layer, else ``(T', B, I)``.
            lengths: ``(B,)`` valid steps of each sequence in this chunk (a sequence that
                ends inside it keeps the state of its last valid step); ``None``: all ``T'``.
        """
        extra: dict[str, Any] = {} if lengths is None else {"lengths": lengths}
        out, self.state = self.layer(x, self.state, **extra)
        return out

    def reset(self, state: State | None = None) -> None:
        """Start a new sequence from ``state`` (``None``: the initial state)."""
        self.state = state
