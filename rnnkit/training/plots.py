"""The run directory's figures: training curves and one task plot per task.

Every figure has a title, labelled axes and a legend where there is more than one
line. Figures are built with matplotlib's object API (:class:`~matplotlib.figure.Figure`)
and saved straight to PNG: no display is needed, and neither pyplot nor the backend
of the calling process (a notebook's open figures) is touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from rnnkit.training.checkpoint import atomic_path

_METRIC_LABELS = {
    "loss": "loss",
    "acc": "accuracy",
    "f1": "macro F1",
    "bpc": "bits per token",
    "ppl": "perplexity",
    "rmse": "RMSE (series units)",
    "mae": "MAE (series units)",
    "exact": "exact match",
}


def plot_curves(
    history: Sequence[dict[str, float]], path: str | Path, *, metric: str, title: str
) -> Path:
    """Train vs validation loss and ``metric`` per epoch, side by side."""
    fig = Figure(figsize=(11, 4.2))
    axes = fig.subplots(1, 2)
    for ax, name in zip(axes, ("loss", metric), strict=True):
        for stage, style in (("train", "o-"), ("val", "s--")):
            points = [(r["epoch"], r[f"{stage}_{name}"]) for r in history if f"{stage}_{name}" in r]
            if points:
                epochs, values = zip(*points, strict=True)
                ax.plot(epochs, values, style, label=f"{stage}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(_METRIC_LABELS.get(name, name))
        ax.set_title(f"{_METRIC_LABELS.get(name, name)} per epoch")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_confusion(
    matrix: np.ndarray, class_names: Sequence[str], path: str | Path, *, title: str
) -> Path:
    """A row-normalised confusion matrix (rows: true class, columns: predicted)."""
    counts = np.asarray(matrix, dtype=np.float64)
    rates = counts / np.clip(counts.sum(axis=1, keepdims=True), 1, None)
    n = len(class_names)
    size = min(4 + 0.28 * n, 16)
    fig = Figure(figsize=(size + 1.5, size))
    ax = fig.subplots()
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, label="share of the true class")
    ticks = np.arange(n)
    fontsize = 9 if n <= 12 else 6
    ax.set_xticks(ticks, labels=class_names, rotation=90 if n > 12 else 45, fontsize=fontsize)
    ax.set_yticks(ticks, labels=class_names, fontsize=fontsize)
    if n <= 12:
        for i in range(n):
            for j in range(n):
                colour = "white" if rates[i, j] > 0.5 else "black"
                ax.text(
                    j, i, f"{int(counts[i, j])}", ha="center", va="center", color=colour, fontsize=8
                )
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_forecast(
    x: Sequence[Any],
    actual: np.ndarray,
    forecasts: dict[str, np.ndarray],
    path: str | Path,
    *,
    title: str,
    ylabel: str,
) -> Path:
    """Actual values against the model's and the baselines' forecasts."""
    fig = Figure(figsize=(11, 4.5))
    ax = fig.subplots()
    ax.plot(x, actual, color="black", linewidth=1.6, label="actual")
    for name, values in forecasts.items():
        ax.plot(x, values, linewidth=1.1, alpha=0.85, label=name)
    ax.set_xlabel("date" if len(x) and not isinstance(x[0], int | np.integer) else "step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    return _save(fig, path)


def plot_predicted_vs_actual(
    actual: np.ndarray, predicted: np.ndarray, path: str | Path, *, title: str, label: str
) -> Path:
    """A regression's test predictions against the true values, with the line ``y = x``."""
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    ax.scatter(actual, predicted, s=10, alpha=0.6)
    low = float(min(actual.min(), predicted.min()))
    high = float(max(actual.max(), predicted.max()))
    ax.plot([low, high], [low, high], color="black", linewidth=1, label="y = x")
    ax.set_xlabel(f"actual {label}")
    ax.set_ylabel(f"predicted {label}")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def plot_attention(
    weights: np.ndarray,
    source: Sequence[str],
    output: Sequence[str],
    path: str | Path,
    *,
    title: str,
) -> Path:
    """One example's attention: rows are output steps, columns source positions."""
    fig = Figure(figsize=(max(5, 0.35 * len(source) + 2), max(3, 0.35 * len(output) + 1.5)))
    ax = fig.subplots()
    image = ax.imshow(weights, cmap="viridis", aspect="auto", vmin=0)
    fig.colorbar(image, ax=ax, label="attention weight")
    ax.set_xticks(np.arange(len(source)), labels=list(source), fontsize=8)
    ax.set_yticks(np.arange(len(output)), labels=list(output), fontsize=8)
    ax.set_xlabel("source position")
    ax.set_ylabel("output step")
    ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_captions(
    images: np.ndarray,
    captions: Sequence[str],
    truths: Sequence[str],
    path: str | Path,
    *,
    title: str,
) -> Path:
    """A grid of images with the generated caption (and the true one) under each."""
    count = len(images)
    cols = min(count, 8)
    rows = int(np.ceil(count / cols))
    fig = Figure(figsize=(1.6 * cols, 1.9 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption, truth in zip(axes.flat, images, captions, truths, strict=False):
        ax.imshow(image, cmap="gray_r")
        colour = "green" if caption == truth else "red"
        ax.set_title(f"{caption}\n(true: {truth})", fontsize=8, color=colour)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:  # same suffix: savefig picks the format by it
        fig.savefig(tmp, dpi=110)  # a Figure outside pyplot is freed with its last reference
    return path
