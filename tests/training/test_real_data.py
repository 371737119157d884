"""Real-data smoke tests: recipes trained briefly on the real datasets, scored held out.

They skip, naming the missing file, without ``../shared/data`` (or ``$RNNKIT_DATA_DIR``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnkit.config import apply_overrides, run_config_from_dict
from rnnkit.recipes import load_recipe
from rnnkit.training.run import train
from tests.conftest import shared_data_dir

QUIET = ["train.progress_bar=false", "train.trainer.num_sanity_val_steps=0"]


def _data(*parts: str) -> Path:
    root = shared_data_dir()
    if root is None:
        pytest.skip("real datasets absent: no ../shared/data and no $RNNKIT_DATA_DIR")
    path = root.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real dataset file absent: {path}")
    return root


def _train(recipe: str, data_dir: Path, run_dir: Path, *overrides: str) -> dict[str, float]:
    config = run_config_from_dict(apply_overrides(load_recipe(recipe), [*QUIET, *overrides]))
    return train(config, run_dir=run_dir, data_dir=data_dir).metrics


def test_reuters_beats_the_majority_class(tmp_path: Path) -> None:
    root = _data("reuters21578", "reuters21578.tar.gz")
    metrics = _train("reuters", root, tmp_path / "run", "train.max_epochs=3")
    majority = metrics["test_majority_class_acc"]
    assert 0.2 < majority < 0.5  # 'earn' is about a third of the ModApte test split
    assert metrics["test_acc"] > majority + 0.1


def test_stock_reports_model_and_persistence_rmse_side_by_side(tmp_path: Path) -> None:
    root = _data("stocks", "SBUX.csv")
    metrics = _train("stock", root, tmp_path / "run", "train.max_epochs=3")
    model, persistence = metrics["test_rmse"], metrics["test_persistence_rmse"]
    assert persistence > 0
    # the residual forecaster starts as persistence; a few epochs keep it close
    assert model < 1.5 * persistence


@pytest.mark.slow
def test_imdb_one_epoch_on_2000_reviews_beats_70_percent(tmp_path: Path) -> None:
    root = _data("imdb", "aclImdb_v1-labelled.tar.gz")
    metrics = _train("imdb", root, tmp_path / "run", "data.limit=2000", "train.max_epochs=1")
    assert metrics["test_acc"] > 0.70
