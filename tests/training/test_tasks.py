"""Task losses and metrics against hand computations."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnkit.config import ConfigError
from rnnkit.data import Batch, StandardScaler
from rnnkit.training.tasks import TASKS, ForecastTask, update_metrics


class Mean(torch.nn.Module):
    """A forecaster that predicts the window's mean of feature 0."""

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        return window[..., 0].mean(dim=1, keepdim=True)  # (B, 1)


def test_forecast_metrics_are_in_series_units_with_baselines() -> None:
    scaler = StandardScaler().fit(torch.tensor([[10.0], [20.0], [30.0]]).numpy())
    task = ForecastTask(season=2, moving_average=2)
    task.bind(SimpleNamespace(target_scaler=scaler, target_feature_index=[0]))
    raw = torch.tensor([[[10.0], [20.0], [30.0], [40.0]]])  # one window, W=4
    scaled = torch.as_tensor(scaler.transform(raw.reshape(-1, 1).numpy())).reshape(1, 4, 1).float()
    target = torch.as_tensor(scaler.transform(np.array([[50.0]]))).float()  # (1, 1)
    result = task.step(Mean(), Batch(scaled, torch.tensor([4]), target), "test")
    metrics = task.metrics("test")
    update_metrics(metrics, result.updates)
    values = {k: float(v) for k, v in metrics.compute().items()}
    assert values["rmse"] == pytest.approx(25.0, rel=1e-4)  # mean 25 vs 50
    assert values["persistence_rmse"] == pytest.approx(10.0, rel=1e-4)  # 40 vs 50
    assert values["seasonal_rmse"] == pytest.approx(20.0, rel=1e-4)  # 30 (two back) vs 50
    assert values["moving_average_rmse"] == pytest.approx(15.0, rel=1e-4)  # 35 vs 50
    assert task.baselines() == ["persistence", "seasonal", "moving_average"]


def test_every_task_needs_bind_before_metrics() -> None:
    for name in ("classification", "language_model", "seq2seq", "caption", "tagging"):
        with pytest.raises(RuntimeError, match="call bind"):
            TASKS.get(name)().metrics("train")


def test_seq2seq_ratio_is_checked() -> None:
    with pytest.raises(ValueError, match=r"teacher_forcing_ratio must be in \[0, 1\], got 1.5"):
        TASKS.get("seq2seq")(teacher_forcing_ratio=1.5)


def test_majority_class_baseline_counts_the_training_split_only() -> None:
    from rnnkit.training.tasks import ClassificationTask

    def loader(*chunks: list[int]) -> list[SimpleNamespace]:
        return [SimpleNamespace(targets=torch.tensor(c)) for c in chunks]

    data = SimpleNamespace(
        train_dataloader=lambda: loader([2, 2, 1], [2, 0]),  # class 2 is the majority
        test_dataloader=lambda: loader([1, 1, 1], [2, 0]),  # though class 1 leads here
    )
    task = ClassificationTask(num_classes=3)
    assert task.baseline_metrics(data) == {"test_majority_class_acc": pytest.approx(1 / 5)}


