"""The generated long-range tasks have the documented layout and statistics."""

from __future__ import annotations

import math

import pytest
import torch

from rnnkit.data.synthetic import (
    ADDING_BASELINE_MSE,
    AddingProblem,
    CopyMemory,
    adding_problem,
    copy_memory,
    copy_memory_baseline,
)


def test_adding_problem_has_exactly_two_markers_one_per_half() -> None:
    data = AddingProblem(500, 30, seed=3)
    x, y = data[7]
    assert (x.shape, x.dtype, y.shape, y.dtype) == ((30, 2), torch.float32, (1,), torch.float32)
    markers = data.inputs[..., 1]  # (N, T)
    assert set(markers.unique().tolist()) == {0.0, 1.0}
    assert (markers.sum(1) == 2).all()
    assert (markers[:, :15].sum(1) == 1).all() and (markers[:, 15:].sum(1) == 1).all()
    values = data.inputs[..., 0]
    assert values.min() >= 0 and values.max() < 1
    torch.testing.assert_close(data.targets[:, 0], (values * markers).sum(1))


def test_adding_problem_targets_have_the_baseline_variance() -> None:
    """Predicting the mean 1 scores Var(u1 + u2) = 2/12 ≈ 0.167."""
    _, y = adding_problem(40_000, 10, generator=torch.Generator().manual_seed(0))
    assert y.mean().item() == pytest.approx(1.0, abs=0.01)
    assert ((y - 1) ** 2).mean().item() == pytest.approx(ADDING_BASELINE_MSE, abs=0.005)
    assert AddingProblem.baseline_mse == pytest.approx(0.1667, abs=1e-4)


def test_datasets_are_deterministic_from_the_seed() -> None:
    assert torch.equal(AddingProblem(20, 9, seed=1).inputs, AddingProblem(20, 9, seed=1).inputs)
    assert not torch.equal(AddingProblem(20, 9, seed=1).inputs, AddingProblem(20, 9, seed=2).inputs)
    a, b = CopyMemory(20, 5, seed=4), CopyMemory(20, 5, seed=4)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)


def test_copy_memory_layout() -> None:
    delay, k = 7, 10
    data = CopyMemory(50, delay, seed=0)
    x, y = data[0]
    assert (x.shape, x.dtype, y.shape, y.dtype) == ((27, 10), torch.float32, (27,), torch.int64)
    tokens = data.inputs.argmax(-1)  # (N, T)
    assert (data.inputs.sum(-1) == 1).all()  # one-hot
    symbols = tokens[:, :k]
    assert symbols.min() >= 1 and symbols.max() <= 8
    assert (tokens[:, k : k + delay - 1] == 0).all()  # the blank delay
    assert (tokens[:, k + delay - 1] == 9).all()  # the delimiter
    assert (tokens[:, k + delay :] == 0).all()
    assert (data.targets[:, : delay + k] == 0).all()
    assert torch.equal(data.targets[:, delay + k :], symbols)  # recall after the delimiter


def test_copy_memory_baseline_is_the_memoryless_cross_entropy() -> None:
    assert copy_memory_baseline(100) == pytest.approx(10 * math.log(8) / 120)
    assert CopyMemory(2, 100).baseline_loss == copy_memory_baseline(100)
    x, _ = copy_memory(3, 1, num_symbols=4, copy_length=2)
    assert x.shape == (3, 5, 6)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: adding_problem(4, 1), "expected seq_len >= 2"),
        (lambda: adding_problem(0, 10), "expected num_samples to be an integer >= 1, got 0"),
        (lambda: copy_memory(4, 0), "expected delay to be an integer >= 1, got 0"),
    ],
)
def test_bad_sizes_are_clear_errors(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]
