"""The random masks of the noisy variant options, drawn once per sequence.

:func:`sample_masks` is the one helper every engine takes them from: a layer (or a
variant cell's :meth:`~rnnkit.cells.variants.VariantCell.sample_masks`) draws them from
the torch RNG before any engine runs, so the loop engine and the BPTT engine see the
same masks for the same seed.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from rnnkit.cells.options import GATES, VariantOptions


class VariantMasks(NamedTuple):
    """The random masks of one sequence (or one step) of a variant cell.

    Attributes:
        input: variational dropout mask on ``x``, ``(B, I)``, values 0 or ``1/(1-p)``.
        recurrent: variational dropout mask on ``h_{t-1}`` entering ``W_hh``, ``(B, H)``.
        weight: DropConnect mask on ``W_hh``, ``(G·H, H)``.
        zoneout_h: keep-previous mask for ``h``: ``(T, B, H)`` of 0/1 in training
            (``(B, H)`` for one step), or the rate ``z`` as a float in eval mode.
        zoneout_c: the same for the LSTM cell state ``c``.

    A ``None`` field means "no such noise".
    """

    input: Tensor | None = None
    recurrent: Tensor | None = None
    weight: Tensor | None = None
    zoneout_h: Tensor | float | None = None
    zoneout_c: Tensor | float | None = None

    @property
    def num_steps(self) -> int | None:
        """``T`` of the per-step zoneout masks, or ``None`` if no mask varies with time."""
        for z in (self.zoneout_h, self.zoneout_c):
            if isinstance(z, Tensor):
                return z.shape[0]
        return None

    def at(self, t: int) -> VariantMasks:
        """The masks of step ``t`` (per-step zoneout masks indexed, the rest shared)."""
        return self._replace(
            zoneout_h=_index(self.zoneout_h, t), zoneout_c=_index(self.zoneout_c, t)
        )


def _index(z: Tensor | float | None, t: int) -> Tensor | float | None:
    return z[t] if isinstance(z, Tensor) else z


def _dropout_mask(
    shape: tuple[int, ...], p: float, like: Tensor, generator: torch.Generator | None
) -> Tensor:
    return like.new_empty(shape).bernoulli_(1.0 - p, generator=generator).div_(1.0 - p)


def sample_masks(
    options: VariantOptions,
    *,
    family: str,
    batch_size: int,
    num_steps: int,
    input_size: int,
    hidden_size: int,
    training: bool,
    like: Tensor,
    generator: torch.Generator | None = None,
) -> VariantMasks:
    """Draw the masks of one sequence: the one helper every engine takes them from.

    Draw order (fixed, so a seed fixes every mask): input, recurrent, weight, zoneout
    ``h``, zoneout ``c``. In eval mode nothing is drawn: dropout is off and zoneout
    masks are the rates themselves (the expectation form).

    Arguments:
        options: the cell's options.
        family: ``"lstm"``, ``"gru"`` or ``"rnn"``.
        batch_size, num_steps, input_size, hidden_size: ``B``, ``T``, ``I``, ``H``.
        training: the module's mode.
        like: a tensor whose dtype and device the masks take.
        generator: an optional ``torch.Generator`` instead of the global RNG.

    Returns:
        A :class:`VariantMasks`.
    """
    o = options
    if not training:
        return VariantMasks(zoneout_h=o.zoneout_h or None, zoneout_c=o.zoneout_c or None)
    b, h = batch_size, hidden_size
    rows = GATES[family] * h
    return VariantMasks(
        input=_dropout_mask((b, input_size), o.input_dropout, like, generator)
        if o.input_dropout
        else None,
        recurrent=_dropout_mask((b, h), o.recurrent_dropout, like, generator)
        if o.recurrent_dropout
        else None,
        weight=_dropout_mask((rows, h), o.weight_drop, like, generator) if o.weight_drop else None,
        zoneout_h=like.new_empty(num_steps, b, h).bernoulli_(o.zoneout_h, generator=generator)
        if o.zoneout_h
        else None,
        zoneout_c=like.new_empty(num_steps, b, h).bernoulli_(o.zoneout_c, generator=generator)
        if o.zoneout_c
        else None,
    )
