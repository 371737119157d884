"""Assertions shared by the tests."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}


def assert_close(actual: Tensor, expected: Tensor, *, what: str = "") -> None:
    """Equal within the project's parity tolerance for the dtype (fp32 1e-5, fp64 1e-10)."""
    tol = TOLERANCE[expected.dtype]
    torch.testing.assert_close(actual, expected, atol=tol, rtol=tol, msg=lambda m: f"{what}: {m}")


def leaves(x: object) -> list[Tensor]:
    """Tensors of a (nested) tuple/NamedTuple, or the tensor itself."""
    if isinstance(x, Tensor):
        return [x]
    if isinstance(x, tuple | list):
        return [t for part in x for t in leaves(part)]
    raise TypeError(type(x))


def weighted_sum(tensors: Iterable[Tensor], seed: int = 1) -> Tensor:
    """A scalar that depends on every element with a distinct random weight."""
    gen = torch.Generator().manual_seed(seed)
    total = 0
    for t in tensors:
        w = torch.randn(t.shape, generator=gen, dtype=t.dtype).to(t.device)
        total = total + (t * w).sum()
    return total


def assert_same_tree(actual: object, expected: object, path: str = "") -> None:
    """Equal nested data, types included: tensors (dtype and values), NumPy arrays,
    dicts (key order too), lists, tuples, NaN equal to NaN."""
    import math

    import numpy as np

    where = path or "/"
    assert type(actual) is type(expected), f"{where}: {type(actual)} != {type(expected)}"
    if isinstance(expected, Tensor):
        assert actual.dtype == expected.dtype and torch.equal(actual, expected), where
    elif isinstance(expected, np.ndarray | np.generic):
        assert actual.dtype == expected.dtype and np.array_equal(actual, expected), where
    elif isinstance(expected, dict):
        assert list(actual) == list(expected), f"{where}: keys {list(actual)} != {list(expected)}"
        for key in expected:
            assert_same_tree(actual[key], expected[key], f"{path}/{key}")
    elif isinstance(expected, list | tuple):
        assert len(actual) == len(expected), f"{where}: {len(actual)} != {len(expected)} items"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same_tree(a, e, f"{path}/{i}")
    elif isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(actual), where
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"
