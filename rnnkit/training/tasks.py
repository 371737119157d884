"""Tasks: how a model meets a batch — the loss, the metrics, and what to predict.

A task knows the input/output pattern (many-to-one classification, next-token
language modelling, encoder–decoder, one-to-many captioning, forecasting) and turns
one :class:`~rnnkit.data.Batch` ``(inputs, lengths, targets)`` into a loss and metric
updates. Models stay free of training logic; the Lightning module stays free of
task logic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import Metric, MetricCollection

from rnnkit.config import ConfigError
from rnnkit.registry import Registry
from rnnkit.training.metrics import (
    REGRESSION_METRICS,
    SequenceExactMatch,
    classification_metrics,
    language_model_metrics,
    multilabel_metrics,
    regression_metrics,
    token_accuracy,
)


@dataclass
class StepResult:
    """What a task computes on one batch.

    Attributes:
        loss: the scalar training loss.
        batch_size: examples in the batch (for epoch averages).
        updates: metric name → the arguments of its ``update`` call.
    """

    loss: Tensor
    batch_size: int
    updates: dict[str, tuple[Tensor, ...]]


class Task:
    """Base class: subclasses set the class attributes and implement :meth:`step`.

    Attributes:
        monitor: the logged quantity that selects the best epoch (``val_`` + a name).
        mode: ``"min"`` or ``"max"`` for ``monitor``.
        main_metric: the metric plotted beside the loss in the training curves.
    """

    monitor: ClassVar[str] = "val_loss"
    mode: ClassVar[str] = "min"
    main_metric: ClassVar[str] = "acc"

    def bind(self, datamodule: Any) -> None:
        """Take what the task needs from a set-up DataModule (class count, pad id, ...)."""

    def model_defaults(self, datamodule: Any) -> dict[str, Any]:
        """Model options that follow from the data (vocabulary size, class count, ...).

        They fill the recipe's model options where the recipe leaves them out; a
        recipe value that disagrees with the data is an error.
        """
        return {}

    def metrics(self, stage: str) -> MetricCollection:
        """Fresh metrics for a stage (``train``, ``val`` or ``test``)."""
        raise NotImplementedError

    def step(self, model: nn.Module, batch: Any, stage: str) -> StepResult:
        """Loss and metric updates for one batch."""
        raise NotImplementedError

    def baseline_metrics(self, datamodule: Any) -> dict[str, float]:
        """Test metrics of a model-free baseline, to print beside the model's (none here)."""
        return {}


TASKS: Registry[type[Task]] = Registry("task")


class _LabelTask(Task):
    """A task whose targets are class labels: it takes the class count from the data."""

    multi_label: ClassVar[bool] = False

    def __init__(self, num_classes: int | None = None) -> None:
        self.num_classes = num_classes

    def bind(self, datamodule: Any) -> None:
        _check_label_kind(self, datamodule)
        self.num_classes = int(datamodule.num_classes)

    def model_defaults(self, datamodule: Any) -> dict[str, Any]:
        return {"input": input_defaults(datamodule), "num_classes": int(datamodule.num_classes)}


