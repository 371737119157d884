"""The run directory: train, reload, evaluate, resume, and the config checks around them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.strategies import DDPStrategy
from safetensors.torch import load_file

from rnnkit.cli import main
from rnnkit.config import TRAINER_DEFAULTS, ConfigError, apply_overrides, run_config_from_dict
from rnnkit.recipes import load_recipe
from rnnkit.training import run as run_module
from rnnkit.training.callbacks import LastCheckpoint, SafetensorsIO
from rnnkit.training.checkpoint import DamagedFileError, load_checkpoint
from rnnkit.training.module import SequenceTaskModule
from rnnkit.training.run import (
    CHECKPOINT_FILE,
    _epochs_done,
    _trainer,
    evaluate,
    fill_defaults,
    load_run,
    train,
)

TINY = [
    "data.limit=120",
    "data.batch_size=16",
    "model.rnn.hidden_size=8",
    "train.max_epochs=2",
    "train.progress_bar=false",
    "train.trainer.num_sanity_val_steps=0",
]


def _config(*extra: str):
    return run_config_from_dict(apply_overrides(load_recipe("digits"), [*TINY, *extra]))


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "digits"
    train(_config(), run_dir=run)
    return run


def test_run_directory_contents(digits_run: Path) -> None:
    metrics = json.loads((digits_run / "metrics.json").read_text())
    assert metrics["split"] == "test (held out)" and metrics["examples"] == 12
    assert 0.0 <= metrics["test_acc"] <= 1.0
    history = json.loads((digits_run / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]
    resolved = (digits_run / "config.yaml").read_text()
    assert "input_size: 28" in resolved and "num_classes: 10" in resolved  # filled from the data


def test_reloaded_model_gives_the_same_test_metrics(digits_run: Path) -> None:
    before = json.loads((digits_run / "metrics.json").read_text())
    after = evaluate(digits_run)
    assert after["test_acc"] == pytest.approx(before["test_acc"])
    assert after["test_loss"] == pytest.approx(before["test_loss"], rel=1e-5)
    loaded = load_run(digits_run)
    assert not loaded.model.training
    assert loaded.model(torch.zeros(1, 28, 28)).shape == (1, 10)


def test_resume_continues_the_epochs(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(_config("train.max_epochs=1"), run_dir=run)
    result = train(_config("train.max_epochs=3"), run_dir=run, resume=True)
    assert result.epochs == 3
    history = json.loads((run / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2, 3]
    assert (run / "logs" / "metrics.csv").is_file()  # the first session's log is kept
    assert (run / "logs" / "resumed-at-epoch-1" / "metrics.csv").is_file()
    state = load_checkpoint(run / CHECKPOINT_FILE)
    assert _epochs_done(state) == 3 and state["global_step"] == 3 * 6  # 96 training digits / 16
    with pytest.raises(ConfigError, match="already trained 3 epochs"):
        train(_config("train.max_epochs=3"), run_dir=run, resume=True)


def test_trainer_arguments_from_the_recipe_reach_the_trainer(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(_config("train.max_epochs=1", "train.trainer.accumulate_grad_batches=2"), run_dir=run)
    state = load_checkpoint(run / CHECKPOINT_FILE)
    assert state["global_step"] == 3  # 96 training digits / 16 = 6 batches, a step every 2
    saved = yaml.safe_load((run / "config.yaml").read_text())["train"]["trainer"]
    assert saved == {**TRAINER_DEFAULTS, "num_sanity_val_steps": 0, "accumulate_grad_batches": 2}


def test_the_trainer_has_the_recipes_arguments_and_rnnkits_own(tmp_path: Path) -> None:
    config = _config(
        "train.trainer.strategy=ddp",
        "train.trainer.accelerator=cpu",
        "train.trainer.devices=1",
        "train.trainer.max_steps=7",
    )
    trainer = _trainer(config, tmp_path, [], max_epochs=5)
    assert isinstance(trainer.strategy, DDPStrategy)
    assert trainer.max_steps == 7 and trainer.num_sanity_val_steps == 0  # the recipe's
    assert trainer.gradient_clip_val == 1.0 and trainer.log_every_n_steps == 20  # defaults
    assert trainer.max_epochs == 5 and isinstance(trainer.logger, CSVLogger)  # rnnkit's
    assert isinstance(trainer.checkpoint_callback, LastCheckpoint)
    assert trainer.checkpoint_callback.path == tmp_path / CHECKPOINT_FILE
    assert isinstance(trainer.strategy.checkpoint_io, SafetensorsIO)  # never a pickle
    assert trainer.default_root_dir == str(tmp_path)


def test_refuses_to_overwrite_a_run(digits_run: Path) -> None:
    with pytest.raises(FileExistsError, match="exists and is not empty"):
        train(_config(), run_dir=digits_run)


def test_config_that_disagrees_with_the_data_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"model\.num_classes=3 disagrees with the data, which gives 10"
    ):
        train(_config("model.num_classes=3"), run_dir=tmp_path / "run")


def test_fill_defaults_fills_nested_and_accepts_equal_lists() -> None:
    filled = fill_defaults(
        {"input": {"kind": "identity"}}, {"input": {"input_size": 28}, "n": (1, 2)}
    )
    assert filled == {"input": {"kind": "identity", "input_size": 28}, "n": (1, 2)}
    assert fill_defaults({"n": [1, 2]}, {"n": (1, 2)}) == {"n": [1, 2]}


def test_empty_split_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"leaves the val split\(s\) empty"):
        train(_config("data.val_fraction=0.0"), run_dir=tmp_path / "run")


def test_unknown_data_option_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"data: unknown option 'batchsize'; did you mean 'batch_size'"
    ):
        train(_config("data.batchsize=3"), run_dir=tmp_path / "run")


def test_a_run_that_fails_before_its_first_epoch_leaves_no_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: SequenceTaskModule) -> None:
        raise RuntimeError("the optimiser could not be built")

    monkeypatch.setattr(SequenceTaskModule, "configure_optimizers", broken)
    with pytest.raises(RuntimeError, match="could not be built"):
        train(_config(), run_dir=tmp_path / "new")
    assert not (tmp_path / "new").exists()
    given = tmp_path / "given"
    given.mkdir()
    with pytest.raises(RuntimeError, match="could not be built"):
        train(_config(), run_dir=given)
    assert given.is_dir() and not any(given.iterdir())  # ready for the same --out again


class _Poison(L.Callback):
    """Turns the weights to NaN at the start of the second epoch (a diverging run)."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == 1:
            with torch.no_grad():
                next(pl_module.parameters()).fill_(float("nan"))


