"""Training progress on stderr: Lightning's bar on a terminal, one line per epoch elsewhere.

Results (the summary, predictions, metrics) go to stdout, so a run can be piped; progress
is not a result. On a terminal, :class:`StderrProgressBar` is Lightning's own tqdm bar,
drawn on stderr. In a log file or a CI job, where a redrawn bar becomes thousands of
carriage returns, :class:`EpochLines` writes one line when each epoch ends::

    epoch 3/15: train_loss 0.412, val_loss 0.388, val_accuracy 0.91 (1.2 s)
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import lightning as L
from lightning.pytorch.callbacks import ProgressBar, TQDMProgressBar


def progress_display(stream: TextIO | None = None) -> ProgressBar:
    """The progress display for ``stream`` (default ``sys.stderr``): a bar on a terminal,
    :class:`EpochLines` otherwise."""
    stream = sys.stderr if stream is None else stream
    return StderrProgressBar() if stream.isatty() else EpochLines(stream)


class StderrProgressBar(TQDMProgressBar):
    """Lightning's tqdm progress bar, drawn on stderr instead of stdout."""

    @staticmethod
    def _on_stderr(make: Callable[[], Any]) -> Any:
        # Lightning passes `file=sys.stdout` when it makes each bar; point it at stderr.
        with contextlib.redirect_stdout(sys.stderr):
            return make()

    def init_sanity_tqdm(self) -> Any:
        return self._on_stderr(super().init_sanity_tqdm)

    def init_train_tqdm(self) -> Any:
        return self._on_stderr(super().init_train_tqdm)

    def init_validation_tqdm(self) -> Any:
        return self._on_stderr(super().init_validation_tqdm)

    def init_test_tqdm(self) -> Any:
        return self._on_stderr(super().init_test_tqdm)

    def init_predict_tqdm(self) -> Any:
        return self._on_stderr(super().init_predict_tqdm)


class EpochLines(ProgressBar):
    """One line per training epoch on ``stream``: the epoch, its logged values, its time.

    Arguments:
        stream: where the lines go (default ``sys.stderr``).
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self.stream = stream
        self._enabled = True
        self._start = 0.0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not (self._enabled and trainer.is_global_zero) or trainer.sanity_checking:
            return
        self._write(epoch_line(trainer, time.perf_counter() - self._start))

    def _write(self, line: str) -> None:
        stream = sys.stderr if self.stream is None else self.stream
        stream.write(line + "\n")
        stream.flush()


def epoch_line(trainer: L.Trainer, seconds: float) -> str:
    """``epoch 3/15: train_loss 0.412, val_loss 0.388 (1.2 s)`` from the logged values."""
    values = [
        f"{name.removesuffix('_epoch')} {float(value):.4g}"
        for name, value in sorted(trainer.callback_metrics.items())
        if getattr(value, "numel", lambda: 1)() == 1 and not name.endswith("_step")
    ]
    total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
    shown = ", ".join(values) or "no values logged"
    return f"epoch {trainer.current_epoch + 1}/{total}: {shown} ({seconds:.1f} s)"
