"""Batching: the :class:`Batch` every loader yields, padding collate, length bucketing.

Every order is a function of ``(seed, epoch)``: :class:`SeededSampler` shuffles the
indices, :class:`ShardedBatchSampler` cuts them into batches, and
:class:`BucketBatchSampler` (the replacement for torchtext's ``BucketIterator``) groups
examples of similar length so that little of each batch is padding. Lightning calls
``set_epoch`` on the index sampler every epoch, so a resumed run's epoch ``k`` sees
epoch ``k``'s order.

Distributed training (``num_replicas`` processes): each step's batches together are
the batch one process with ``batch_size * num_replicas`` would take. Step ``j``
cuts global batch ``j`` into ``num_replicas`` equal slices, and rank ``r`` takes slice
``r``; with mean losses, DDP's averaged gradient is then the big batch's gradient.
A last global batch that does not split evenly is filled up by repeating its first
examples (fewer than ``num_replicas`` repeats), so every rank runs the same number of
equal steps (DDP hangs otherwise).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_sequence
from torch.utils.data import BatchSampler, Sampler

__all__ = [
    "Batch",
    "BucketBatchSampler",
    "PadCollate",
    "SeededSampler",
    "ShardedBatchSampler",
    "pack_batch",
    "pad_collate",
    "padding_fraction",
]


class Batch(NamedTuple):
    """One batch, batch-first.

    Attributes:
        inputs: ``LongTensor (B, T)`` token ids padded with the vocabulary's pad id, or
            ``FloatTensor (B, T, F)`` for images read row by row and for series.
        lengths: ``LongTensor (B,)`` valid steps of each sequence (``T`` everywhere for
            fixed-length data); on the CPU, as ``pack_padded_sequence`` wants.
        targets: ``LongTensor (B,)`` class ids; ``LongTensor (B, T)`` next-token ids for
            language modelling; ``FloatTensor (B, H)`` or ``(B, H, n_targets)`` forecasts.

    Lightning moves a ``Batch`` to the device as a whole (it is a NamedTuple);
    :meth:`to` does it by hand.

    Example::

        >>> ids = torch.zeros(2, 3, dtype=torch.long)
        >>> b = Batch(ids, torch.tensor([3, 1]), torch.tensor([0, 1]))
        >>> b.inputs.shape, b.lengths.tolist()
        (torch.Size([2, 3]), [3, 1])
    """

    inputs: Tensor
    lengths: Tensor
    targets: Tensor

    def to(self, device: torch.device | str, *, non_blocking: bool = False) -> Batch:
        """Inputs and targets on ``device``; lengths stay on the CPU."""
        return Batch(
            self.inputs.to(device, non_blocking=non_blocking),
            self.lengths,
            self.targets.to(device, non_blocking=non_blocking),
        )

    @property
    def mask(self) -> Tensor:
        """``BoolTensor (B, T)``: ``True`` at valid steps."""
        steps = torch.arange(self.inputs.shape[1], device=self.lengths.device)
        return (steps[None, :] < self.lengths[:, None]).to(self.inputs.device)


def _as_tensor(x: Any) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    return torch.as_tensor(x)


class PadCollate:
    """Collate ``(sequence, target)`` examples into a padded :class:`Batch`.

    Sequences are ``(T_i,)`` id tensors or ``(T_i, F)`` feature tensors (lists and arrays
    accepted); they are padded at the end to the batch's longest (or ``pad_to``).
    Scalar targets are stacked into ``(B,)``; sequence targets of varying length are
    padded with ``target_pad_value`` (``-100``, the ``ignore_index`` of
    ``CrossEntropyLoss``).

    An instance is picklable, so it works with ``num_workers > 0``.

    Arguments:
        pad_value: input padding value (the vocabulary's pad id for text).
        target_pad_value: padding for variable-length sequence targets.
        pad_to: pad every batch to at least this length (torchtext's ``fix_length``);
            longer sequences are not cut (truncate when numericalising).
        dtype: cast inputs to this dtype (e.g. ``torch.long`` for ids).

    Example::

        >>> collate = PadCollate(pad_value=0)
        >>> b = collate([(torch.tensor([4, 5, 6]), 1), (torch.tensor([7]), 0)])
        >>> b.inputs.tolist(), b.lengths.tolist(), b.targets.tolist()
        ([[4, 5, 6], [7, 0, 0]], [3, 1], [1, 0])
    """

    def __init__(
        self,
        pad_value: float = 0,
        *,
        target_pad_value: float = -100,
        pad_to: int | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        self.pad_value = pad_value
        self.target_pad_value = target_pad_value
        self.pad_to = pad_to
        self.dtype = dtype

    def __call__(self, examples: Sequence[tuple[Any, Any]]) -> Batch:
        if not examples:
            raise ValueError("cannot collate an empty list of examples")
        seqs = [_as_tensor(x) for x, _ in examples]
        lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
        inputs = self._pad(seqs, self.pad_value)  # (B, T) or (B, T, F)
        if self.dtype is not None:
            inputs = inputs.to(self.dtype)
        return Batch(inputs, lengths, self._targets([y for _, y in examples]))

    def _pad(self, seqs: list[Tensor], value: float) -> Tensor:
        if all(s.shape == seqs[0].shape for s in seqs) and (
            self.pad_to is None or seqs[0].shape[0] >= self.pad_to
        ):
            return torch.stack(seqs)  # fixed-length data: nothing to pad
        padded = pad_sequence(seqs, batch_first=True, padding_value=value)
        if self.pad_to is not None and padded.shape[1] < self.pad_to:
            extra = self.pad_to - padded.shape[1]
            fill = padded.new_full((padded.shape[0], extra, *padded.shape[2:]), value)
            padded = torch.cat([padded, fill], dim=1)
        return padded

    def _targets(self, targets: list[Any]) -> Tensor:
        first = targets[0]
        if isinstance(first, Tensor | np.ndarray) and np.ndim(first) > 0:
            seqs = [_as_tensor(t) for t in targets]
            if all(t.shape == seqs[0].shape for t in seqs):
                return torch.stack(seqs)
            return pad_sequence(seqs, batch_first=True, padding_value=self.target_pad_value)
        return torch.as_tensor(np.asarray([_scalar(t) for t in targets]))


def _scalar(t: Any) -> Any:
    return t.item() if isinstance(t, Tensor | np.ndarray | np.generic) else t


pad_collate = PadCollate()
"""``PadCollate()`` with pad value 0 (the default pad id of :class:`~rnnkit.data.Vocab`)."""


def pack_batch(inputs: Tensor, lengths: Tensor) -> PackedSequence:
    """Pack a batch-first padded tensor for ``nn.LSTM``/``nn.GRU``.

    A thin, hard-to-misuse wrapper over ``pack_padded_sequence``: batch-first, lengths
    moved to the CPU, no sorting required (``enforce_sorted=False``).

    Arguments:
        inputs: ``(B, T, *)``, typically embedded tokens ``(B, T, E)``.
        lengths: ``(B,)`` valid steps.

    Example::

        >>> packed = pack_batch(torch.randn(2, 3, 4), torch.tensor([3, 1]))
        >>> packed.batch_sizes.tolist()
        [2, 1, 1]
    """
    if lengths.ndim != 1 or lengths.shape[0] != inputs.shape[0]:
        raise ValueError(
            f"lengths must have shape ({inputs.shape[0]},) to match inputs {tuple(inputs.shape)}, "
            f"got {tuple(lengths.shape)}"
        )
    return pack_padded_sequence(inputs, lengths.cpu(), batch_first=True, enforce_sorted=False)


def padding_fraction(
    lengths: Sequence[int] | np.ndarray, batches: Iterable[Sequence[int]]
) -> float:
    """Fraction of padded cells when ``batches`` are padded to their longest member.

    Example::

        >>> padding_fraction([3, 1, 2, 2], [[0, 1], [2, 3]])  # 2 pad cells of 10
        0.2
    """
    lens = np.asarray(lengths)
    padded = real = 0
    for batch in batches:
        b = lens[np.asarray(batch, dtype=np.int64)]
        padded += int(b.max()) * len(b)
        real += int(b.sum())
    return (padded - real) / padded if padded else 0.0


class SeededSampler(Sampler[int]):
    """Indices ``0..n-1``, shuffled from ``seed + epoch`` (or in order).

    Like ``RandomSampler`` with a generator, but reproducible per epoch and with the
    ``set_epoch`` hook that Lightning calls on samplers.

    Example::

        >>> s = SeededSampler(5, seed=1)
        >>> sorted(s) == list(range(5))
        True
    """

    def __init__(self, n: int, *, shuffle: bool = True, seed: int = 0) -> None:
        self.n = n
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use a new permutation for ``epoch``."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.n))
        rng = np.random.default_rng([self.seed, self.epoch])
        return iter(rng.permutation(self.n).tolist())

    def __len__(self) -> int:
        return self.n


def rank_slice(batch: np.ndarray, num_replicas: int, rank: int) -> np.ndarray:
    """Rank ``rank``'s share of a global batch: slice ``rank`` of ``num_replicas`` equal ones.

    A batch whose length is not a multiple of ``num_replicas`` is first filled up by
    repeating its first elements.

    Example::

        >>> rank_slice(np.arange(5), 2, 0).tolist(), rank_slice(np.arange(5), 2, 1).tolist()
        ([0, 1, 2], [3, 4, 0])
    """
    if num_replicas == 1:
        return batch
    per_rank = -(-len(batch) // num_replicas)
    filled = np.resize(batch, per_rank * num_replicas)  # repeats from the start
    return filled[rank * per_rank : (rank + 1) * per_rank]


class ShardedBatchSampler(BatchSampler):
    """Batches of consecutive indices of ``sampler``, each split across processes.

    With one process this is ``BatchSampler``. With ``num_replicas`` processes the
    indices are cut into global batches of ``batch_size * num_replicas`` and rank
    ``rank`` yields its slice of each (:func:`rank_slice`): every rank reads the same
    index order (same seed and epoch), so the slices are disjoint.

    Arguments:
        sampler: yields dataset indices in the epoch's order (:class:`SeededSampler`).
        batch_size: examples per batch and process.
        drop_last: drop a last global batch smaller than ``batch_size * num_replicas``.
        num_replicas: processes in the run.
        rank: this process's global rank.

    Example::

        >>> def shard(rank):
        ...     return list(ShardedBatchSampler(range(8), 2, num_replicas=2, rank=rank))
        >>> shard(0), shard(1)
        ([[0, 1], [4, 5]], [[2, 3], [6, 7]])
    """

    def __init__(
        self,
        sampler: Sampler[int] | Iterable[int],
        batch_size: int,
        drop_last: bool = False,
        *,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        super().__init__(sampler, batch_size, drop_last)  # type: ignore[arg-type]
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(
                f"expected num_replicas >= 1 and 0 <= rank < num_replicas, "
                f"got num_replicas={num_replicas}, rank={rank}"
            )
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch = 0

    @property
    def global_batch_size(self) -> int:
        """Examples per step over all processes."""
        return self.batch_size * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s order (forwarded to the index sampler)."""
        self.epoch = epoch
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def _current_epoch(self) -> int:
        # Lightning calls set_epoch on batch_sampler.sampler only; follow it from there.
        return int(getattr(self.sampler, "epoch", self.epoch))

    def _global_batches(self) -> list[np.ndarray]:
        indices = np.fromiter(iter(self.sampler), dtype=np.int64)
        return self._cut(indices)

    def _cut(self, indices: np.ndarray) -> list[np.ndarray]:
        size = self.global_batch_size
        batches = [indices[b : b + size] for b in range(0, len(indices), size)]
        return [b for b in batches if len(b) == size or not self.drop_last]

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._global_batches():
            yield rank_slice(batch, self.num_replicas, self.rank).tolist()

    def __len__(self) -> int:
        return self._count(len(self.sampler))  # type: ignore[arg-type]

    def _count(self, n: int) -> int:
        size = self.global_batch_size
        return n // size if self.drop_last else -(-n // size)


class BucketBatchSampler(ShardedBatchSampler):
    """Batches of similar-length examples: the replacement for ``BucketIterator``.

    The index ``sampler`` is read in pools of ``batch_size * bucket_size_multiplier``
    indices; each pool is sorted by length (stable, so ties keep the sampler's random
    order) and cut into batches; with ``shuffle`` the batch order is then shuffled from
    ``seed + epoch``. With a shuffling sampler every epoch gives new buckets; with a
    sequential one and ``bucket_size_multiplier=None`` (one pool) it gives the least
    padding possible, which suits evaluation.

    Distributed training: with ``num_replicas``/``rank`` the pools and batches are
    those of ``batch_size * num_replicas`` and each rank takes its slice of every batch
    (see :class:`ShardedBatchSampler`), so each step's slices are similar in length.
    The class keeps ``BatchSampler``'s ``(sampler, batch_size, drop_last)`` signature, so
    Lightning can also inject its ``DistributedSampler``; each rank then buckets its own
    disjoint share.

    Arguments:
        sampler: yields dataset indices (:class:`SeededSampler`, ``DistributedSampler``).
        batch_size: examples per batch (and process).
        drop_last: drop each pool's last, smaller batch.
        lengths: length of every example in the dataset (indexed by dataset index).
        bucket_size_multiplier: batches per pool (``None``: one pool for everything).
        shuffle: shuffle the batch order.
        seed: for the batch order.
        num_replicas, rank: the processes of a distributed run, and this one.

    Example::

        >>> lengths = [5, 1, 4, 2, 3, 6]
        >>> s = BucketBatchSampler(SeededSampler(6, seed=0), 2, False, lengths=lengths)
        >>> sorted(sorted(lengths[i] for i in b) for b in s)
        [[1, 2], [3, 4], [5, 6]]
    """

    def __init__(
        self,
        sampler: Sampler[int] | Iterable[int],
        batch_size: int,
        drop_last: bool = False,
        *,
        lengths: Sequence[int] | np.ndarray,
        bucket_size_multiplier: int | None = 100,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        super().__init__(sampler, batch_size, drop_last, num_replicas=num_replicas, rank=rank)
        if bucket_size_multiplier is not None and bucket_size_multiplier < 1:
            raise ValueError(
                f"bucket_size_multiplier must be >= 1 or None, got {bucket_size_multiplier}"
            )
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.bucket_size_multiplier = bucket_size_multiplier
        self.shuffle = shuffle
        self.seed = seed

    @classmethod
    def from_lengths(
        cls,
        lengths: Sequence[int] | np.ndarray,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        bucket_size_multiplier: int | None = 100,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> BucketBatchSampler:
        """A bucketing sampler over a whole dataset (or one rank's shard of it).

        With ``num_replicas``/``rank`` set, every step's batch is split across the
        ranks (same seed on every rank).
        """
        return cls(
            SeededSampler(len(lengths), shuffle=shuffle, seed=seed),
            batch_size,
            drop_last,
            lengths=lengths,
            bucket_size_multiplier=bucket_size_multiplier,
            shuffle=shuffle,
            seed=seed,
            num_replicas=num_replicas or 1,
            rank=rank or 0,
        )

    def _pool_size(self, n: int) -> int:
        if self.bucket_size_multiplier is None:
            return max(n, 1)
        return self.global_batch_size * self.bucket_size_multiplier

    def _global_batches(self) -> list[np.ndarray]:
        indices = np.fromiter(iter(self.sampler), dtype=np.int64)
        pool = self._pool_size(len(indices))
        batches: list[np.ndarray] = []
        for start in range(0, len(indices), pool):
            chunk = indices[start : start + pool]
            batches += self._cut(chunk[np.argsort(self.lengths[chunk], kind="stable")])
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self._current_epoch(), 1])
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        pool = self._pool_size(n)
        pools = [pool] * (n // pool) + ([n % pool] if n % pool else [])
        return sum(self._count(p) for p in pools)
