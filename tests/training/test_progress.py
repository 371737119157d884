"""Progress goes to stderr: a bar on a terminal, one line per epoch elsewhere."""

from __future__ import annotations

import io
import re
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from rnnkit.cli import main
from rnnkit.training.progress import EpochLines, StderrProgressBar, progress_display


class _Regression(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.mse_loss(self.linear(x), y)
        self.log("train_loss", loss, on_epoch=True, on_step=False)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self.linear(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(bar: L.Callback, epochs: int) -> None:
    data = TensorDataset(torch.randn(16, 2), torch.randn(16, 1))
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[bar],
    )
    trainer.fit(_Regression(), DataLoader(data, batch_size=4), DataLoader(data, batch_size=8))


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_display_is_a_bar_on_a_terminal_and_lines_elsewhere() -> None:
    assert isinstance(progress_display(_Terminal()), StderrProgressBar)
    assert isinstance(progress_display(io.StringIO()), EpochLines)


def test_one_line_per_epoch_with_the_logged_values() -> None:
    stream = io.StringIO()
    _fit(EpochLines(stream), epochs=3)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    pattern = r"epoch {}/3: train_loss [-0-9.e]+, val_loss [-0-9.e]+ \([0-9.]+ s\)"
    for epoch, line in enumerate(lines, start=1):
        assert re.fullmatch(pattern.format(epoch), line), line


def test_the_bar_is_drawn_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    _fit(StderrProgressBar(), epochs=1)
    captured = capsys.readouterr()
    assert "Epoch 0" in captured.err and "Epoch 0" not in captured.out


def test_rnnkit_train_keeps_stdout_for_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sets = ["train.max_epochs=2", "train.trainer.num_sanity_val_steps=0"]
    argv = ["train", "hello", "--out", str(tmp_path / "run"), *(f"--set={s}" for s in sets)]
    assert main(argv) == 0
    captured = capsys.readouterr()  # stderr is not a terminal here: one line per epoch
    assert captured.out.startswith("hello: trained 2 epoch(s)")
    assert not re.search(r"^epoch \d", captured.out, re.M)
    assert re.search(r"^epoch 1/2: .*train_loss", captured.err, re.M)
    assert re.search(r"^epoch 2/2: ", captured.err, re.M)