class ClassificationTask(_LabelTask):
    """Many-to-one: one class per sequence; cross-entropy on logits.

    Metrics: accuracy (``acc``) and macro-averaged F1 (``f1``).

    Arguments:
        num_classes: ``C`` (filled from the data).
        label_smoothing: mix the one-hot target with the uniform distribution,
            ``(1 - ε) · onehot + ε / C`` (Szegedy et al. 2016), in ``[0, 1)``.
        class_weights: weigh each class's examples in the loss: ``"balanced"``
            (``N / (C · N_c)`` from the training split's label counts, scikit-learn's
            rule; a class absent from it gets 0) or an explicit list of ``C``
            non-negative numbers; ``None``: every example counts alike.

    Both shape the *training* loss only: ``val_loss`` and ``test_loss`` stay the plain
    cross-entropy, comparable between runs with and without them.
    """

    monitor, mode, main_metric = "val_acc", "max", "acc"

    def __init__(
        self,
        num_classes: int | None = None,
        label_smoothing: float = 0.0,
        class_weights: str | list[float] | None = None,
    ) -> None:
        super().__init__(num_classes)
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(
                f"task.label_smoothing: expected a number in [0, 1), got {label_smoothing!r}"
            )
        self.label_smoothing = label_smoothing
        self.class_weights = _check_class_weights(class_weights)
        self.weights: Tensor | None = None  # (C,) once bound

    def bind(self, datamodule: Any) -> None:
        super().bind(datamodule)
        n = _required(self.num_classes, "num_classes")
        if self.class_weights == "balanced":
            self.weights = balanced_class_weights(training_class_counts(datamodule, n))
        elif self.class_weights is not None:
            if len(self.class_weights) != n:
                raise ConfigError(
                    f"task.class_weights: expected {n} weights (one per class), "
                    f"got {len(self.class_weights)}"
                )
            self.weights = torch.tensor(self.class_weights, dtype=torch.float32)

    def metrics(self, stage: str) -> MetricCollection:
        return classification_metrics(_required(self.num_classes, "num_classes"))

    def step(self, model: nn.Module, batch: Any, stage: str) -> StepResult:
        logits = model(batch.inputs, batch.lengths)  # (B, C)
        if stage == "train":
            weight = None if self.weights is None else self.weights.to(logits)
            loss = F.cross_entropy(
                logits, batch.targets, weight=weight, label_smoothing=self.label_smoothing
            )
        else:
            loss = F.cross_entropy(logits, batch.targets)
        preds = logits.detach()
        return StepResult(loss, len(batch.targets), {"*": (preds, batch.targets)})

    def baseline_metrics(self, datamodule: Any) -> dict[str, float]:
        """``test_majority_class_acc``: always answering the most frequent training class.

        The floor any classifier must clear (46-topic Reuters: about a third of the
        newswires are one topic). The class is counted on the training split only.
        """
        n = _required(self.num_classes, "num_classes")
        majority = int(training_class_counts(datamodule, n).argmax())
        hits = total = 0
        for batch in datamodule.test_dataloader():
            targets = batch.targets.reshape(-1)
            hits += int((targets == majority).sum())
            total += targets.numel()
        return {"test_majority_class_acc": hits / total} if total else {}


