"""Batch, collate, packing and the length-bucketing sampler (incl. distributed shards)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader, DistributedSampler, SequentialSampler

from rnnkit.data import (
    Batch,
    BucketBatchSampler,
    PadCollate,
    SeededSampler,
    ShardedBatchSampler,
    pack_batch,
    pad_collate,
    padding_fraction,
)


def test_pad_collate_text() -> None:
    batch = PadCollate(pad_value=0)([(torch.tensor([4, 5, 6]), 1), ([7], 0)])
    assert isinstance(batch, Batch)
    assert batch.inputs.tolist() == [[4, 5, 6], [7, 0, 0]]
    assert batch.lengths.dtype == torch.long and batch.lengths.tolist() == [3, 1]
    assert batch.targets.dtype == torch.long and batch.targets.tolist() == [1, 0]
    assert batch.mask.tolist() == [[True, True, True], [True, False, False]]


def test_pad_collate_features_fixed_and_pad_to() -> None:
    x = [(torch.ones(28, 28), 3), (torch.zeros(28, 28), 5)]
    batch = pad_collate(x)
    assert batch.inputs.shape == (2, 28, 28) and batch.lengths.tolist() == [28, 28]
    padded = PadCollate(pad_value=9, pad_to=4)([(np.array([1, 2]), 0), (np.array([3]), 1)])
    assert padded.inputs.tolist() == [[1, 2, 9, 9], [3, 9, 9, 9]]
    assert padded.lengths.tolist() == [2, 1]


def test_pad_collate_sequence_targets() -> None:
    fixed = pad_collate([(torch.tensor([1, 2]), torch.tensor([2, 3]))] * 3)
    assert fixed.targets.shape == (3, 2)
    ragged = pad_collate(
        [(torch.tensor([1, 2]), torch.tensor([2, 3])), (torch.tensor([1]), torch.tensor([4]))]
    )
    assert ragged.targets.tolist() == [[2, 3], [4, -100]]  # CrossEntropyLoss's ignore_index
    forecast = pad_collate([(torch.zeros(5, 2), torch.tensor([0.5]))] * 2)
    assert forecast.targets.shape == (2, 1) and forecast.targets.dtype == torch.float32
    with pytest.raises(ValueError, match="empty"):
        pad_collate([])


def test_batch_to_keeps_lengths_on_cpu() -> None:
    batch = pad_collate([(torch.tensor([1]), 0)])
    moved = batch.to("cpu")
    assert moved.lengths is batch.lengths and isinstance(moved, Batch)


def test_pack_batch() -> None:
    packed = pack_batch(torch.randn(3, 4, 2), torch.tensor([1, 4, 2]))
    assert packed.batch_sizes.tolist() == [3, 2, 1, 1]
    out, _ = torch.nn.LSTM(2, 5, batch_first=True)(packed)
    assert out.data.shape == (7, 5)
    with pytest.raises(ValueError, match=r"lengths must have shape \(3,\)"):
        pack_batch(torch.randn(3, 4, 2), torch.tensor([1, 2]))


def test_padding_fraction() -> None:
    assert padding_fraction([3, 1, 2, 2], [[0, 1], [2, 3]]) == pytest.approx(0.2)
    assert padding_fraction([5], []) == 0.0


# --- bucketing -----------------------------------------------------------------------------

_lengths = st.lists(st.integers(0, 60), min_size=0, max_size=300)


@settings(max_examples=150, deadline=None)
@given(
    _lengths, st.integers(1, 17), st.none() | st.integers(1, 5), st.integers(0, 3), st.booleans()
)
def test_bucketing_covers_every_index_exactly_once(
    lengths, batch_size, mult, seed, shuffle
) -> None:
    sampler = BucketBatchSampler.from_lengths(
        lengths, batch_size, shuffle=shuffle, seed=seed, bucket_size_multiplier=mult
    )
    batches = list(sampler)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert len(batches) == len(sampler)
    assert all(1 <= len(b) <= batch_size for b in batches)


@settings(max_examples=100, deadline=None)
@given(_lengths, st.integers(1, 9), st.integers(1, 4))
def test_bucketing_drop_last_keeps_only_full_batches(lengths, batch_size, mult) -> None:
    sampler = BucketBatchSampler.from_lengths(
        lengths, batch_size, drop_last=True, bucket_size_multiplier=mult
    )
    batches = list(sampler)
    assert all(len(b) == batch_size for b in batches) and len(batches) == len(sampler)
    assert len({i for b in batches for i in b}) == batch_size * len(batches)


def test_bucketing_is_seeded_and_changes_per_epoch() -> None:
    lengths = np.random.default_rng(0).integers(1, 500, size=1000)
    a = BucketBatchSampler.from_lengths(lengths, 32, seed=7, bucket_size_multiplier=4)
    b = BucketBatchSampler.from_lengths(lengths, 32, seed=7, bucket_size_multiplier=4)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first and sorted(map(sorted, a)) != sorted(map(sorted, first))
    a.set_epoch(0)
    assert list(a) == first


def test_bucketing_reduces_padding_and_sorts_for_evaluation() -> None:
    lengths = np.random.default_rng(1).integers(1, 1000, size=2000)
    bucketed = BucketBatchSampler.from_lengths(lengths, 64, seed=0)
    rng = np.random.default_rng(0)
    random = np.array_split(rng.permutation(len(lengths)), len(lengths) // 64)
    assert padding_fraction(lengths, bucketed) * 5 < padding_fraction(lengths, random)
    evaluation = BucketBatchSampler(
        SequentialSampler(range(len(lengths))),
        64,
        lengths=lengths,
        shuffle=False,
        bucket_size_multiplier=None,
    )
    order = [lengths[i] for b in evaluation for i in b]
    assert order == sorted(order)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 200), st.integers(1, 5), st.integers(1, 8), st.integers(0, 5), st.booleans())
def test_distributed_shards_are_disjoint_and_cover_all(
    n, replicas, batch_size, seed, drop_last
) -> None:
    lengths = np.random.default_rng(seed).integers(1, 50, size=n)
    shards = [
        list(
            BucketBatchSampler.from_lengths(
                lengths,
                batch_size,
                seed=seed,
                num_replicas=replicas,
                rank=r,
                drop_last=drop_last,
                bucket_size_multiplier=2,
            )
        )
        for r in range(replicas)
    ]
    # Every rank runs the same number of steps (otherwise DDP hangs).
    assert len({len(s) for s in shards}) == 1
    per_rank = [[i for b in s for i in b] for s in shards]
    seen = [i for idx in per_rank for i in idx]
    if drop_last or n % replicas == 0:
        assert len(seen) == len(set(seen))  # disjoint
    if not drop_last:
        assert set(seen) == set(range(n))  # complete; DistributedSampler pads < replicas repeats
        assert len(seen) - n < replicas


def test_lightning_injects_its_distributed_sampler() -> None:
    """Lightning rebuilds a BatchSampler subclass with a DistributedSampler: keep working."""
    fabric_data = pytest.importorskip("lightning.fabric.utilities.data")
    pl_data = pytest.importorskip("lightning.pytorch.utilities.data")
    lengths = np.random.default_rng(0).integers(1, 100, size=101)
    dataset = [(torch.ones(int(n)), 0) for n in lengths]
    with fabric_data._replace_dunder_methods(torch.utils.data.BatchSampler):
        sampler = BucketBatchSampler(SeededSampler(len(dataset)), 8, lengths=lengths, seed=3)
        loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=pad_collate)
    seen = []
    for rank in range(2):
        dist = DistributedSampler(dataset, num_replicas=2, rank=rank, shuffle=True, seed=0)
        updated = pl_data._update_dataloader(loader, dist)
        assert isinstance(updated.batch_sampler, BucketBatchSampler)
        assert updated.batch_sampler.sampler is dist and updated.batch_sampler.seed == 3
        seen.append([i for b in updated.batch_sampler for i in b])
    assert set(seen[0]) | set(seen[1]) == set(range(101))
    assert len(seen[0]) == len(seen[1]) == 51


def test_seeded_sampler() -> None:
    s = SeededSampler(10, seed=3)
    first = list(s)
    assert sorted(first) == list(range(10)) and list(s) == first
    s.set_epoch(2)
    assert list(s) != first
    assert list(SeededSampler(4, shuffle=False)) == [0, 1, 2, 3]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 120), st.integers(1, 4), st.integers(1, 9), st.integers(0, 3), st.booleans())
def test_each_step_of_the_shards_is_one_big_batch(n, replicas, batch_size, seed, bucket) -> None:
    """Rank ``r``'s step ``j`` is slice ``r`` of the batch one process with
    ``batch_size * replicas`` takes at step ``j``: together the step sees the same
    examples (and, where the batch splits evenly, nothing twice)."""
    lengths = np.random.default_rng(seed).integers(1, 30, size=n)

    def sampler(size: int, replicas: int, rank: int):
        order = SeededSampler(n, seed=seed)
        if bucket:
            return BucketBatchSampler(
                order, size, lengths=lengths, bucket_size_multiplier=2, seed=seed,
                num_replicas=replicas, rank=rank,
            )  # fmt: skip
        return ShardedBatchSampler(order, size, num_replicas=replicas, rank=rank)

    big = list(sampler(batch_size * replicas, 1, 0))
    shards = [list(sampler(batch_size, replicas, r)) for r in range(replicas)]
    assert all(len(s) == len(big) == len(sampler(batch_size, replicas, 0)) for s in shards)
    for step, whole in enumerate(big):
        parts = [s[step] for s in shards]
        assert len({len(p) for p in parts}) == 1  # equal steps: DDP's mean is the big mean
        seen = [i for p in parts for i in p]
        assert set(seen) == set(whole) and len(seen) - len(whole) < replicas
        if len(whole) % replicas == 0:
            assert sorted(seen) == sorted(whole)


def test_a_shard_follows_the_epoch() -> None:
    shard = ShardedBatchSampler(SeededSampler(20, seed=1), 3, num_replicas=2, rank=1)
    first = list(shard)
    shard.sampler.set_epoch(1)  # what Lightning calls every epoch
    assert list(shard) != first
    shard.set_epoch(0)
    assert list(shard) == first


def test_a_shard_needs_a_rank_among_the_replicas() -> None:
    with pytest.raises(ValueError, match=r"0 <= rank < num_replicas, got num_replicas=2, rank=2"):
        ShardedBatchSampler(range(4), 2, num_replicas=2, rank=2)
