"""Task plots and samples written into a run directory after testing.

Every report uses the held-out test split: a confusion matrix for classifiers, a
per-label table for multi-label classifiers, predicted against actual for regression,
forecast against actual with the naive baselines for forecasters, sampled text for
language models, decoded examples (and attention) for encoder–decoders, captioned
images for captioners.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnkit.registry import Registry
from rnnkit.training import plots
from rnnkit.training.checkpoint import write_text
from rnnkit.training.metrics import confusion_matrix

Report = Callable[[Any, Any, nn.Module, Any, Path], dict[str, Path]]
REPORTS: Registry[Report] = Registry("report")


def task_report(
    config: Any, task: Any, model: nn.Module, datamodule: Any, run_dir: Path
) -> dict[str, Path]:
    """Write the task's plots/samples for a trained model; returns role → path."""
    model = model.cpu().eval()
    with torch.no_grad():
        return REPORTS.get(config.task.name)(config, task, model, datamodule, run_dir)


def _batches(datamodule: Any) -> Any:
    return iter(datamodule.test_dataloader())


def confusion_counts(model: nn.Module, batches: Iterable[Any], num_classes: int) -> np.ndarray:
    """``(C, C)`` counts of a classifier's test answers: row = true class, column = predicted."""
    matrix = confusion_matrix(num_classes)
    for batch in batches:
        matrix.update(model(batch.inputs, batch.lengths).argmax(-1), batch.targets)  # (B,), (B,)
    return matrix.compute().numpy()


@REPORTS.register("classification")
def classification_report(
    config: Any, task: Any, model: nn.Module, dm: Any, run_dir: Path
) -> dict[str, Path]:
    n = task.num_classes
    counts = confusion_counts(model, _batches(dm), n)
    names = list(getattr(dm, "class_names", None) or [str(i) for i in range(n)])
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    path = plots.plot_confusion(
        counts,
        names,
        run_dir / "confusion_matrix.png",
        title=f"{config.name}: test confusion matrix (accuracy {accuracy:.3f}, n={counts.sum()})",
    )
    return {"confusion_matrix": path}


def per_label_counts(
    model: nn.Module, batches: Iterable[Any], num_labels: int, threshold: float
) -> np.ndarray:
    """``(L, 3)`` counts per label of true positives, false positives and false negatives."""
    counts = np.zeros((num_labels, 3), dtype=np.int64)
    for batch in batches:
        predicted = torch.sigmoid(model(batch.inputs, batch.lengths)) >= threshold  # (B, L)
        truth = batch.targets >= 0.5  # (B, L)
        counts[:, 0] += (predicted & truth).sum(0).numpy()
        counts[:, 1] += (predicted & ~truth).sum(0).numpy()
        counts[:, 2] += (~predicted & truth).sum(0).numpy()
    return counts


@REPORTS.register("multilabel_classification")
def multilabel_report(
    config: Any, task: Any, model: nn.Module, dm: Any, run_dir: Path
) -> dict[str, Path]:
    """``per_label.json`` and ``per_label.txt``: precision, recall, F1 and support per label."""
    n = task.num_classes
    counts = per_label_counts(model, _batches(dm), n, task.threshold)
    names = list(getattr(dm, "class_names", None) or [str(i) for i in range(n)])
    rows = []
    for name, (tp, fp, fn) in zip(names, counts.tolist(), strict=True):
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append(
            {"label": name, "precision": precision, "recall": recall, "f1": f1, "support": tp + fn}
        )
    files = {"per_label": run_dir / "per_label.json", "per_label_table": run_dir / "per_label.txt"}
    files["per_label"].write_text(json.dumps(rows, indent=2) + "\n")
    width = max([len(r["label"]) for r in rows] + [5])
    lines = [
        f"# {config.name}: per-label test scores at threshold {task.threshold}",
        f"{'label':<{width}}  precision  recall  f1     support",
        *(
            f"{r['label']:<{width}}  {r['precision']:9.3f}  {r['recall']:6.3f}  {r['f1']:.3f}  "
            f"{r['support']:7d}"
            for r in rows
        ),
    ]
    files["per_label_table"].write_text("\n".join(lines) + "\n")
    return files


