r"""Naive forecasters: the numbers every learned forecaster must beat.

Each takes the target's history ``y`` of shape ``(B, W)`` (one target) or
``(B, W, N)`` (``N`` targets), oldest first so ``y_W`` is the latest value, and a
horizon ``H``; it returns forecasts ``ŷ_{W+1..W+H}`` of shape ``(B, H)`` or
``(B, H, N)``. With ``h = 1..H``:

* **persistence** ("tomorrow = today"): :math:`\hat y_{W+h} = y_W`;
* **seasonal naive** with period ``m``: :math:`\hat y_{W+h} = y_{W+h-m\lceil h/m \rceil}`,
  the value one season back, repeated with period ``m`` over the horizon
  (needs ``W ≥ m``);
* **moving average** of the last ``k``: :math:`\hat y_{W+h} = \frac1k \sum_{i=0}^{k-1} y_{W-i}`
  (needs ``W ≥ k``).

Example::

    >>> y = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    >>> persistence(y, 2), seasonal_naive(y, 3, season=2), moving_average(y, 1, k=2)
    (tensor([[4., 4.]]), tensor([[3., 4., 3.]]), tensor([[3.5]]))
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from rnnkit.registry import Registry

Baseline = Callable[..., Tensor]
"""``baseline(history (B, W[, N]), horizon, **params) -> (B, horizon[, N])``."""

BASELINES: Registry[Baseline] = Registry("baseline")


def _check(history: Tensor, horizon: int, name: str) -> None:
    if history.dim() not in (2, 3):
        raise ValueError(
            f"{name}: expected a history of shape (B, W) or (B, W, N), got {tuple(history.shape)}"
        )
    if history.shape[1] < 1:
        raise ValueError(f"{name}: the history needs at least one step, got W=0")
    if not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"{name}: horizon must be an integer >= 1, got {horizon!r}")


def _repeat(value: Tensor, horizon: int) -> Tensor:
    """``(B[, N])`` → ``(B, horizon[, N])``."""
    return value.unsqueeze(1).expand(value.shape[0], horizon, *value.shape[1:]).clone()


def persistence(history: Tensor, horizon: int) -> Tensor:
    """The last value, repeated: ``ŷ_{W+h} = y_W``."""
    _check(history, horizon, "persistence")
    return _repeat(history[:, -1], horizon)


def seasonal_naive(history: Tensor, horizon: int, *, season: int) -> Tensor:
    """The value one season back, repeated with period ``season``: ``ŷ_{W+h} = y_{W+h-m⌈h/m⌉}``."""
    _check(history, horizon, "seasonal_naive")
    if not isinstance(season, int) or season < 1:
        raise ValueError(f"seasonal_naive: season must be an integer >= 1, got {season!r}")
    window = history.shape[1]
    if window < season:
        raise ValueError(
            f"seasonal_naive: the history must cover at least one season: "
            f"W={window} < season={season}; use a longer window or a shorter season"
        )
    last_season = history[:, window - season :]  # (B, m[, N])
    index = torch.arange(horizon, device=history.device) % season  # h - 1 mod m
    return last_season[:, index]  # (B, H[, N])


def moving_average(history: Tensor, horizon: int, *, k: int) -> Tensor:
    """The mean of the last ``k`` values, repeated: ``ŷ_{W+h} = (1/k) Σ_{i<k} y_{W-i}``."""
    _check(history, horizon, "moving_average")
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"moving_average: k must be an integer >= 1, got {k!r}")
    if history.shape[1] < k:
        raise ValueError(
            f"moving_average: the history is shorter than the average: W={history.shape[1]} < k={k}"
        )
    return _repeat(history[:, -k:].mean(dim=1), horizon)


BASELINES.register("persistence", persistence, description="last value repeated (y_W)")
BASELINES.register(
    "seasonal_naive", seasonal_naive, description="value one season back (param: season)"
)
BASELINES.register(
    "moving_average", moving_average, description="mean of the last k values (param: k)"
)
