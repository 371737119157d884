"""The task reports: the classifier's confusion matrix against a hand count."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from rnnkit.data import Batch
from rnnkit.training.reports import classification_report, confusion_counts

TARGETS = [torch.tensor([0, 1, 2, 2]), torch.tensor([1, 1, 0])]
PREDICTED = [torch.tensor([0, 2, 2, 1]), torch.tensor([1, 0, 0])]


class Replay(torch.nn.Module):
    """A 'classifier' that answers each batch with the next fixed prediction."""

    def __init__(self, answers: list[torch.Tensor], num_classes: int) -> None:
        super().__init__()
        self.logits = iter([torch.eye(num_classes)[a] for a in answers])  # (B, C) one-hot

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return next(self.logits)


def _batches() -> list[Batch]:
    return [Batch(torch.zeros(len(t), 2), torch.full((len(t),), 2), t) for t in TARGETS]


def test_confusion_counts_equal_the_hand_count() -> None:
    by_hand = np.zeros((3, 3), dtype=np.int64)
    for target, predicted in zip(TARGETS, PREDICTED, strict=True):
        np.add.at(by_hand, (target.numpy(), predicted.numpy()), 1)
    counts = confusion_counts(Replay(PREDICTED, 3), _batches(), 3)
    np.testing.assert_array_equal(counts, by_hand)
    assert counts.dtype == np.int64 and counts.sum() == 7 and np.trace(counts) == 4


def test_classification_report_writes_the_confusion_matrix(tmp_path: Path) -> None:
    data = SimpleNamespace(test_dataloader=_batches, class_names=["a", "b", "c"])
    files = classification_report(
        SimpleNamespace(name="toy"),
        SimpleNamespace(num_classes=3),
        Replay(PREDICTED, 3),
        data,
        tmp_path,
    )
    assert files == {"confusion_matrix": tmp_path / "confusion_matrix.png"}
    assert files["confusion_matrix"].stat().st_size > 0


def test_multilabel_report_lists_precision_recall_f1_and_support_per_label(tmp_path: Path) -> None:
    import json

    from rnnkit.training.reports import multilabel_report

    targets = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    answers = torch.tensor([[4.0, -4.0], [4.0, -4.0], [4.0, 4.0]])  # label 1 missed once

    class Fixed(torch.nn.Module):
        def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            return answers

    dm = SimpleNamespace(
        class_names=["a", "b"],
        test_dataloader=lambda: [Batch(torch.zeros(3, 2), torch.full((3,), 2), targets)],
    )
    task = SimpleNamespace(num_classes=2, threshold=0.5)
    files = multilabel_report(SimpleNamespace(name="m"), task, Fixed(), dm, tmp_path)
    rows = {r["label"]: r for r in json.loads(files["per_label"].read_text())}
    assert rows["a"]["precision"] == 2 / 3 and rows["a"]["recall"] == 1.0
    assert rows["b"]["precision"] == 1.0 and rows["b"]["recall"] == 0.5
    assert rows["b"]["support"] == 2 and "support" in files["per_label_table"].read_text()