@REPORTS.register("regression")
def regression_report(
    config: Any, task: Any, model: nn.Module, dm: Any, run_dir: Path
) -> dict[str, Path]:
    """``predicted_vs_actual.png``: the test predictions (first target) against the truth."""
    preds, actual = [], []
    for batch in _batches(dm):
        preds.append(task.unscale(model(batch.inputs, batch.lengths))[:, 0])
        actual.append(task.unscale(batch.targets)[:, 0])
    path = plots.plot_predicted_vs_actual(
        torch.cat(actual).numpy(),
        torch.cat(preds).numpy(),
        run_dir / "predicted_vs_actual.png",
        title=f"{config.name}: test predictions",
        label="target",
    )
    return {"predicted_vs_actual": path}


def _joiner(vocab: Any) -> str:
    """Characters join with nothing, words with a space."""
    tokens = [t for t in vocab.tokens if t not in vocab.specials]
    return "" if all(len(t) == 1 for t in tokens) else " "


@REPORTS.register("language_model")
def language_model_report(
    config: Any, task: Any, model: nn.Module, dm: Any, run_dir: Path
) -> dict[str, Path]:
    vocab, join = dm.vocab, _joiner(dm.vocab)
    first = next(iter(_batches(dm)))
    steps = first.inputs.shape[1]
    # A short sequence (the hello toy) is regenerated from its first token; a long one
    # is continued for 200 tokens from a 24-token prompt.
    prompt_len, length = (1, steps) if steps < 24 else (24, 200)
    prompts = first.inputs[:3, :prompt_len]  # (3, P) from the held-out split
    generator = torch.Generator().manual_seed(config.seed)
    lines = [f"# {config.name}: samples from prompts taken from the test split", ""]
    for label, options in (
        ("greedy (top_k=1)", {"top_k": 1}),
        ("temperature 0.8", {"temperature": 0.8}),
    ):
        out = model.generate(prompts, length, generator=generator, **options)
        lines.append(f"## {label}")
        for row in out:
            text = join.join(vocab.decode(row))
            prompt = join.join(vocab.decode(row[:prompt_len]))
            lines += [f"[prompt] {prompt!r}", text, ""]
    path = run_dir / "samples.txt"
    write_text(path, "\n".join(lines))
    return {"samples": path}


@REPORTS.register("seq2seq")
def seq2seq_report(
    config: Any, task: Any, model: nn.Module, dm: Any, run_dir: Path
) -> dict[str, Path]:
    from rnnkit.data.datasets.pairs import decode_target

    pairs = dm.test_pairs[:20]
    ids = dm.encode_source([s for s, _ in pairs])
    lengths = torch.tensor([len(i) for i in ids])
    src = torch.nn.utils.rnn.pad_sequence([torch.tensor(i) for i in ids], batch_first=True)
    max_len = max(len(t) for _, t in pairs) + 2
    tokens, weights = model.greedy_decode(src, lengths, max_len=max_len, return_attention=True)
    target_vocab = dm.target_vocab
    lines = [f"# {config.name}: greedy decoding of test pairs (source => output | expected)", ""]
    for (source, expected), row in zip(pairs, tokens, strict=True):
        got = decode_target(target_vocab, row)
        lines.append(f"{'ok ' if got == expected else 'ERR'} {source!r} => {got!r} | {expected!r}")
    files = {"samples": run_dir / "samples.txt"}
    write_text(files["samples"], "\n".join(lines) + "\n")
    if weights is not None:
        out_len = len(decode_target(target_vocab, tokens[0])) + 1  # + EOS step
        source_tokens = dm.source_vocab.decode(ids[0])
        output_tokens = [*decode_target(target_vocab, tokens[0]), "<eos>"]
        files["attention"] = plots.plot_attention(
            weights[0, :out_len, : len(source_tokens)].numpy(),
            source_tokens,
            output_tokens[:out_len],
            run_dir / "attention.png",
            title=f"{config.name}: attention for a test example",
        )
    return files


