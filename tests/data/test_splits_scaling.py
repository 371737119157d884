"""Seeded splits and train-only scalers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.data import (
    MinMaxScaler,
    StandardScaler,
    chronological_split,
    random_split,
    stratified_split,
)
from rnnkit.data.scaling import scaler_from_dict
from rnnkit.data.splits import subsample


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=200), st.floats(0, 0.9), st.integers(0, 9))
def test_stratified_split_partitions_exactly(labels, fraction, seed) -> None:
    labels = np.array(labels)
    kept, held = stratified_split(labels, fraction, seed=seed)
    assert sorted(np.concatenate([kept, held]).tolist()) == list(range(len(labels)))
    assert len(held) == round(len(labels) * fraction)
    for c in np.unique(labels):
        share = (labels[held] == c).sum()
        assert abs(share - (labels == c).sum() * fraction) < 1 + 1e-9  # within one of exact
    again = stratified_split(labels, fraction, seed=seed)
    assert np.array_equal(again[1], held)


def test_random_and_chronological_splits() -> None:
    kept, held = random_split(10, 0.3, seed=1)
    assert len(held) == 3 and sorted([*kept, *held]) == list(range(10))
    train, val, test = chronological_split(100, val_fraction=0.1, test_fraction=0.2)
    assert (train, val, test) == (slice(0, 72), slice(72, 80), slice(80, 100))
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        random_split(3, 1.0)


def test_subsample_is_stratified() -> None:
    labels = np.repeat([0, 1], 50)
    idx = subsample(labels, 100, 10, seed=0)
    assert len(idx) == 10 and np.bincount(labels[idx]).tolist() == [5, 5]
    assert np.array_equal(subsample(None, 5, None), np.arange(5))


@pytest.mark.parametrize("cls", [StandardScaler, MinMaxScaler])
def test_scalers_invert_on_arrays_and_tensors(cls) -> None:
    rows = np.random.default_rng(0).normal(5, 3, size=(50, 3))
    scaler = cls().fit(rows)
    scaled = scaler.transform(rows)
    np.testing.assert_allclose(scaler.inverse_transform(scaled), rows)
    t = torch.tensor(rows[:4], dtype=torch.float32)
    torch.testing.assert_close(scaler.inverse_transform(scaler.transform(t)), t)
    restored = scaler_from_dict(scaler.to_dict())
    np.testing.assert_allclose(restored.transform(rows), scaled)


def test_one_column_scaler_broadcasts_and_constant_columns_stay_finite() -> None:
    s = StandardScaler().fit(np.array([[1.0], [3.0]]))
    assert s.inverse_transform(torch.zeros(2, 4)).tolist() == [[2.0] * 4] * 2
    const = StandardScaler().fit(np.ones((3, 2)))
    assert np.isfinite(const.transform(np.ones((1, 2)))).all()
    with pytest.raises(ValueError, match="last axis of 2"):
        const.transform(np.ones((1, 3)))
    with pytest.raises(RuntimeError, match="not fitted"):
        StandardScaler().transform(np.ones((1, 1)))
