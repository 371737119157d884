"""Seeded index splits: stratified for classes, contiguous for time."""

from __future__ import annotations

import numpy as np

__all__ = ["chronological_split", "random_split", "stratified_split", "subsample"]


def _check_fraction(fraction: float) -> None:
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must lie in [0, 1), got {fraction}")


def random_split(n: int, fraction: float, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` into kept and held-out indices, ``round(n * fraction)`` held out.

    Returns:
        ``(kept, held)``, each sorted ascending.
    """
    _check_fraction(fraction)
    perm = np.random.default_rng(seed).permutation(n)
    held = round(n * fraction)
    return np.sort(perm[held:]), np.sort(perm[:held])


def stratified_split(
    labels: np.ndarray, fraction: float, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices so each class is held out in (almost exactly) the same proportion.

    ``round(n * fraction)`` indices are held out in total; each class gives
    ``floor(n_c * fraction)`` and the remainder goes to the classes with the largest
    fractional parts (ties to the lower class id), so the split is exact and seeded.

    Arguments:
        labels: ``(n,)`` integer class ids.
        fraction: share to hold out, in ``[0, 1)``.
        seed: for the permutation within each class.

    Returns:
        ``(kept, held)``, each sorted ascending.

    Example::

        >>> kept, held = stratified_split(np.repeat([0, 1], 10), 0.2, seed=0)
        >>> len(kept), np.bincount(np.repeat([0, 1], 10)[held]).tolist()
        (16, [2, 2])
    """
    _check_fraction(fraction)
    labels = np.asarray(labels)
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    exact = counts * fraction
    take = np.floor(exact).astype(np.int64)
    remainder = round(len(labels) * fraction) - int(take.sum())
    if remainder > 0:
        order = np.lexsort((np.arange(len(classes)), -(exact - take)))
        take[order[:remainder]] += 1
    rng = np.random.default_rng(seed)
    held_parts = []
    for c in range(len(classes)):
        members = np.flatnonzero(inverse == c)
        held_parts.append(rng.permutation(members)[: take[c]])
    held = np.sort(np.concatenate(held_parts)) if held_parts else np.zeros(0, np.int64)
    mask = np.ones(len(labels), dtype=bool)
    mask[held] = False
    return np.flatnonzero(mask), held


def subsample(labels: np.ndarray | None, n: int, limit: int | None, *, seed: int = 0) -> np.ndarray:
    """At most ``limit`` of ``range(n)``, stratified by ``labels`` when given; sorted.

    For quick runs on a slice of a dataset (``limit=None`` keeps everything).
    """
    if limit is None or limit >= n:
        return np.arange(n)
    if limit < 1:
        raise ValueError(f"limit must be >= 1 or None, got {limit}")
    if labels is None:
        return np.sort(np.random.default_rng(seed).permutation(n)[:limit])
    _, held = stratified_split(np.asarray(labels), limit / n, seed=seed)
    return held


def chronological_split(
    n: int, *, val_fraction: float, test_fraction: float
) -> tuple[slice, slice, slice]:
    """Contiguous train/val/test ranges in time order: ``[train | val | test]``.

    ``test`` is the last ``round(n * test_fraction)`` rows; ``val`` is the last
    ``round(n_rest * val_fraction)`` rows before it (carved from the training part).
    """
    _check_fraction(val_fraction)
    _check_fraction(test_fraction)
    n_test = round(n * test_fraction)
    rest = n - n_test
    n_val = round(rest * val_fraction)
    return slice(0, rest - n_val), slice(rest - n_val, rest), slice(rest, n)
