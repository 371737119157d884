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
