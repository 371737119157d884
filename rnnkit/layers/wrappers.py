"""Keras-style conveniences: ``TimeDistributed`` and picking the last valid step."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from rnnkit.layers.sequence import check_lengths


class TimeDistributed(nn.Module):
    """Apply a module to every time step independently (Keras's ``TimeDistributed``).

    The time steps are folded into the batch, the module runs once on
    ``(B*T, ...)``, and the result is unfolded back, so any module that takes a
    batch works per step (a ``Linear`` head, a small CNN on video frames, ...).

    Arguments:
        module: the module to apply per step.
        batch_first: the input is ``(B, T, ...)`` (default, as in Keras);
            ``False`` for ``(T, B, ...)``.

    Shape:
        ``(B, T, *in)`` → ``(B, T, *out)``. A ``PackedSequence`` is accepted too: the
        module runs on its packed data and the result keeps the same packing.

    Example::

        >>> head = TimeDistributed(nn.Linear(64, 1))
        >>> head(torch.randn(8, 20, 64)).shape
        torch.Size([8, 20, 1])
    """

    def __init__(self, module: nn.Module, *, batch_first: bool = True) -> None:
        super().__init__()
        self.module, self.batch_first = module, batch_first

    def forward(self, x: Tensor | PackedSequence) -> Tensor | PackedSequence:
        if isinstance(x, PackedSequence):
            return x._replace(data=self.module(x.data))
        if x.dim() < 3:
            layout = "(B, T, ...)" if self.batch_first else "(T, B, ...)"
            raise ValueError(
                f"TimeDistributed: expected an input of at least 3 dimensions {layout}, "
                f"got {x.dim()}-D shape {tuple(x.shape)}"
            )
        lead = x.shape[:2]
        y = self.module(x.reshape(lead[0] * lead[1], *x.shape[2:]))  # (B*T, ...)
        return y.reshape(*lead, *y.shape[1:])

    def extra_repr(self) -> str:
        return "" if self.batch_first else "batch_first=False"


def last_step(
    output: Tensor | PackedSequence,
    lengths: Tensor | Sequence[int] | None = None,
    *,
    batch_first: bool = False,
    bidirectional: bool = False,
) -> Tensor:
    """Each sequence's final output in a padded batch (not ``out[:, -1]``).

    With padding, ``out[:, -1]`` is a padded (zero) step for every sequence shorter
    than the batch's longest. This picks step ``lengths[b] - 1`` of sequence ``b``.
    For a bidirectional output ``[forward; backward]`` the backward direction's final
    output is at step 0, so that half is taken from there.

    Arguments:
        output: ``(T, B, F)`` (``(B, T, F)`` with ``batch_first``) or a ``PackedSequence``.
        lengths: ``(B,)`` valid lengths; ``None`` means every sequence is full length
            (or the lengths of a ``PackedSequence``).
        batch_first: the layout of a tensor ``output``.
        bidirectional: ``output``'s features are ``[forward (F/2); backward (F/2)]``.

    Returns:
        ``(B, F)``; zeros for a zero-length sequence.

    Example::

        >>> out, _ = rnnkit.LSTM(8, 16, batch_first=True)(x, lengths=lengths)
        >>> features = last_step(out, lengths, batch_first=True)  # (B, 16)
    """
    if isinstance(output, PackedSequence):
        if lengths is not None:
            raise ValueError(
                "last_step: a PackedSequence carries its own lengths; do not pass lengths"
            )
        output, lengths = pad_packed_sequence(output)
        batch_first = False
    if output.dim() != 3:
        raise ValueError(
            f"last_step: expected a 3-D output, got {output.dim()}-D shape {tuple(output.shape)}"
        )
    seq = output.transpose(0, 1) if batch_first else output  # (T, B, F)
    steps, batch, features = seq.shape
    if bidirectional and features % 2:
        raise ValueError(
            f"last_step: a bidirectional output needs an even feature size, got {features}"
        )
    if lengths is None:
        last = seq[-1]
    else:
        lengths = check_lengths(lengths, steps, batch, "last_step").to(seq.device)
        index = (lengths - 1).clamp(min=0)
        last = seq[index, torch.arange(batch, device=seq.device)]  # (B, F)
        last = torch.where((lengths > 0).unsqueeze(1), last, 0.0)
    if bidirectional:
        half = features // 2
        last = torch.cat([last[:, :half], seq[0, :, half:]], dim=-1)
    return last
