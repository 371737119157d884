"""The task metrics against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnkit.data import Batch
from rnnkit.training.metrics import (
    BitsPerToken,
    Perplexity,
    SequenceExactMatch,
    confusion_matrix,
    language_model_metrics,
)
from rnnkit.training.tasks import LanguageModelTask, update_metrics


def test_bits_per_token_and_perplexity_ignore_padding() -> None:
    logits = torch.randn(6, 5)
    targets = torch.tensor([1, 2, 0, 3, 0, 4])  # 0 is padding
    keep = targets != 0
    nll = F.cross_entropy(logits[keep], targets[keep]).item()
    bpc, ppl = BitsPerToken(ignore_index=0), Perplexity(ignore_index=0)
    for metric in (bpc, ppl):
        metric.update(logits[:3], targets[:3])
        metric.update(logits[3:], targets[3:])
    assert bpc.compute().item() == pytest.approx(nll / math.log(2), rel=1e-5)
    assert ppl.compute().item() == pytest.approx(math.exp(nll), rel=1e-5)


def _mean_token_nll(batches: list[tuple[torch.Tensor, torch.Tensor]], pad: int) -> float:
    """The mean NLL over every non-pad token of every batch, summed in fp64."""
    total, count = 0.0, 0
    for logits, targets in batches:
        flat, flat_targets = logits.reshape(-1, logits.shape[-1]).double(), targets.reshape(-1)
        total += F.cross_entropy(flat, flat_targets, ignore_index=pad, reduction="sum").item()
        count += int((flat_targets != pad).sum())
    return total / count


@pytest.mark.parametrize("seed", range(4))
def test_perplexity_is_exp_of_the_mean_token_nll_over_padded_batches(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    pad, vocab = 0, 7
    batches = []
    for steps in (5, 9, 3):
        logits = 3 * torch.randn(4, steps, vocab, generator=generator)  # (B, T, V)
        targets = torch.randint(1, vocab, (4, steps), generator=generator)  # (B, T)
        targets[:, steps // 2 :][torch.rand(4, steps - steps // 2, generator=generator) < 0.5] = pad
        batches.append((logits, targets))
    nll = _mean_token_nll(batches, pad)
    ppl, bpc = Perplexity(ignore_index=pad), BitsPerToken(ignore_index=pad)
    for logits, targets in batches:
        ppl.update(logits, targets)  # (B, T, V), as torchmetrics takes them
        bpc.update(logits.reshape(-1, vocab), targets.reshape(-1))  # (B*T, V), as the tasks do
    assert ppl.compute().item() == pytest.approx(math.exp(nll), rel=1e-5)
    assert bpc.compute().item() == pytest.approx(nll / math.log(2), rel=1e-5)
    assert bpc.compute().item() == pytest.approx(math.log2(ppl.compute().item()), rel=1e-5)


def test_perplexity_reads_half_precision_logits_in_fp32() -> None:
    logits = torch.randn(2, 6, 5).half()
    targets = torch.randint(0, 5, (2, 6))
    nll = F.cross_entropy(logits.float().reshape(-1, 5), targets.reshape(-1)).item()
    ppl = Perplexity()
    ppl.update(logits, targets)
    assert ppl.compute().dtype == torch.float32
    assert ppl.compute().item() == pytest.approx(math.exp(nll), rel=1e-5)


def test_language_model_task_logs_perplexity_as_exp_of_its_loss() -> None:
    class Fixed(torch.nn.Module):
        def __init__(self, logits: torch.Tensor) -> None:
            super().__init__()
            self.logits = logits

        def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, None]:
            return self.logits, None

    logits = torch.randn(3, 4, 6)  # (B, T, V)
    targets = torch.tensor([[1, 2, 3, 4], [5, 1, 0, 0], [2, 0, 0, 0]])  # 0 pads
    task = LanguageModelTask(vocab_size=6, pad_id=0)
    batch = Batch(torch.zeros(3, 4, dtype=torch.long), torch.tensor([4, 2, 1]), targets)
    result = task.step(Fixed(logits), batch, "val")
    metrics = task.metrics("val")
    update_metrics(metrics, result.updates)
    values = {k: v.item() for k, v in metrics.compute().items()}
    assert values["ppl"] == pytest.approx(math.exp(result.loss.item()), rel=1e-5)
    assert values["bpc"] == pytest.approx(result.loss.item() / math.log(2), rel=1e-5)
    assert set(values) == set(language_model_metrics(6, pad_id=0).keys()) == {"ppl", "bpc", "acc"}


def test_exact_match_stops_at_eos() -> None:
    metric = SequenceExactMatch(pad_id=0, eos_id=3)
    decoded = torch.tensor([[5, 6, 3, 9], [5, 7, 0, 0]])
    targets = torch.tensor([[5, 6, 3, 0], [5, 6, 3, 0]])
    metric.update(decoded, targets)
    assert metric.compute().item() == 0.5


def test_confusion_matrix_counts_true_rows_against_predicted_columns() -> None:
    targets = np.array([0, 0, 1, 2, 2, 2, 1, 0])
    preds = np.array([0, 1, 1, 2, 0, 2, 1, 0])
    by_hand = np.zeros((3, 3), dtype=np.int64)
    np.add.at(by_hand, (targets, preds), 1)
    matrix = confusion_matrix(3)
    matrix.update(torch.from_numpy(preds[:5]), torch.from_numpy(targets[:5]))
    matrix.update(torch.from_numpy(preds[5:]), torch.from_numpy(targets[5:]))
    np.testing.assert_array_equal(matrix.compute().numpy(), by_hand)
    assert by_hand[2, 0] == 1  # one true 2 taken for a 0
