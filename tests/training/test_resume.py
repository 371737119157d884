"""Exact resume: 2 epochs + resume + 2 epochs is the uninterrupted 4-epoch run, bit for bit.

The runs are deterministic (``train.trainer.deterministic``) on the CPU in one process
and thread, with inter-layer dropout (so the random states matter), a learning-rate
schedule and early stopping. The interrupted run stops with an error at the start of
its third epoch, after its second checkpoint; ``train(resume=True)`` continues it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
import yaml
from safetensors.torch import load_file

from rnnkit.config import ConfigError, apply_overrides, run_config_from_dict
from rnnkit.recipes import load_recipe
from rnnkit.training import run as run_module
from rnnkit.training.checkpoint import load_checkpoint
from rnnkit.training.module import STEP_SCHEDULERS, schedule_factor
from rnnkit.training.run import CHECKPOINT_FILE, _epochs_done, train
from tests.helpers import assert_same_tree

EXACT = [
    "data.limit=120",
    "data.batch_size=16",
    "model.rnn.hidden_size=8",
    "model.rnn.dropout=0.3",  # between the two GRU layers: draws from the random state
    "train.max_epochs=4",
    "train.early_stopping_patience=2",
    "train.progress_bar=false",
    "train.trainer.num_sanity_val_steps=0",
    "train.trainer.deterministic=true",
    "train.trainer.accelerator=cpu",
]


def _config(*extra: str) -> Any:
    return run_config_from_dict(apply_overrides(load_recipe("digits"), [*EXACT, *extra]))


class Interrupt(RuntimeError):
    """Stands for a crash; raised when training reaches ``epoch`` (0-based)."""


class _InterruptAt(L.Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise Interrupt(f"interrupted at epoch {self.epoch}")


def interrupted_run(
    monkeypatch: pytest.MonkeyPatch, config: Any, run_dir: Path, *, at_epoch: int
) -> None:
    """Train ``config`` into ``run_dir`` until it is interrupted at ``at_epoch``."""
    callbacks = run_module._callbacks
    with monkeypatch.context() as patch:
        patch.setattr(run_module, "_callbacks", lambda *a: [*callbacks(*a), _InterruptAt(at_epoch)])
        with pytest.raises(Interrupt):
            train(config, run_dir=run_dir)


def assert_same_run(a: Path, b: Path) -> None:
    """Equal weights (last and best), optimiser state, history and test metrics."""
    last_a, last_b = load_checkpoint(a / CHECKPOINT_FILE), load_checkpoint(b / CHECKPOINT_FILE)
    for name, tensor in last_a["state_dict"].items():
        assert torch.equal(tensor, last_b["state_dict"][name]), name
    moments_a = last_a["optimizer_states"][0]["state"]
    moments_b = last_b["optimizer_states"][0]["state"]
    for param, state in moments_a.items():
        for key, value in state.items():
            assert torch.equal(value, moments_b[param][key]), (param, key)
    best_a, best_b = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert all(torch.equal(best_a[k], best_b[k]) for k in best_a)
    for name in ("history.json", "metrics.json"):
        assert json.loads((a / name).read_text()) == json.loads((b / name).read_text()), name
    states_a, states_b = (  # early stopping, best score, history, random states
        {k: v for k, v in last["callbacks"].items() if not k.startswith("LastCheckpoint")}
        for last in (last_a, last_b)  # which holds its own path
    )
    assert_same_tree(states_a, states_b)


@pytest.fixture(scope="module", params=["cosine", "warmup_cosine", "one_cycle", "plateau"])
def runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """``(uninterrupted, interrupted after 2 epochs and resumed)`` 4-epoch runs."""
    schedule = [f"optimizer.scheduler={request.param}", "optimizer.patience=0"]
    root = tmp_path_factory.mktemp(f"resume-{request.param}")
    whole, resumed = root / "whole", root / "resumed"
    train(_config(*schedule), run_dir=whole)
    with pytest.MonkeyPatch.context() as monkeypatch:
        interrupted_run(monkeypatch, _config(*schedule), resumed, at_epoch=2)
    assert _epochs_done(load_checkpoint(resumed / CHECKPOINT_FILE)) == 2
    train(_config(*schedule), run_dir=resumed, resume=True)
    return whole, resumed


def test_resumed_run_equals_the_uninterrupted_one(runs: tuple[Path, Path]) -> None:
    whole, resumed = runs
    assert_same_run(whole, resumed)
    assert (resumed / "logs" / "resumed-at-epoch-2" / "metrics.csv").is_file()


def test_the_schedule_continues_after_a_resume(runs: tuple[Path, Path]) -> None:
    """The rate of every epoch, resumed ones included: a schedule rebuilt from
    scratch would start epoch 3 at the base rate again."""
    whole, resumed = runs
    rates = [row["lr"] for row in json.loads((resumed / "history.json").read_text())]
    assert rates == [row["lr"] for row in json.loads((whole / "history.json").read_text())]
    scheduler = run_module.read_run_config(resumed)["optimizer"]["scheduler"]
    last = load_checkpoint(resumed / CHECKPOINT_FILE)
    if scheduler == "cosine":
        assert rates == pytest.approx([0.003 * f for f in (1.0, 0.8535534, 0.5, 0.1464466)])
    if scheduler in STEP_SCHEDULERS:  # per step: epoch e starts after e * its steps
        per_epoch = last["lr_schedulers"][0]["last_epoch"] // _epochs_done(last)
        config = run_config_from_dict(run_module.read_run_config(resumed)).optimizer
        factor = schedule_factor(config, epochs=4, steps=4 * per_epoch)
        assert rates == pytest.approx([0.003 * factor(e * per_epoch) for e in range(len(rates))])
        assert rates[0] < rates[1] > rates[3]  # warmed up, then decayed
    stopping = next(v for k, v in last["callbacks"].items() if k.startswith("EarlyStopping"))
    assert stopping["patience"] == 2  # the early-stopping state came through as well


def test_an_early_stopped_run_resumes_only_with_more_patience(
    runs: tuple[Path, Path], tmp_path: Path
) -> None:
    whole, _ = runs
    run = tmp_path / "run"
    shutil.copytree(whole, run)
    last = load_checkpoint(run / CHECKPOINT_FILE)
    stopping = next(v for k, v in last["callbacks"].items() if k.startswith("EarlyStopping"))
    done = _epochs_done(last)
    if stopping["wait_count"] < 2:
        pytest.skip("this schedule's run did not stop early")
    with pytest.raises(ConfigError, match=rf"stopped early after {done} epochs"):
        train(_config("train.max_epochs=6"), run_dir=run, resume=True)
    result = train(
        _config("train.max_epochs=6", "train.early_stopping_patience=10"), run_dir=run, resume=True
    )
    assert result.epochs == 6


def test_a_run_killed_before_its_first_checkpoint_starts_again(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(_raw()))  # written before training
    result = train(_config("train.max_epochs=1"), run_dir=run, resume=True)
    assert result.epochs == 1 and (run / "metrics.json").is_file()


def _raw() -> dict[str, Any]:
    return apply_overrides(load_recipe("digits"), [*EXACT, "train.max_epochs=1"])


def test_a_trained_but_untested_run_is_tested_on_resume(
    runs: tuple[Path, Path], tmp_path: Path
) -> None:
    whole, _ = runs
    run = tmp_path / "run"
    shutil.copytree(whole, run)
    before = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").unlink()  # killed after its last epoch, before the test
    config = run_config_from_dict(run_module.read_run_config(run))
    result = train(config, run_dir=run, resume=True)
    assert json.loads((run / "metrics.json").read_text()) == before
    assert result.epochs == before["epochs"]
    with pytest.raises(ConfigError, match=r"already trained|stopped early"):
        train(config, run_dir=run, resume=True)


def test_the_earlier_resume_folder_is_refused_in_one_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "resume").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(_raw()))
    with pytest.raises(ConfigError, match=r"earlier rnnkit's resume state") as err:
        train(_config(), run_dir=run, resume=True)
    assert "\n" not in str(err.value)