def test_a_diverging_run_fails_in_one_line_and_keeps_the_last_good_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    callbacks = run_module._callbacks
    monkeypatch.setattr(run_module, "_callbacks", lambda *a: [*callbacks(*a), _Poison()])
    run = tmp_path / "run"
    overrides = [arg for item in TINY for arg in ("--set", item)]
    assert main(["train", "digits", "--out", str(run), *overrides]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnnkit train: error: training diverged in epoch 2: ")
    assert "val_loss = nan" in err and f"kept in {run / 'model.safetensors'}" in err
    assert err.count("\n") == 1
    weights = load_file(run / "model.safetensors")  # epoch 1's, finite
    assert all(bool(t.isfinite().all()) for t in weights.values())
    assert [row["epoch"] for row in json.loads((run / "history.json").read_text())] == [1]
    assert _epochs_done(load_checkpoint(run / CHECKPOINT_FILE)) == 1
    assert not (run / "metrics.json").exists()


def test_a_damaged_weights_file_is_one_line_for_evaluate(
    digits_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    weights = run / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(DamagedFileError, match=r"model\.safetensors is damaged \(not a complete"):
        evaluate(run)
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rnnkit evaluate: error: {weights} is damaged") and err.count("\n") == 1


def test_a_damaged_checkpoint_says_how_to_start_over(digits_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    last = run / CHECKPOINT_FILE
    last.write_bytes(last.read_bytes()[:-10])
    with pytest.raises(DamagedFileError, match="delete it to train the run from the start"):
        train(_config("train.max_epochs=3"), run_dir=run, resume=True)


def test_a_run_directory_with_only_a_killed_writes_leftover_is_free(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / ".config.tmp-123.yaml").write_text("half")  # a process killed mid-write
    result = train(_config("train.max_epochs=1"), run_dir=run)
    assert result.epochs == 1 and not list(run.glob(".*"))


def test_train_logger_chooses_the_experiment_log_inside_the_run(tmp_path: Path) -> None:
    assert isinstance(_trainer(_config("train.logger=csv"), tmp_path, [], 1).logger, CSVLogger)
    with pytest.raises(ConfigError, match=r"unknown logger 'wandb'.*csv, tensorboard"):
        _config("train.logger=wandb")
    pytest.importorskip("tensorboard", reason="the optional extra rnnkit[tensorboard]")
    from lightning.pytorch.loggers import TensorBoardLogger

    run = tmp_path / "run"
    train(_config("train.max_epochs=1", "train.logger=tensorboard"), run_dir=run)
    assert list((run / "logs").rglob("events.out.tfevents.*"))  # inside the run directory
    trainer = _trainer(_config("train.logger=tensorboard"), tmp_path / "t", [], 1)
    assert isinstance(trainer.logger, TensorBoardLogger)


def test_the_logger_trainer_argument_points_to_train_logger() -> None:
    with pytest.raises(ConfigError, match=r"train\.trainer\.logger: .*set train\.logger"):
        _config("train.trainer.logger=false")
