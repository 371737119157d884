"""Turning what a user passes to a layer into one time-major batch, and back.

Public: the layers use all of it; models that take ``lengths`` check them with
:func:`check_lengths`, so a bad length reads the same wherever it is caught.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnkit.cells.base import State, map_state, state_leaves


class InputInfo(NamedTuple):
    """What a validated layer input looks like (computed without copying it).

    Attributes:
        batch_size: ``B`` (1 for an unbatched input).
        num_steps: ``T`` (the longest sequence of a ``PackedSequence``).
        unbatched: the input was one ``(T, I)`` sequence.
        packed: the input was a ``PackedSequence``.
        lengths: validated int64 lengths ``(B,)`` on the CPU (where packing needs them
            and where checking them costs no device sync), or ``None``.
    """

    batch_size: int
    num_steps: int
    unbatched: bool
    packed: bool
    lengths: Tensor | None


class SequenceBatch(NamedTuple):
    """A layer's input in the one layout the loop engine uses.

    Attributes:
        x: time-major input ``(T, B, I)``.
        lengths: valid length of each sequence, ``(B,)`` int64 on ``x.device``, or ``None``.
        packed: the original ``PackedSequence``, to pack the output the same way.
        unbatched: the input was one ``(T, I)`` sequence.
        batch_first: the caller's layout for tensors.
    """

    x: Tensor
    lengths: Tensor | None
    packed: PackedSequence | None
    unbatched: bool
    batch_first: bool

    @property
    def batch_size(self) -> int:
        return self.x.shape[1]


def inspect_input(
    input: Tensor | PackedSequence,
    lengths: Tensor | Sequence[int] | None,
    *,
    batch_first: bool,
    input_size: int,
    name: str,
    dtype: torch.dtype | None = None,
) -> InputInfo:
    """Validate a layer input (and its ``lengths``) with clear errors.

    Arguments:
        input: ``(T, B, I)``, ``(B, T, I)`` with ``batch_first``, ``(T, I)`` unbatched,
            or a ``PackedSequence``.
        lengths: valid lengths ``(B,)`` of a padded batch, or ``None``.
        batch_first: the caller's layout.
        input_size: the expected number of features ``I``.
        name: the layer's name, for error messages.
        dtype: the layer's parameter dtype; the input must match it.

    Returns:
        An :class:`InputInfo`.
    """
    if isinstance(input, PackedSequence):
        if lengths is not None:
            raise ValueError(f"{name}: pass either a PackedSequence or lengths, not both")
        _check_features(input.data, input_size, name, dtype, expected_dims=(2,))
        sizes = input.batch_sizes
        return InputInfo(int(sizes[0]), sizes.numel(), False, True, None)
    _check_features(input, input_size, name, dtype, expected_dims=(2, 3))
    unbatched = input.dim() == 2
    if unbatched:
        if lengths is not None:
            raise ValueError(
                f"{name}: lengths apply to a batched 3-D input; an unbatched (T, I) "
                f"input is one sequence of length T={input.shape[0]}"
            )
        num_steps, batch = input.shape[0], 1
    else:
        num_steps, batch = (input.shape[1], input.shape[0]) if batch_first else input.shape[:2]
    if num_steps == 0:
        raise ValueError(
            f"{name}: expected at least one time step, got input shape {tuple(input.shape)}"
        )
    if lengths is not None:
        lengths = check_lengths(lengths, num_steps, batch, name)
    return InputInfo(batch, num_steps, unbatched, False, lengths)


def prepare_input(
    input: Tensor | PackedSequence, info: InputInfo, *, batch_first: bool
) -> SequenceBatch:
    """Bring a validated input to the time-major layout of :class:`SequenceBatch`."""
    if isinstance(input, PackedSequence):
        x, packed_lengths = pad_packed_sequence(input)  # (T, B, I), original batch order
        return SequenceBatch(x, packed_lengths.to(x.device), input, False, batch_first)
    if info.unbatched:
        x = input.unsqueeze(1)  # (T, 1, I)
    elif batch_first:
        x = input.transpose(0, 1)  # (B, T, I) -> (T, B, I)
    else:
        x = input
    lengths = None if info.lengths is None else info.lengths.to(x.device, non_blocking=True)
    return SequenceBatch(x, lengths, None, info.unbatched, batch_first)


def _check_features(
    x: Tensor, input_size: int, name: str, dtype: torch.dtype | None, expected_dims: tuple[int, ...]
) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(
            f"{name}: expected a Tensor or PackedSequence input, got {type(x).__name__}"
        )
    if not x.is_floating_point():
        raise TypeError(
            f"{name}: expected a floating-point input, got dtype {x.dtype} "
            "(token ids need an embedding layer first)"
        )
    if x.dim() not in expected_dims:
        wanted = (
            "a 3-D (T, B, I) input ((B, T, I) with batch_first) or a 2-D unbatched (T, I) input"
            if 3 in expected_dims
            else "PackedSequence data of shape (N, I)"
        )
        raise ValueError(f"{name}: expected {wanted}, got {x.dim()}-D shape {tuple(x.shape)}")
    if x.shape[-1] != input_size:
        raise ValueError(
            f"{name}: expected input_size={input_size} features in the last dimension, "
            f"got {x.shape[-1]} (input shape {tuple(x.shape)})"
        )
    if dtype is not None and x.dtype != dtype and not torch.is_autocast_enabled():
        raise TypeError(
            f"{name}: expected input dtype {dtype} (the layer's parameters), got {x.dtype}; "
            f"convert the input with .to({dtype}) or the layer with .to({x.dtype})"
        )


def check_lengths(lengths: Tensor | Sequence[int], num_steps: int, batch: int, name: str) -> Tensor:
    """Validate ``lengths`` against a padded batch of ``num_steps`` steps.

    Returns:
        The lengths as an int64 CPU tensor (on their own device inside ``torch.export``).
    """
    if torch.compiler.is_exporting():
        # A traced graph has no values to check (its lengths are an input of the
        # exported graph, documented there) and must stay on the input's device.
        return torch.as_tensor(lengths).long()
    lengths = torch.as_tensor(lengths).cpu()
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        raise TypeError(f"{name}: expected integer lengths, got dtype {lengths.dtype}")
    if lengths.shape != (batch,):
        raise ValueError(
            f"{name}: expected lengths of shape ({batch},), one per sequence, "
            f"got shape {tuple(lengths.shape)}"
        )
    lengths = lengths.long()
    low, high = (int(v) for v in torch.aminmax(lengths))
    if low < 0:
        raise ValueError(f"{name}: lengths must be >= 0, got {low}")
    if high > num_steps:
        raise ValueError(
            f"{name}: lengths must be <= the number of time steps T={num_steps}, got {high}"
        )
    return lengths


def check_state(
    state: State, expected: list[tuple[int, ...]], name: str, what: str = "initial state"
) -> None:
    """Raise a clear error unless ``state``'s tensors have the ``expected`` shapes."""
    try:
        got = [tuple(t.shape) for t in state_leaves(state)]
    except TypeError as err:
        raise TypeError(f"{name}: {what}: {err}") from None
    if got != expected:
        raise ValueError(f"{name}: expected {what} shapes {expected}, got {got}")


