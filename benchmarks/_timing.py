"""Side-by-side timing: candidates run interleaved in one process, reported as ratios.

Timing two things one after the other lets drift in the machine (frequency, other
load) land on one of them; interleaving rounds and taking the median of each side's
round times keeps the *ratio* honest even on a noisy shared machine.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping

import torch


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_interleaved(
    fns: Mapping[str, Callable[[], object]],
    *,
    rounds: int = 15,
    per_round: int = 3,
    warmup: int = 3,
    device: str = "cpu",
) -> dict[str, float]:
    """Median seconds per call of each function, measured in interleaved rounds.

    Arguments:
        fns: name → a zero-argument callable (one forward or training step).
        rounds: number of rounds; each round runs every function ``per_round`` times.
        per_round: calls per function per round.
        warmup: untimed calls of each function first (allocator, oneDNN primitive cache).
        device: ``"cuda..."`` to synchronise around each timed block.

    Returns:
        name → median seconds per call.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for r in range(rounds):
        order = list(fns.items()) if r % 2 == 0 else list(reversed(fns.items()))
        for name, fn in order:
            _sync(device)
            start = time.perf_counter()
            for _ in range(per_round):
                fn()
            _sync(device)
            samples[name].append((time.perf_counter() - start) / per_round)
    return {name: statistics.median(values) for name, values in samples.items()}


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
