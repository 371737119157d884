"""Choosing the best epoch: ``train.monitor``, and a test split that chooses nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import pytest
import torch

from rnnkit.config import ConfigError, TrainConfig, apply_overrides, run_config_from_dict
from rnnkit.data.datasets.digits import DigitsDataModule
from rnnkit.recipes import load_recipe
from rnnkit.training.checkpoint import load_checkpoint
from rnnkit.training.run import CHECKPOINT_FILE, train

TINY = [
    "data.limit=120",
    "data.batch_size=16",
    "model.rnn.hidden_size=8",
    "model.rnn.num_layers=1",
    "train.max_epochs=3",
    "train.progress_bar=false",
    "train.trainer.num_sanity_val_steps=0",
    "optimizer.lr=0.02",
]


def _config(*extra: str) -> Any:
    return run_config_from_dict(apply_overrides(load_recipe("digits"), [*TINY, *extra]))


def _best(run: Path) -> dict[str, Any]:
    state = load_checkpoint(run / CHECKPOINT_FILE)["callbacks"]
    return next(v for k, v in state.items() if k.startswith("BestWeights"))


def test_train_monitor_picks_the_epoch_by_that_value(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(_config("train.monitor=val_loss", "train.early_stopping_patience=5"), run_dir=run)
    best = _best(run)
    history = json.loads((run / "history.json").read_text())
    losses = [row["val_loss"] for row in history]
    assert (best["monitor"], best["mode"]) == ("val_loss", "min")
    assert best["best_epoch"] == 1 + losses.index(min(losses))
    stopping = next(
        v
        for k, v in load_checkpoint(run / CHECKPOINT_FILE)["callbacks"].items()
        if k.startswith("EarlyStopping")
    )
    assert stopping["best_score"] == pytest.approx(min(losses))


def test_an_unknown_monitor_is_named_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"train.monitor: .*'val_accuracy'; did you mean 'val_acc'"
    ):
        train(_config("train.monitor=val_accuracy"), run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_the_monitor_must_be_a_validation_value() -> None:
    with pytest.raises(ConfigError, match="the test split chooses nothing"):
        _config("train.monitor=test_acc")


@pytest.mark.parametrize(
    ("monitor", "mode", "expected"),
    [
        (None, None, ("val_acc", "max")),  # the task's own
        ("val_loss", None, ("val_loss", "min")),
        ("val_f1", None, ("val_f1", "max")),
        ("val_bpc", None, ("val_bpc", "min")),
        ("val_loss", "max", ("val_loss", "max")),  # said explicitly
    ],
)
def test_the_monitor_mode_follows_the_name(
    monitor: str | None, mode: str | None, expected: tuple[str, str]
) -> None:
    assert TrainConfig(monitor=monitor, monitor_mode=mode).monitored("val_acc", "max") == expected


class _Guarded(torch.utils.data.Dataset):
    """The test split, refusing to be read while the run is choosing."""

    phase: ClassVar[str] = "setup"
    reads: ClassVar[dict[str, int]] = {}

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["dataset"], name)

    def __getitem__(self, index: int) -> Any:
        if _Guarded.phase == "fit":
            raise AssertionError("the test split was read during fit")
        _Guarded.reads[_Guarded.phase] = _Guarded.reads.get(_Guarded.phase, 0) + 1
        return self.dataset[index]


def test_the_test_split_is_read_only_after_the_best_epoch_is_chosen(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Early stopping, the plateau schedule and the best weights all run on validation;
    the test split is read by the test, once per example, and by the reports after it."""
    build, fit, test = DigitsDataModule._build, L.Trainer.fit, L.Trainer.test
    threads: list[int] = []

    def guarded_build(self: DigitsDataModule) -> None:
        build(self)
        self.test_set = _Guarded(self.test_set)

    def in_phase(phase: str, method: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            _Guarded.phase = phase
            threads.append(torch.get_num_threads())
            try:
                return method(*args, **kwargs)
            finally:
                _Guarded.phase = "after"

        return run

    monkeypatch.setattr(DigitsDataModule, "_build", guarded_build)
    monkeypatch.setattr(L.Trainer, "fit", in_phase("fit", fit))
    monkeypatch.setattr(L.Trainer, "test", in_phase("test", test))
    monkeypatch.setattr(_Guarded, "reads", {})
    before = torch.get_num_threads()
    run = tmp_path / "run"
    train(
        _config(
            "train.early_stopping_patience=1",
            "optimizer.scheduler=plateau",
            "train.num_threads=1",
        ),
        run_dir=run,
    )
    examples = json.loads((run / "metrics.json").read_text())["examples"]
    assert _Guarded.reads["test"] == examples  # every test example once, in the test
    assert (run / "model.safetensors").is_file() and _best(run)["best_epoch"] >= 1
    assert threads == [1, 1] and torch.get_num_threads() == before  # train.num_threads, put back