def restore_output(output: Tensor, batch: SequenceBatch) -> Tensor | PackedSequence:
    """Time-major ``(T, B, F)`` output back to the caller's layout."""
    if batch.packed is not None:
        return repack(output, batch.packed)
    if batch.unbatched:
        return output.squeeze(1)
    return output.transpose(0, 1) if batch.batch_first else output


def restore_last(last: Tensor, batch: SequenceBatch) -> Tensor:
    """A ``(B, F)`` per-sequence output back to the caller's layout."""
    return last.squeeze(0) if batch.unbatched else last


def restore_final(final: State, batch: SequenceBatch) -> State:
    """Final states ``(L*D, B, ...)``: drop the batch dim for an unbatched input."""
    return map_state(lambda s: s.squeeze(1), final) if batch.unbatched else final


def restore_states(states: State, batch: SequenceBatch) -> State:
    """Per-step states ``(L*D, T, B, ...)`` → ``(L*D, B, T, ...)`` with ``batch_first``."""
    if batch.unbatched:
        return map_state(lambda s: s.squeeze(2), states)
    if batch.batch_first:
        return map_state(lambda s: s.transpose(1, 2), states)
    return states


def prepare_state(state: State, unbatched: bool) -> State:
    """A caller's initial state ``(L*D, [B,] ...)`` → batched ``(L*D, B, ...)``."""
    return map_state(lambda s: s.unsqueeze(1), state) if unbatched else state


def repack(output: Tensor, like: PackedSequence) -> PackedSequence:
    """Pack a time-major padded ``(T, B, F)`` output exactly as ``like`` is packed."""
    sorted_output = (
        output if like.sorted_indices is None else output.index_select(1, like.sorted_indices)
    )
    lengths = _lengths_from_batch_sizes(like.batch_sizes)
    data = pack_padded_sequence(sorted_output, lengths, enforce_sorted=True).data
    return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)


def _lengths_from_batch_sizes(batch_sizes: Tensor) -> Tensor:
    """Sorted (descending) sequence lengths from a PackedSequence's ``batch_sizes``."""
    batch = int(batch_sizes[0])
    lanes = torch.arange(batch).unsqueeze(1)  # (B, 1)
    return (lanes < batch_sizes.unsqueeze(0)).sum(1)  # (B,)