def _check_class_weights(value: Any) -> str | list[float] | None:
    if value is None or value == "balanced":
        return value
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise ConfigError(
            f"task.class_weights: expected 'balanced', a list of numbers or null, got {value!r}"
        )
    numbers = [float(v) for v in value if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(numbers) != len(value) or not all(math.isfinite(v) and v >= 0 for v in numbers):
        raise ConfigError(f"task.class_weights: expected finite numbers >= 0, got {list(value)!r}")
    return numbers


def training_class_counts(datamodule: Any, num_classes: int) -> Tensor:
    """``(C,)`` examples of each class in the training split.

    Read from the training dataset's ``labels`` when it keeps them (no batches are
    built), else counted over the training batches.
    """
    labels = getattr(getattr(datamodule, "train_set", None), "labels", None)
    if isinstance(labels, np.ndarray) and labels.ndim == 1:
        return torch.bincount(torch.from_numpy(labels.astype(np.int64)), minlength=num_classes)
    counts = torch.zeros(num_classes, dtype=torch.long)
    for batch in datamodule.train_dataloader():
        counts += torch.bincount(batch.targets.reshape(-1).cpu(), minlength=num_classes)
    return counts


def balanced_class_weights(counts: Tensor) -> Tensor:
    r"""``(C,)`` weights :math:`w_c = N / (C \, N_c)` (0 for a class with no examples).

    Each class then carries the same total weight in the loss.

    Example::

        >>> balanced_class_weights(torch.tensor([6, 2, 0, 4]))
        tensor([0.5000, 1.5000, 0.0000, 0.7500])
    """
    counts = counts.to(torch.float32)
    present = counts > 0
    total, classes = counts.sum(), len(counts)
    return torch.where(present, total / (classes * counts.clamp(min=1)), 0.0)


def _check_label_kind(task: Task, datamodule: Any) -> None:
    """One label per example and multi-hot rows need different tasks; say which."""
    multi = bool(getattr(datamodule, "multi_label", False))
    wanted = getattr(task, "multi_label", False)
    if multi and not wanted:
        raise ConfigError(
            "the data has several labels per example (data.multi_label=true); use "
            "task.name=multilabel_classification (recipe text-multilabel)"
        )
    if wanted and not multi:
        raise ConfigError(
            "task multilabel_classification needs multi-hot targets: set data.multi_label=true "
            "(with data.label_separator for the labels in one cell)"
        )


class MultiLabelClassificationTask(_LabelTask):
    """Many-to-one with several labels per sequence: multi-hot targets ``(B, L)``.

    Loss: binary cross-entropy on the logits (``binary_cross_entropy_with_logits``, one
    independent yes/no per label). Metrics: ``f1_micro`` (over every label decision),
    ``f1_macro`` (the mean of the labels' F1, so rare labels count as much as frequent
    ones) and ``exact`` (every label of an example right), at ``threshold``.
    """

    monitor, mode, main_metric = "val_f1_micro", "max", "f1_micro"
    multi_label = True

    def __init__(self, num_classes: int | None = None, threshold: float = 0.5) -> None:
        super().__init__(num_classes)
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
        self.threshold = threshold

    def metrics(self, stage: str) -> MetricCollection:
        n = _required(self.num_classes, "num_classes")
        return multilabel_metrics(n, threshold=self.threshold)

    def step(self, model: nn.Module, batch: Any, stage: str) -> StepResult:
        logits = model(batch.inputs, batch.lengths)  # (B, L)
        targets = batch.targets.to(logits.dtype)  # (B, L) multi-hot
        loss = F.binary_cross_entropy_with_logits(logits, targets)
        # Probabilities, not logits: torchmetrics takes values inside [0, 1] as probabilities.
        probs = torch.sigmoid(logits.detach())
        return StepResult(loss, len(targets), {"*": (probs, batch.targets.long())})

    def baseline_metrics(self, datamodule: Any) -> dict[str, float]:
        """``test_majority_class_f1_micro``: always answering the most frequent training label."""
        n = _required(self.num_classes, "num_classes")
        counts = torch.zeros(n)
        for batch in datamodule.train_dataloader():
            counts += batch.targets.reshape(-1, n).sum(0).cpu()
        guess = torch.zeros(n)
        guess[int(counts.argmax())] = 1.0
        metric = multilabel_metrics(n, threshold=self.threshold)["f1_micro"]
        seen = False
        for batch in datamodule.test_dataloader():
            targets = batch.targets.reshape(-1, n).long()
            metric.update(guess.expand(len(targets), n), targets)
            seen = True
        return {"test_majority_class_f1_micro": float(metric.compute())} if seen else {}


class RegressionTask(Task):
    """Many-to-one with numbers: a whole sequence → ``n`` values; MSE on scaled targets.

    The model is the classifier with ``num_classes = n`` outputs and no softmax. Metrics
    are in the targets' own units (the data's ``target_scaler`` undone): ``rmse`` and
    ``mae``; on the test split the same for the naive baseline that always answers the
    training mean (``mean_rmse``, ``mean_mae``).
    """

    monitor, mode, main_metric = "val_loss", "min", "rmse"
    _METRICS = ("rmse", "mae")

    def __init__(self) -> None:
        self.target_scaler: Any = None

    def bind(self, datamodule: Any) -> None:
        if getattr(datamodule, "target_scaler", None) is None:
            raise ConfigError(
                "task regression needs numeric targets: set data.targets=values "
                "(the sequences DataModule)"
            )
        self.target_scaler = datamodule.target_scaler

    def model_defaults(self, datamodule: Any) -> dict[str, Any]:
        return {"input": input_defaults(datamodule), "num_classes": int(datamodule.num_targets)}

    def metrics(self, stage: str) -> MetricCollection:
        prefixes = ["", "mean_"] if stage == "test" else [""]
        return regression_metrics(prefixes, self._METRICS)

    def unscale(self, values: Tensor) -> Tensor:
        """Scaled ``(B, n)`` values → the targets' units."""
        restored = self.target_scaler.inverse_transform(values.detach().cpu().double().numpy())
        return torch.as_tensor(restored, dtype=values.dtype, device=values.device)

    def step(self, model: nn.Module, batch: Any, stage: str) -> StepResult:
        preds = model(batch.inputs, batch.lengths)  # (B, n), scaled units
        loss = F.mse_loss(preds, batch.targets)
        target = self.unscale(batch.targets)
        forecasts = {"": self.unscale(preds)}
        if stage == "test":  # the training mean is 0 in scaled units
            forecasts["mean_"] = self.unscale(torch.zeros_like(batch.targets))
        updates = {
            f"{prefix}{metric}": (forecast, target)
            for prefix, forecast in forecasts.items()
            for metric in self._METRICS
        }
        return StepResult(loss, len(batch.targets), updates)


class LanguageModelTask(Task):
    """Synchronised many-to-many: predict token ``t+1`` at every step ``t``.

    Batches hold ``inputs`` ``(B, T)`` and ``targets`` ``(B, T)`` (the inputs shifted by
    one). Metrics: perplexity (``ppl``), bits per token (``bpc``; per character for
    a character model) and next-token accuracy (``acc``).
    """

    monitor, mode, main_metric = "val_loss", "min", "bpc"

    def __init__(self, vocab_size: int | None = None, pad_id: int | None = None) -> None:
        self.vocab_size, self.pad_id = vocab_size, pad_id

    def bind(self, datamodule: Any) -> None:
        self.vocab_size = len(datamodule.vocab)
        self.pad_id = datamodule.vocab.pad_id

    def model_defaults(self, datamodule: Any) -> dict[str, Any]:
        vocab = datamodule.vocab
        return {"vocab_size": len(vocab), "padding_idx": vocab.pad_id, "unk_idx": vocab.unk_id}

    def metrics(self, stage: str) -> MetricCollection:
        return language_model_metrics(_required(self.vocab_size, "vocab_size"), pad_id=self.pad_id)

    def step(self, model: nn.Module, batch: Any, stage: str) -> StepResult:
        logits, _ = model(batch.inputs, batch.lengths)  # (B, T, V)
        flat_logits = logits.reshape(-1, logits.shape[-1])  # (B*T, V)
        flat_targets = batch.targets.reshape(-1)  # (B*T,)
        ignore = -100 if self.pad_id is None else self.pad_id
        loss = F.cross_entropy(flat_logits, flat_targets, ignore_index=ignore)
        return StepResult(loss, len(batch.targets), {"*": (flat_logits.detach(), flat_targets)})


class TaggingTask(_LabelTask):
    """Synchronised many-to-many with labels: a class for every step (tagging, copy task).

    ``targets`` ``(B, T)`` (padded with ``-100`` where sequences are shorter);
    metric: per-step accuracy (``acc``).
    """

    monitor, mode, main_metric = "val_loss", "min", "acc"

    def metrics(self, stage: str) -> MetricCollection:
        n = _required(self.num_classes, "num_classes")
        return MetricCollection({"acc": token_accuracy(n, ignore_index=-100)})

    def step(self, model: nn.Module, batch: Any, stage: str) -> StepResult:
        logits, _ = model(batch.inputs, batch.lengths)  # (B, T, C)
        flat_logits = logits.reshape(-1, logits.shape[-1])
        flat_targets = batch.targets.reshape(-1)
        loss = F.cross_entropy(flat_logits, flat_targets, ignore_index=-100)
        return StepResult(loss, len(batch.targets), {"*": (flat_logits.detach(), flat_targets)})


def input_defaults(datamodule: Any) -> dict[str, Any]:
    """How a model reads this data: token ids (a vocabulary) or feature vectors."""
    vocab = getattr(datamodule, "vocab", None)
    if vocab is not None:
        return {"vocab_size": len(vocab), "padding_idx": vocab.pad_id, "unk_idx": vocab.unk_id}
    return {"input_size": int(datamodule.input_size)}


def _required(value: Any, name: str) -> Any:
    if value is None:
        raise RuntimeError(f"the task needs {name}: call bind(datamodule) after datamodule.setup()")
    return value


class Seq2SeqTask(Task):
    """Encoder–decoder: source ``inputs`` ``(B, S)`` with ``lengths``; ``targets``
    ``(B, T)`` = BOS … EOS, padded. The decoder reads ``targets[:, :-1]`` (teacher
    forcing, with ``teacher_forcing_ratio`` in training) and predicts
    ``targets[:, 1:]``.

    Metrics: token accuracy (``acc``), and on validation/test the exact-match rate of
    greedy decoding (``exact``), the honest "did it get the whole answer" number.
    """

    monitor, mode, main_metric = "val_loss", "min", "acc"

    def __init__(
        self,
        teacher_forcing_ratio: float = 1.0,
        vocab_size: int | None = None,
        pad_id: int | None = None,
        eos_id: int | None = None,
    ) -> None:
        if not 0.0 <= teacher_forcing_ratio <= 1.0:
            raise ValueError(
                f"teacher_forcing_ratio must be in [0, 1], got {teacher_forcing_ratio}"
            )
        self.teacher_forcing_ratio = teacher_forcing_ratio
        self.vocab_size, self.pad_id, self.eos_id = vocab_size, pad_id, eos_id

    def bind(self, datamodule: Any) -> None:
        vocab = datamodule.target_vocab
        self.vocab_size, self.pad_id, self.eos_id = len(vocab), vocab.pad_id, vocab.eos_id

    def model_defaults(self, datamodule: Any) -> dict[str, Any]:
        source, target = datamodule.source_vocab, datamodule.target_vocab
        return {
            "src_vocab_size": len(source),
            "tgt_vocab_size": len(target),
            "pad_id": target.pad_id,
            "bos_id": target.bos_id,
            "eos_id": target.eos_id,
        }

    def metrics(self, stage: str) -> MetricCollection:
        v = _required(self.vocab_size, "vocab_size")
        metrics: dict[str, Metric] = {"acc": token_accuracy(v, ignore_index=self.pad_id)}
        if stage != "train":
            metrics["exact"] = SequenceExactMatch(self.pad_id, self.eos_id)
        return MetricCollection(metrics)

    def _logits(self, model: nn.Module, batch: Any, stage: str) -> Tensor:
        ratio = self.teacher_forcing_ratio if stage == "train" else 1.0
        tgt_in = batch.targets[:, :-1]  # (B, T-1): BOS ...
        return model(batch.inputs, batch.lengths, tgt_in, teacher_forcing_ratio=ratio)

    def _decode(self, model: nn.Module, batch: Any, max_len: int) -> Tensor:
        return model.greedy_decode(batch.inputs, batch.lengths, max_len=max_len)

    def step(self, model: nn.Module, batch: Any, stage: str) -> StepResult:
        logits = self._logits(model, batch, stage)  # (B, T-1, V)
        tgt_out = batch.targets[:, 1:]  # (B, T-1): ... EOS
        flat_logits, flat_targets = logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1)
        loss = F.cross_entropy(flat_logits, flat_targets, ignore_index=self.pad_id)
        updates: dict[str, tuple[Tensor, ...]] = {"acc": (flat_logits.detach(), flat_targets)}
        if stage != "train":
            decoded = self._decode(model, batch, max_len=tgt_out.shape[1])
            updates["exact"] = (decoded, tgt_out)
        return StepResult(loss, len(batch.targets), updates)


