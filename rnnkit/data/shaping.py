"""Shaping: numericalisation, Keras-style padding and one-hot encoding.

``pad_sequences`` and ``to_categorical`` follow Keras's semantics (the course's Keras
examples run unchanged); :class:`Ragged` keeps variable-length id sequences in one flat
array with offsets, so 50,000 reviews cost one ``int32`` array instead of millions of
Python ints.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt
import torch

from rnnkit.data.vocab import Vocab

__all__ = ["Ragged", "numericalize", "pad_sequences", "to_categorical"]

Side = Literal["pre", "post"]


class Ragged:
    """Variable-length integer sequences in one flat array.

    Sequence ``i`` is ``values[offsets[i]:offsets[i + 1]]``.

    Arguments:
        values: ``(total,)`` the concatenated sequences.
        offsets: ``(n + 1,)`` non-decreasing, ``offsets[0] == 0``, ``offsets[-1] == total``.

    Example::

        >>> r = Ragged.from_sequences([[5, 6, 7], [8]])
        >>> len(r), r.lengths.tolist(), r[0].tolist()
        (2, [3, 1], [5, 6, 7])
    """

    def __init__(self, values: np.ndarray, offsets: np.ndarray) -> None:
        offsets = np.asarray(offsets, dtype=np.int64)
        if offsets.ndim != 1 or len(offsets) == 0 or offsets[0] != 0:
            raise ValueError("offsets must be a 1-D array starting at 0")
        if offsets[-1] != len(values) or np.any(np.diff(offsets) < 0):
            raise ValueError(
                f"offsets must be non-decreasing and end at len(values)={len(values)}, "
                f"ends at {offsets[-1]}"
            )
        self.values = values
        self.offsets = offsets

    @classmethod
    def from_sequences(cls, sequences: Iterable[Sequence[int]], dtype: Any = np.int64) -> Ragged:
        """Pack Python or NumPy sequences."""
        seqs = list(sequences)
        lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
        values = np.fromiter(chain.from_iterable(seqs), dtype=dtype, count=int(lengths.sum()))
        return cls(values, np.concatenate([[0], np.cumsum(lengths)]))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> np.ndarray:
        return self.values[self.offsets[index] : self.offsets[index + 1]]

    @property
    def lengths(self) -> np.ndarray:
        """``(n,)`` int64 length of every sequence."""
        return np.diff(self.offsets)

    def take(self, indices: Sequence[int] | np.ndarray) -> Ragged:
        """A new :class:`Ragged` with the sequences at ``indices``, in that order."""
        idx = np.asarray(indices, dtype=np.int64)
        lengths = self.lengths[idx]
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        if len(idx) == 0:
            return Ragged(self.values[:0], offsets)
        # Gather every element's flat position in one vectorised step.
        starts = np.repeat(self.offsets[idx] - offsets[:-1], lengths)
        return Ragged(self.values[starts + np.arange(offsets[-1])], offsets)

    def tolist(self) -> list[list[int]]:
        """The sequences as Python lists."""
        return [self[i].tolist() for i in range(len(self))]


def numericalize(
    token_lists: Iterable[Sequence[str]],
    vocab: Vocab,
    *,
    max_length: int | None = None,
    truncating: Side = "post",
    dtype: Any = np.int32,
) -> Ragged:
    """Map tokenised examples to ids, optionally truncated to ``max_length``.

    Arguments:
        token_lists: tokenised examples.
        vocab: unknown tokens get ``vocab.unk_id``.
        max_length: keep at most this many tokens per example.
        truncating: drop tokens from the start (``"pre"``, Keras's default) or the end
            (``"post"``, torchtext's ``fix_length``).
        dtype: of the ids.

    Returns:
        A :class:`Ragged` of ids; ``.lengths`` are the (truncated) lengths.

    Example::

        >>> v = Vocab.build([["a", "b", "b"]])
        >>> numericalize([["b", "a", "x"], ["a"]], v, max_length=2).tolist()
        [[2, 3], [3]]
    """
    if truncating not in ("pre", "post"):
        raise ValueError(f"truncating must be 'pre' or 'post', got {truncating!r}")
    if max_length is not None and max_length < 1:
        raise ValueError(f"max_length must be >= 1 or None, got {max_length}")
    seqs = token_lists if isinstance(token_lists, list) else list(token_lists)
    if max_length is not None:
        cut = slice(None, max_length) if truncating == "post" else slice(-max_length, None)
        seqs = [s[cut] for s in seqs]
    lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
    total = int(lengths.sum())
    values = np.fromiter(vocab.lookup(chain.from_iterable(seqs)), dtype=dtype, count=total)
    return Ragged(values, np.concatenate([[0], np.cumsum(lengths)]))


@overload
def pad_sequences(
    sequences: Iterable[Sequence[Any] | np.ndarray],
    maxlen: int | None = ...,
    dtype: npt.DTypeLike = ...,
    padding: Side = ...,
    truncating: Side = ...,
    value: float = ...,
    *,
    return_lengths: Literal[False] = ...,
) -> np.ndarray: ...


@overload
def pad_sequences(
    sequences: Iterable[Sequence[Any] | np.ndarray],
    maxlen: int | None = ...,
    dtype: npt.DTypeLike = ...,
    padding: Side = ...,
    truncating: Side = ...,
    value: float = ...,
    *,
    return_lengths: Literal[True],
) -> tuple[np.ndarray, np.ndarray]: ...


def pad_sequences(
    sequences: Iterable[Sequence[Any] | np.ndarray],
    maxlen: int | None = None,
    dtype: npt.DTypeLike = "int32",
    padding: Side = "pre",
    truncating: Side = "pre",
    value: float = 0.0,
    *,
    return_lengths: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Pad (and truncate) sequences to one length, with Keras's semantics.

    Same arguments, defaults and result as ``keras.utils.pad_sequences``: sequences
    longer than ``maxlen`` lose values from the start (``truncating="pre"``) or the end
    (``"post"``); shorter ones get ``value`` before (``padding="pre"``) or after
    (``"post"``). Elements may be scalars or arrays of one common shape.

    Arguments:
        sequences: a list of sequences (lists or arrays).
        maxlen: the output length; ``None`` uses the longest sequence.
        dtype: of the output.
        padding, truncating: ``"pre"`` or ``"post"``.
        value: the padding value.
        return_lengths: also return each row's number of real (unpadded) steps.

    Returns:
        ``(N, maxlen, *element_shape)`` array, and with ``return_lengths`` the
        ``(N,)`` int64 lengths.

    Example::

        >>> pad_sequences([[1, 2, 3], [4]], maxlen=2)
        array([[2, 3],
               [0, 4]], dtype=int32)
        >>> pad_sequences([[1, 2, 3], [4]], padding="post", return_lengths=True)[1]
        array([3, 1])
    """
    if padding not in ("pre", "post"):
        raise ValueError(f'padding must be "pre" or "post", got {padding!r}')
    if truncating not in ("pre", "post"):
        raise ValueError(f'truncating must be "pre" or "post", got {truncating!r}')
    seqs = [np.asarray(s) for s in sequences]
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    if maxlen is None:
        maxlen = int(lengths.max()) if len(seqs) else 0
    if maxlen < 0:
        raise ValueError(f"maxlen must be >= 0, got {maxlen}")
    sample_shape = next((s.shape[1:] for s in seqs if len(s)), ())
    out = np.full((len(seqs), maxlen, *sample_shape), value, dtype=dtype)
    kept = np.minimum(lengths, maxlen)
    for i, s in enumerate(seqs):
        k = int(kept[i])
        if k == 0:
            continue
        if s.shape[1:] != sample_shape:
            raise ValueError(
                f"sequence {i} has elements of shape {s.shape[1:]}, expected {sample_shape} "
                "like the first non-empty sequence"
            )
        trunc = s[-k:] if truncating == "pre" else s[:k]
        if padding == "post":
            out[i, :k] = trunc
        else:
            out[i, maxlen - k :] = trunc
    return (out, kept) if return_lengths else out


def to_categorical(
    y: Sequence[int] | np.ndarray | torch.Tensor,
    num_classes: int | None = None,
    dtype: npt.DTypeLike = "float32",
) -> np.ndarray:
    """One-hot encode class ids, with Keras's semantics.

    Arguments:
        y: class ids in ``[0, num_classes)``, any shape; a trailing axis of size 1 is
            dropped (as Keras does for ``(N, 1)`` label columns).
        num_classes: defaults to ``max(y) + 1``.
        dtype: of the result.

    Returns:
        ``y.shape + (num_classes,)`` array. (For tensors in a model, use
        ``torch.nn.functional.one_hot``.)

    Example::

        >>> to_categorical([0, 2], num_classes=3)
        array([[1., 0., 0.],
               [0., 0., 1.]], dtype=float32)
    """
    labels = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    fractional = not np.issubdtype(labels.dtype, np.integer) and np.any(np.mod(labels, 1) != 0)
    if labels.size and fractional:
        raise ValueError(f"class ids must be integers, got dtype {labels.dtype} with fractions")
    labels = labels.astype(np.int64)
    if labels.ndim > 1 and labels.shape[-1] == 1:
        labels = labels.reshape(labels.shape[:-1])
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"class ids must lie in [0, {num_classes}), found min {labels.min()} and "
            f"max {labels.max()}"
        )
    out = np.zeros((*labels.shape, num_classes), dtype=dtype)
    np.put_along_axis(out, labels[..., None], 1, axis=-1)
    return out