class Fixed(torch.nn.Module):
    """A model that answers the same logits whatever the input."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.logits


def test_multilabel_loss_is_binary_cross_entropy_and_f1_is_micro_and_macro() -> None:
    from rnnkit.training.tasks import MultiLabelClassificationTask

    task = MultiLabelClassificationTask()
    task.bind(SimpleNamespace(num_classes=3, multi_label=True))
    logits = torch.tensor([[2.0, -2.0, 1.0], [-1.0, 3.0, -3.0]])  # predicts {0, 2} and {1}
    targets = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    result = task.step(Fixed(logits), Batch(torch.zeros(2, 1), torch.ones(2), targets), "val")
    p = torch.sigmoid(logits)
    bce = -(targets * p.log() + (1 - targets) * (1 - p).log()).mean()
    assert float(result.loss) == pytest.approx(float(bce), rel=1e-6)
    metrics = task.metrics("val")
    update_metrics(metrics, result.updates)
    values = {k: float(v) for k, v in metrics.compute().items()}
    # micro: tp 2 (0 in row 0, 1 in row 1), fp 1, fn 1 → F1 2/3; macro: labels 1, 1, 0 → 2/3
    assert values["f1_micro"] == pytest.approx(2 / 3, rel=1e-5)
    assert values["f1_macro"] == pytest.approx(2 / 3, rel=1e-5)
    assert values["exact"] == 0.0
    assert task.monitor == "val_f1_micro" and task.mode == "max"


def test_label_tasks_refuse_data_of_the_other_kind() -> None:
    from rnnkit.config import ConfigError

    with pytest.raises(ConfigError, match=r"task\.name=multilabel_classification"):
        TASKS.get("classification")().bind(SimpleNamespace(num_classes=2, multi_label=True))
    with pytest.raises(ConfigError, match=r"data\.multi_label=true"):
        TASKS.get("multilabel_classification")().bind(SimpleNamespace(num_classes=2))
    with pytest.raises(ConfigError, match=r"data\.targets=values"):
        TASKS.get("regression")().bind(SimpleNamespace(target_scaler=None))


def test_regression_metrics_are_in_target_units_beside_the_training_mean() -> None:
    scaler = StandardScaler().fit(np.array([[10.0], [30.0]]))  # mean 20, std 10
    task = TASKS.get("regression")()
    task.bind(SimpleNamespace(target_scaler=scaler, num_targets=1))
    preds = torch.tensor([[0.5], [1.0]])  # 25 and 30 in target units
    targets = torch.tensor([[1.0], [-1.0]])  # 30 and 10
    result = task.step(Fixed(preds), Batch(torch.zeros(2, 1, 1), torch.ones(2), targets), "test")
    metrics = task.metrics("test")
    update_metrics(metrics, result.updates)
    values = {k: float(v) for k, v in metrics.compute().items()}
    assert values["mae"] == pytest.approx((5 + 20) / 2, rel=1e-5)
    assert values["mean_mae"] == pytest.approx(10.0, rel=1e-5)  # 20 against 30 and 10
    assert values["mean_rmse"] == pytest.approx(10.0, rel=1e-5)
    assert float(result.loss) == pytest.approx(((0.5 - 1) ** 2 + (1 + 1) ** 2) / 2)


def _labelled(train_labels: list[int], num_classes: int) -> SimpleNamespace:
    """A bound-able DataModule stand-in whose training set keeps its labels."""
    return SimpleNamespace(
        num_classes=num_classes,
        train_set=SimpleNamespace(labels=np.asarray(train_labels, dtype=np.int64)),
    )


def _batch(logits: torch.Tensor, targets: list[int]) -> tuple[Fixed, SimpleNamespace]:
    batch = SimpleNamespace(inputs=None, lengths=None, targets=torch.tensor(targets))
    return Fixed(logits), batch


def test_label_smoothing_and_class_weights_shape_the_training_loss_only() -> None:
    from rnnkit.training.tasks import ClassificationTask

    logits = torch.randn(5, 3)
    targets = [0, 1, 2, 2, 0]
    model, batch = _batch(logits, targets)
    task = ClassificationTask(label_smoothing=0.1, class_weights=[1.0, 2.0, 0.5])
    task.bind(_labelled([0, 1, 2], 3))
    expected = F.cross_entropy(
        logits, batch.targets, weight=torch.tensor([1.0, 2.0, 0.5]), label_smoothing=0.1
    )
    assert torch.allclose(task.step(model, batch, "train").loss, expected)
    plain = F.cross_entropy(logits, batch.targets)
    for stage in ("val", "test"):
        assert torch.allclose(task.step(model, batch, stage).loss, plain)
    smoothed = ClassificationTask(label_smoothing=0.1)
    smoothed.bind(_labelled([0, 1, 2], 3))
    assert not torch.allclose(smoothed.step(model, batch, "train").loss, plain)


def test_balanced_class_weights_come_from_the_training_labels() -> None:
    from rnnkit.training.tasks import ClassificationTask, balanced_class_weights

    task = ClassificationTask(class_weights="balanced")
    task.bind(_labelled([0, 0, 0, 0, 0, 0, 1, 1, 3, 3, 3, 3], 4))  # class 2 never seen
    assert task.weights is not None
    assert task.weights.tolist() == pytest.approx([0.5, 1.5, 0.0, 0.75])
    counts = torch.tensor([6, 2, 0, 4])
    assert (balanced_class_weights(counts) * counts).tolist() == pytest.approx([3, 3, 0, 3])


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"label_smoothing": 1.0}, r"task.label_smoothing: expected a number in \[0, 1\)"),
        ({"class_weights": "balance"}, "expected 'balanced', a list of numbers or null"),
        ({"class_weights": [1.0, -1.0]}, "expected finite numbers >= 0"),
        ({"class_weights": [1.0, 2.0]}, "expected 3 weights"),
    ],
)
def test_classification_options_are_checked(options: dict, match: str) -> None:
    from rnnkit.training.tasks import ClassificationTask

    with pytest.raises(ConfigError, match=match):
        ClassificationTask(**options).bind(_labelled([0, 1, 2], 3))
