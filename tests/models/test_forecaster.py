"""Forecaster: shapes, lengths, and the naive baselines beside it."""

from __future__ import annotations

import pytest
import torch

from rnnkit.models import (
    BASELINES,
    Forecaster,
    ForecasterConfig,
    RecurrentSpec,
    moving_average,
    persistence,
    seasonal_naive,
)
from tests.helpers import assert_close


@pytest.mark.parametrize(("n_targets", "shape"), [(1, (5, 3)), (2, (5, 3, 2))])
def test_shapes(n_targets: int, shape: tuple[int, ...]) -> None:
    model = Forecaster(ForecasterConfig(input_size=4, horizon=3, n_targets=n_targets))
    assert model(torch.randn(5, 10, 4)).shape == shape
    assert model(torch.randn(1, 10, 4)).shape == (1, *shape[1:])  # a batch of one


def test_padded_windows_use_their_last_valid_step() -> None:
    cfg = ForecasterConfig(input_size=2, rnn=RecurrentSpec("lstm", 6, bidirectional=True))
    model = Forecaster(cfg).eval()
    x, lengths = torch.randn(3, 8, 2), torch.tensor([8, 5, 2])
    y = model(x, lengths)
    for b, n in enumerate(lengths.tolist()):
        assert_close(model(x[b : b + 1, :n]), y[b : b + 1], what=f"window {b}")


def test_wrong_window_is_explained() -> None:
    model = Forecaster(ForecasterConfig(input_size=4))
    with pytest.raises(
        ValueError, match=r"expected a window of shape \(B, W, 4\), got \(2, 7, 3\)"
    ):
        model(torch.randn(2, 7, 3))


HISTORY = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [6.0, 0.0, 2.0, 8.0, 4.0, 0.0]])


def test_persistence() -> None:
    assert persistence(HISTORY, 3).tolist() == [[6, 6, 6], [0, 0, 0]]


def test_seasonal_naive() -> None:
    # Season 4: the last season is [3, 4, 5, 6] / [2, 8, 4, 0], repeated over a horizon of 6.
    assert seasonal_naive(HISTORY, 6, season=4).tolist() == [
        [3, 4, 5, 6, 3, 4],
        [2, 8, 4, 0, 2, 8],
    ]
    assert seasonal_naive(HISTORY, 2, season=1).tolist() == persistence(HISTORY, 2).tolist()


def test_moving_average() -> None:
    assert moving_average(HISTORY, 2, k=3).tolist() == [[5, 5], [4, 4]]
    assert moving_average(HISTORY, 1, k=1).tolist() == persistence(HISTORY, 1).tolist()


def test_multiple_targets() -> None:
    history = torch.stack([HISTORY[0], 10 * HISTORY[1]], dim=-1).unsqueeze(0)  # (1, 6, 2)
    assert persistence(history, 2).tolist() == [[[6, 0], [6, 0]]]
    assert seasonal_naive(history, 3, season=2).tolist() == [[[5, 40], [6, 0], [5, 40]]]
    assert moving_average(history, 1, k=2).tolist() == [[[5.5, 20]]]


def test_baseline_errors() -> None:
    with pytest.raises(ValueError, match="W=6 < season=7; use a longer window or a shorter season"):
        seasonal_naive(HISTORY, 2, season=7)
    with pytest.raises(ValueError, match="W=6 < k=9"):
        moving_average(HISTORY, 2, k=9)
    with pytest.raises(ValueError, match="horizon must be an integer >= 1, got 0"):
        persistence(HISTORY, 0)
    with pytest.raises(ValueError, match=r"expected a history of shape \(B, W\) or \(B, W, N\)"):
        persistence(HISTORY[0], 1)


def test_baseline_registry() -> None:
    assert BASELINES.names() == ["moving_average", "persistence", "seasonal_naive"]
    assert BASELINES.get("seasonal_naive")(HISTORY, 1, season=2).tolist() == [[5], [4]]
