"""The long-range dependency tasks as a DataModule, for ``rnnkit train adding|copy``.

Wraps :mod:`rnnkit.data.synthetic`: the adding problem (regression: one number per
sequence) and the copy-memory task (a class per step). Train, validation and test
sets are drawn independently from three seeds, so nothing is shared between them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from rnnkit.data.batching import PadCollate
from rnnkit.data.datasets.base import BaseDataModule
from rnnkit.data.synthetic import ADDING_BASELINE_MSE, AddingProblem, CopyMemory


class LongRangeDataModule(BaseDataModule):
    """The adding problem or the copy-memory task at a chosen length.

    After ``setup``: for ``adding``, ``input_size == num_features == 2``,
    ``horizon == num_targets == 1``, ``baseline_mse`` (≈ 0.167, predicting the mean);
    for ``copy``, ``input_size == num_classes == num_symbols + 2`` and
    ``baseline_loss`` (the memoryless cross-entropy).

    Batches: adding — ``Batch(inputs (B, T, 2), lengths, targets (B, 1))``;
    copy — ``Batch(inputs (B, T, C) one-hot, lengths, targets (B, T))``.

    Arguments:
        task: ``"adding"`` or ``"copy"``.
        steps: the sequence length ``T`` (adding) or the delay ``D`` (copy).
        train_size, val_size, test_size: sequences per split.
        num_symbols: data symbols of the copy task.
        **kwargs: see :class:`~rnnkit.data.datasets.base.BaseDataModule`.
    """

    def __init__(
        self,
        *,
        task: str = "adding",
        steps: int = 100,
        train_size: int = 10_000,
        val_size: int = 1_000,
        test_size: int = 1_000,
        num_symbols: int = 8,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if task not in ("adding", "copy"):
            raise ValueError(f"task must be 'adding' or 'copy', got {task!r}")
        self.task, self.steps, self.num_symbols = task, steps, num_symbols
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        if task == "adding":
            self.input_size = self.num_features = 2
            self.horizon = self.num_targets = 1
            self.baseline_mse = ADDING_BASELINE_MSE
        else:
            self.input_size = self.num_features = self.num_classes = num_symbols + 2
        # Regression targets are raw numbers: nothing to unscale, no series to be naive on.
        self.target_scaler = None
        self.target_feature_index = None
        self.collate = PadCollate()

    def prepare_data(self) -> None:
        """Nothing to fetch: the data is generated."""

    def _make(self, size: int, seed: int) -> Dataset[tuple[Tensor, Tensor]]:
        if self.task == "adding":
            return AddingProblem(size, self.steps, seed=seed)  # targets already (1,)
        return CopyMemory(size, self.steps, num_symbols=self.num_symbols, seed=seed)

    def _build(self) -> None:
        sizes = {k: v if self.limit is None else min(v, self.limit) for k, v in self.sizes.items()}
        self.train_set = self._make(sizes["train"], self.seed)
        self.val_set = self._make(sizes["val"], self.seed + 1_000_003)
        self.test_set = self._make(sizes["test"], self.seed + 2_000_006)

    @property
    def baseline_loss(self) -> float:
        """The copy task's memoryless cross-entropy."""
        probe = CopyMemory(1, self.steps, num_symbols=self.num_symbols, seed=0)
        return probe.baseline_loss

    def naive_forecast(self, inputs: Tensor) -> Tensor:
        """The mean-prediction baseline of the adding problem: always 1."""
        return torch.ones(inputs.shape[0], 1)
