"""GradientFlowCallback: one JSON line every N steps (and at step 0), a PNG at the end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

import rnnkit
from rnnkit.data.synthetic import AddingProblem
from rnnkit.diagnostics import GradientFlowCallback


class TinyAdder(pl.LightningModule):
    """The interface ``rnnkit.training``'s ``SequenceTaskModule`` exposes: ``loss_on_batch``."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = rnnkit.GRU(2, 4, batch_first=True)
        self.head = nn.Linear(4, 1)

    def loss_on_batch(self, batch: tuple[Tensor, Tensor]) -> Tensor:
        x, y = batch
        out, _ = self.rnn(x)  # (B, T, H), full-length sequences
        return nn.functional.mse_loss(self.head(out[:, -1]), y)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self.loss_on_batch(batch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def _trainer(callback: GradientFlowCallback, root: Path, steps: int) -> pl.Trainer:
    return pl.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
        callbacks=[callback],
    )


def _fit(callback: GradientFlowCallback, root: Path, steps: int = 5) -> TinyAdder:
    model = TinyAdder()
    _trainer(callback, root, steps).fit(model, DataLoader(AddingProblem(64, 6), batch_size=8))
    return model


def test_writes_a_line_every_n_steps_and_a_png(tmp_path: Path) -> None:
    callback = GradientFlowCallback(every_n_steps=2)
    _fit(callback, tmp_path)
    lines = [
        json.loads(line) for line in (tmp_path / "gradient_flow.jsonl").read_text().splitlines()
    ]
    assert [line["step"] for line in lines] == [0, 2, 4]
    first = lines[0]["layers"][0]
    assert (first["module"], first["cell"], len(first["grad_norms"]["h"])) == ("rnn", "gru", 6)
    assert first["per_sequence"] == {} and set(first["gates"]) == {"r", "z", "n"}
    assert set(lines[0]["parameters"]) == {"rnn.weight_ih_l0", "rnn.weight_hh_l0",
                                           "rnn.bias_ih_l0", "rnn.bias_hh_l0",
                                           "head.weight", "head.bias"}  # fmt: skip
    assert lines[0]["parameters"] != lines[-1]["parameters"]  # it trained in between
    assert (tmp_path / "gradient_flow.png").stat().st_size > 0
    assert [step for step, _ in callback.history] == [0, 2, 4]


def test_custom_loss_fn_and_out_dir(tmp_path: Path) -> None:
    seen: list[Any] = []

    def loss_fn(module: TinyAdder, batch: tuple[Tensor, Tensor]) -> Tensor:
        seen.append(batch)
        return module.loss_on_batch(batch) * 2

    callback = GradientFlowCallback(3, tmp_path / "flow", loss_fn=loss_fn, plot=False)
    _fit(callback, tmp_path / "root", steps=3)
    lines = (tmp_path / "flow" / "gradient_flow.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [0, 3]
    assert len(seen) == 2
    assert not (tmp_path / "flow" / "gradient_flow.png").exists()


def test_a_module_without_loss_on_batch_is_a_clear_error(tmp_path: Path) -> None:
    class NoLoss(TinyAdder):
        loss_on_batch = None  # type: ignore[assignment]

        def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
            return TinyAdder.loss_on_batch(self, batch)

    trainer = _trainer(GradientFlowCallback(1), tmp_path, steps=1)
    with pytest.raises(AttributeError, match="expected NoLoss to define loss_on_batch"):
        trainer.fit(NoLoss(), DataLoader(AddingProblem(8, 4), batch_size=4))


def test_every_n_steps_is_validated() -> None:
    with pytest.raises(ValueError, match="expected every_n_steps >= 1, got 0"):
        GradientFlowCallback(every_n_steps=0)