@REPORTS.register("caption")
def caption_report(
    config: Any, task: Any, model: nn.Module, dm: Any, run_dir: Path
) -> dict[str, Path]:
    from rnnkit.data.datasets.pairs import decode_target

    batch = next(iter(_batches(dm)))
    count = min(16, len(batch.targets))
    images = batch.inputs[:count]
    tokens = model.generate(images.unsqueeze(1), max_len=batch.targets.shape[1])
    vocab = dm.target_vocab
    captions = [decode_target(vocab, row) for row in tokens]
    truths = [decode_target(vocab, row) for row in batch.targets[:count]]
    path = plots.plot_captions(
        images.numpy(),
        captions,
        truths,
        run_dir / "captions.png",
        title=f"{config.name}: test images and generated captions",
    )
    return {"captions": path}


@REPORTS.register("forecast")
def forecast_report(
    config: Any, task: Any, model: nn.Module, dm: Any, run_dir: Path
) -> dict[str, Path]:
    preds, actual, naive = [], [], {}
    for batch in _batches(dm):
        preds.append(task.unscale(model(batch.inputs))[:, 0])  # first step of the horizon
        actual.append(task.unscale(batch.targets)[:, 0])
        for name, forecast in task.naive_forecasts(batch.inputs, batch.targets.shape[1]).items():
            naive.setdefault(name, []).append(task.unscale(forecast)[:, 0])
    series = {"model": torch.cat(preds).numpy()}
    series.update({name: torch.cat(parts).numpy() for name, parts in naive.items()})
    truth = torch.cat(actual).numpy()
    x = _forecast_dates(dm, len(truth))
    target = ", ".join(dm.targets) if hasattr(dm, "targets") else "target"
    if truth.ndim > 1:  # several targets: plot the first
        truth, series = truth[:, 0], {k: v[:, 0] for k, v in series.items()}
    path = plots.plot_forecast(
        x,
        truth,
        series,
        run_dir / "forecast.png",
        title=f"{config.name}: test forecasts (one step ahead) vs actual",
        ylabel=target,
    )
    return {"forecast": path}


def _forecast_dates(dm: Any, count: int) -> list[Any]:
    """The date of each test window's first target row, when the data has dates."""
    test_set, dates = getattr(dm, "test_set", None), getattr(dm, "dates", None)
    if test_set is None or dates is None or not hasattr(test_set, "target_rows"):
        return list(range(count))
    return [
        np.datetime64(dates[test_set.target_rows(i).start], "D").astype(object)
        for i in range(count)
    ]


@REPORTS.register("tagging")
def tagging_report(
    config: Any, task: Any, model: nn.Module, dm: Any, run_dir: Path
) -> dict[str, Path]:
    batch = next(_batches(dm))
    logits, _ = model(batch.inputs, batch.lengths)
    preds = logits.argmax(-1)  # (B, T)
    lines = [f"# {config.name}: per-step predictions on test sequences (target / predicted)", ""]
    for b in range(min(5, len(preds))):
        n = int(batch.lengths[b])
        target, predicted = batch.targets[b, :n].tolist(), preds[b, :n].tolist()
        correct = sum(t == p for t, p in zip(target, predicted, strict=True))
        lines += [
            f"sequence {b}: {correct}/{n} steps right",
            f"  target    {target}",
            f"  predicted {predicted}",
            "",
        ]
    path = run_dir / "samples.txt"
    write_text(path, "\n".join(lines))
    return {"samples": path}
