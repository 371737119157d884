"""The metrics a task logs, built from torchmetrics.

Tasks ask this module for fresh metric collections; the names are the ones logged
after the stage prefix (``val_acc``, ``val_ppl``, ``test_persistence_rmse``, ...):

- classification: ``acc`` (micro) and ``f1`` (macro), :func:`classification_metrics`;
- multi-label classification: ``f1_micro``, ``f1_macro`` and ``exact`` (every label of a
  document right), :func:`multilabel_metrics`;
- language model: ``ppl``, ``bpc`` and ``acc``, padding left out,
  :func:`language_model_metrics`;
- tagging, seq2seq: per-step ``acc``, padding left out, :func:`token_accuracy`; on
  validation and test seq2seq adds ``exact`` (:class:`SequenceExactMatch`);
- forecast: ``rmse``, ``mae``, ``mape``, and on test the same per naive baseline,
  :func:`regression_metrics`; sequence regression: ``rmse`` and ``mae`` the same way.

The classifier report counts its confusion matrix with :func:`confusion_matrix`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MultilabelExactMatch,
    MultilabelF1Score,
)
from torchmetrics.regression import (
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
)
from torchmetrics.text import Perplexity as _TorchmetricsPerplexity

__all__ = [
    "REGRESSION_METRICS",
    "BitsPerToken",
    "Perplexity",
    "SequenceExactMatch",
    "classification_metrics",
    "confusion_matrix",
    "language_model_metrics",
    "multilabel_metrics",
    "regression_metrics",
    "token_accuracy",
]


class Perplexity(_TorchmetricsPerplexity):
    r"""``exp(mean NLL per token)``: the effective number of equally likely next tokens.

    torchmetrics' :class:`~torchmetrics.text.Perplexity`, which also takes the flat
    logits the tasks hand to every metric, and reads half-precision logits in fp32.

    .. math:: \mathrm{ppl} = \exp\Big(-\frac{1}{N}\sum_{t} \log p(y_t)\Big)

    over the ``N`` tokens whose target is not ``ignore_index`` (padding).

    Shape:
        update(logits, targets): ``(N, V)`` and ``(N,)``, or ``(B, T, V)`` and ``(B, T)``.

    Example::

        >>> ppl = Perplexity(ignore_index=0)
        >>> ppl.update(torch.zeros(3, 4), torch.tensor([1, 2, 0]))  # uniform over 4 tokens
        >>> round(ppl.compute().item(), 4)
        4.0
    """

    def update(self, preds: Tensor, target: Tensor) -> None:
        if preds.dim() == 2:  # (N, V): one sequence of N tokens, as torchmetrics wants (1, N, V)
            preds, target = preds.unsqueeze(0), target.unsqueeze(0)
        super().update(preds.float(), target)


class BitsPerToken(Perplexity):
    r"""Mean negative log-likelihood per token in bits: ``log2(perplexity)``.

    For a character model this is bits per character (BPC). It keeps the same state as
    :class:`Perplexity` (summed NLL, token count) and reads it in base 2:

    .. math:: \mathrm{bpc} = \frac{1}{N \ln 2}\sum_{t} -\log p(y_t) = \log_2 \mathrm{ppl}

    Example::

        >>> bpc = BitsPerToken()
        >>> bpc.update(torch.zeros(2, 4), torch.tensor([1, 3]))  # uniform over 4 tokens
        >>> round(bpc.compute().item(), 4)
        2.0
    """

    def compute(self) -> Tensor:
        # From the state, not log2(exp(...)): exp overflows fp32 above a mean NLL of ~88.
        return self.total_log_probs / self.count / math.log(2)


class SequenceExactMatch(Metric):
    """Share of sequences decoded exactly right (up to the first EOS, padding ignored).

    Shape:
        update(decoded, targets): ``(B, L)`` decoded ids and ``(B, T)`` targets without BOS.
    """

    higher_is_better = True
    full_state_update = False

    def __init__(self, pad_id: int, eos_id: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pad_id, self.eos_id = pad_id, eos_id
        self.add_state("correct", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, decoded: Tensor, targets: Tensor) -> None:  # (B, L), (B, T) no BOS
        for got, want in zip(decoded.tolist(), targets.tolist(), strict=True):
            self.correct += int(self._trim(got) == self._trim(want))
        self.total += len(targets)

    def _trim(self, ids: list[int]) -> list[int]:
        out = []
        for i in ids:
            if i == self.eos_id:
                break
            if i != self.pad_id:
                out.append(i)
        return out

    def compute(self) -> Tensor:
        return self.correct.float() / self.total.clamp(min=1)


def token_accuracy(num_classes: int, *, ignore_index: int | None) -> MulticlassAccuracy:
    """Share of steps (or tokens) predicted right, ``ignore_index`` targets left out."""
    return MulticlassAccuracy(num_classes, average="micro", ignore_index=ignore_index)


def classification_metrics(num_classes: int) -> MetricCollection:
    """``acc`` (micro accuracy) and ``f1`` (macro-averaged F1) over ``num_classes``."""
    return MetricCollection(
        {
            "acc": token_accuracy(num_classes, ignore_index=None),
            "f1": MulticlassF1Score(num_classes, average="macro"),
        }
    )


def multilabel_metrics(num_labels: int, *, threshold: float = 0.5) -> MetricCollection:
    """``f1_micro``, ``f1_macro`` and ``exact`` over ``num_labels`` labels, from logits.

    A label counts as predicted when its sigmoid probability reaches ``threshold``.
    """
    options = {"num_labels": num_labels, "threshold": threshold}
    return MetricCollection(
        {
            "f1_micro": MultilabelF1Score(average="micro", **options),
            "f1_macro": MultilabelF1Score(average="macro", **options),
            "exact": MultilabelExactMatch(**options),
        }
    )


def language_model_metrics(vocab_size: int, *, pad_id: int | None) -> MetricCollection:
    """``ppl``, ``bpc`` and next-token ``acc``, with ``pad_id`` targets left out."""
    return MetricCollection(
        {
            "ppl": Perplexity(ignore_index=pad_id),
            "bpc": BitsPerToken(ignore_index=pad_id),
            "acc": token_accuracy(vocab_size, ignore_index=pad_id),
        }
    )


REGRESSION_METRICS: dict[str, Callable[[], Metric]] = {
    "rmse": lambda: MeanSquaredError(squared=False),
    "mae": MeanAbsoluteError,
    "mape": MeanAbsolutePercentageError,
}
"""Forecast metrics by name, each a factory of a fresh metric."""


def regression_metrics(
    prefixes: Iterable[str] = ("",), names: Iterable[str] = tuple(REGRESSION_METRICS)
) -> MetricCollection:
    """Each of ``names`` (default: every :data:`REGRESSION_METRICS` entry) once per prefix
    (``""``, ``"persistence_"``, ...)."""
    names = list(names)
    return MetricCollection(
        {f"{p}{name}": REGRESSION_METRICS[name]() for p in prefixes for name in names}
    )


def confusion_matrix(num_classes: int) -> MulticlassConfusionMatrix:
    """``(C, C)`` counts: row ``i``, column ``j`` = how often a true ``i`` was taken for ``j``."""
    return MulticlassConfusionMatrix(num_classes)