class CaptionTask(Seq2SeqTask):
    """One-to-many: a fixed input (an image) → a token sequence (its caption).

    ``inputs`` are images ``(B, H, W)`` (a channel axis is added) or feature vectors
    ``(B, F)``; ``targets`` are BOS … EOS as for :class:`Seq2SeqTask`.
    """

    def model_defaults(self, datamodule: Any) -> dict[str, Any]:
        target = datamodule.target_vocab
        return {
            "vocab_size": len(target),
            "pad_id": target.pad_id,
            "bos_id": target.bos_id,
            "eos_id": target.eos_id,
        }

    def _features(self, batch: Any) -> Tensor:
        x = batch.inputs
        return x.unsqueeze(1) if x.dim() == 3 else x  # (B, 1, H, W) for a CNN encoder

    def _logits(self, model: nn.Module, batch: Any, stage: str) -> Tensor:
        return model(self._features(batch), batch.targets[:, :-1])

    def _decode(self, model: nn.Module, batch: Any, max_len: int) -> Tensor:
        return model.generate(self._features(batch), max_len=max_len)


class ForecastTask(Task):
    """Window → the next ``horizon`` values; MSE on the scaled series.

    Metrics are reported in the series' own units (the target scaler's
    ``inverse_transform``): RMSE, MAE and MAPE; on the test split the same metrics
    are computed for naive baselines on the same windows (``persistence_*`` and, when
    configured, ``seasonal_*``, ``moving_average_*``), so the model is never shown
    without them.
    """

    monitor, mode, main_metric = "val_loss", "min", "rmse"

    def __init__(self, season: int | None = None, moving_average: int | None = None) -> None:
        self.season, self.moving_average = season, moving_average
        self.target_scaler: Any = None
        self.target_index: list[int] | None = None

    def bind(self, datamodule: Any) -> None:
        self.target_scaler = datamodule.target_scaler
        self.target_index = datamodule.target_feature_index

    def model_defaults(self, datamodule: Any) -> dict[str, Any]:
        index = datamodule.target_feature_index
        return {
            "input_size": int(datamodule.num_features),
            "horizon": int(datamodule.horizon),
            "n_targets": int(datamodule.num_targets),
            "target_index": None if index is None else tuple(index),
        }

    def baselines(self) -> list[str]:
        """Names of the naive forecasts evaluated beside the model."""
        if self.target_index is None:
            return []
        names = ["persistence"]
        names += ["seasonal"] if self.season else []
        names += ["moving_average"] if self.moving_average else []
        return names

    def metrics(self, stage: str) -> MetricCollection:
        prefixes = [""] + ([f"{b}_" for b in self.baselines()] if stage == "test" else [])
        return regression_metrics(prefixes)

    def unscale(self, values: Tensor) -> Tensor:
        """Scaled targets/predictions ``(B, H[, n])`` → the series' units."""
        if self.target_scaler is None:
            return values
        flat = values.reshape(-1, 1) if values.dim() == 2 else values.reshape(-1, values.shape[-1])
        restored = self.target_scaler.inverse_transform(flat.detach().cpu().numpy())
        return torch.as_tensor(restored, dtype=values.dtype, device=values.device).reshape(
            values.shape
        )

    def step(self, model: nn.Module, batch: Any, stage: str) -> StepResult:
        preds = model(batch.inputs)  # (B, H) or (B, H, n_targets)
        loss = F.mse_loss(preds, batch.targets)
        target = self.unscale(batch.targets)
        forecasts = {"": self.unscale(preds.detach())}
        if stage == "test":
            naive = self.naive_forecasts(batch.inputs, batch.targets.shape[1])
            forecasts.update({f"{name}_": self.unscale(f) for name, f in naive.items()})
        updates = {
            f"{prefix}{metric}": (forecast, target)
            for prefix, forecast in forecasts.items()
            for metric in REGRESSION_METRICS
        }
        return StepResult(loss, len(batch.targets), updates)

    def naive_forecasts(self, inputs: Tensor, horizon: int) -> dict[str, Tensor]:
        """The baselines' scaled forecasts from each window's target history."""
        from rnnkit.models.baselines import moving_average, persistence, seasonal_naive

        if self.target_index is None:
            return {}
        history = inputs[..., self.target_index]  # (B, W, n_targets)
        history = history[..., 0] if history.shape[-1] == 1 else history
        out = {"persistence": persistence(history, horizon)}
        if self.season:
            out["seasonal"] = seasonal_naive(history, horizon, season=self.season)
        if self.moving_average:
            out["moving_average"] = moving_average(history, horizon, k=self.moving_average)
        return out


TASKS.register("classification", ClassificationTask, description="many-to-one class labels")
TASKS.register(
    "multilabel_classification",
    MultiLabelClassificationTask,
    description="many-to-one, several labels per sequence",
)
TASKS.register("regression", RegressionTask, description="many-to-one numeric targets")
TASKS.register("language_model", LanguageModelTask, description="next-token prediction")
TASKS.register("tagging", TaggingTask, description="a class label for every step")
TASKS.register("seq2seq", Seq2SeqTask, description="encoder-decoder sequence transduction")
TASKS.register("caption", CaptionTask, description="one fixed input to a token sequence")
TASKS.register("forecast", ForecastTask, description="window to the next values")


def update_metrics(metrics: MetricCollection, updates: dict[str, tuple[Tensor, ...]]) -> None:
    """Route a :class:`StepResult`'s updates: ``"*"`` updates every metric, any other key
    the metric of that name."""
    for key, args in updates.items():
        for name in metrics.keys() if key == "*" else [key]:
            metrics[name].update(*args)
